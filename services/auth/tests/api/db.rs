//! The database layer under the auth schema: one binary, SQLite or PostgreSQL by URL.

use diesel::prelude::*;
use peermesh_auth::schema::users;
use peermesh_db::{Db, DbError};
use peermesh_test_support::TestDb;

#[derive(Insertable, Queryable, Debug, PartialEq)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
struct UserRow {
    id: String,
    email: String,
    display_name: Option<String>,
    password_hash: Option<String>,
    email_verified: bool,
    roles: String,
    disabled: bool,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

fn row(email: &str) -> UserRow {
    let now = chrono::Utc::now().naive_utc();
    UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.into(),
        display_name: None,
        password_hash: None,
        email_verified: false,
        roles: "user".into(),
        disabled: false,
        created_at: now,
        updated_at: now,
    }
}

async fn count(db: &Db) -> i64 {
    db.run(|conn| users::table.count().get_result(conn).map_err(DbError::from))
        .await
        .unwrap()
}

#[actix_web::test]
async fn writes_commit_roll_back_and_report_unique_violations() {
    let test_db = TestDb::new("auth");
    let db = Db::connect(test_db.url(), 4, &peermesh_auth::MIGRATIONS).unwrap();
    assert!(db.check_ready().await.unwrap_err().contains("pending"));
    assert!(!db.migrate().unwrap().is_empty());
    assert!(
        db.migrate().unwrap().is_empty(),
        "migrating twice applies nothing"
    );
    db.check_ready().await.unwrap();

    let ada = row("ada@example.com");
    let stored = db
        .write(move |conn| {
            diesel::insert_into(users::table)
                .values(&ada)
                .execute(conn)?;
            Ok(users::table.first::<UserRow>(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(stored.email, "ada@example.com");

    // An error inside the transaction undoes its earlier writes.
    let err = db
        .write(|conn| {
            diesel::insert_into(users::table)
                .values(&row("bob@example.com"))
                .execute(conn)?;
            diesel::insert_into(users::table)
                .values(&row("ada@example.com"))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    assert_eq!(count(&db).await, 1);

    // Concurrent writers queue up instead of failing with "database is locked".
    let writers = (0..8).map(|i| {
        let db = db.clone();
        async move {
            db.write(move |conn| {
                diesel::insert_into(users::table)
                    .values(&row(&format!("w{i}@example.com")))
                    .execute(conn)?;
                Ok(())
            })
            .await
        }
    });
    for result in futures_util::future::join_all(writers).await {
        result.unwrap();
    }
    assert_eq!(count(&db).await, 9);
}

#[test]
fn the_scheme_picks_the_backend_and_typos_are_refused() {
    let err = Db::connect("postgress://oops/db", 1, &peermesh_auth::MIGRATIONS)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("must start with sqlite:// or postgres://"),
        "{err}"
    );
}
