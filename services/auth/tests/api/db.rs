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

#[derive(QueryableByName)]
struct MmapSize {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    mmap_size: i64,
}

#[actix_web::test]
async fn point_reads_run_in_place_on_sqlite_when_a_connection_is_free() {
    let test_db = TestDb::new("auth");
    let db = Db::connect_with(test_db.url(), 2, 1 << 22, &peermesh_auth::MIGRATIONS).unwrap();
    db.migrate().unwrap();
    let sqlite = db.backend() == peermesh_db::Backend::Sqlite;
    let here = std::thread::current().id();
    let ran_on = db.read(|_| Ok(std::thread::current().id())).await.unwrap();
    assert_eq!(ran_on == here, sqlite, "in place only on SQLite");

    // Both connections busy: the read waits for one on the blocking pool instead.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Arc::new(std::sync::Mutex::new(held));
    let (busy, started) = std::sync::mpsc::channel::<()>();
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let (db, held, busy) = (db.clone(), held.clone(), busy.clone());
            actix_web::rt::spawn(async move {
                db.run(move |_| {
                    busy.send(()).unwrap();
                    held.lock().unwrap().recv().unwrap();
                    Ok(())
                })
                .await
            })
        })
        .collect();
    let mut holding = 0;
    for _ in 0..500 {
        holding += started.try_iter().count();
        if holding == 2 {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(holding, 2, "both connections are held");
    let read = db.read(|conn| {
        let n = users::table.count().get_result::<i64>(conn)?;
        Ok((std::thread::current().id(), n))
    });
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        release.send(()).unwrap();
        release.send(()).unwrap();
    });
    let (ran_on, users) = read.await.unwrap();
    assert_ne!(
        ran_on, here,
        "no connection was free: the read must not block here"
    );
    assert_eq!(users, 0);
    releaser.join().unwrap();
    for holder in holders {
        holder.await.unwrap().unwrap();
    }

    // The memory map asked for is what every SQLite connection uses.
    if sqlite {
        let mapped = db
            .read(|conn| Ok(diesel::sql_query("PRAGMA mmap_size").get_result::<MmapSize>(conn)?))
            .await
            .unwrap();
        assert_eq!(mapped.mmap_size, 1 << 22);
    }
}

/// An API process and its workers, or several replicas, start at once on one new
/// database: one applies the migrations, the others wait for it and find none
/// pending — none of them fails (on PostgreSQL they raced to create the same tables).
#[actix_web::test]
async fn processes_starting_at_once_migrate_once() {
    let test_db = TestDb::new("auth");
    let url = test_db.url().to_owned();
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let db = Db::connect(&url, 1, &peermesh_auth::MIGRATIONS)?;
                db.migrate()
            })
        })
        .collect();
    let applied: Vec<Vec<String>> = starts
        .into_iter()
        .map(|s| s.join().unwrap().expect("every process starts"))
        .collect();
    let total =
        std::fs::read_dir(peermesh_test_support::workspace_root().join("migrations/auth/sqlite"))
            .unwrap()
            .count();
    assert_eq!(
        applied.iter().map(Vec::len).sum::<usize>(),
        total,
        "each migration applied once: {applied:?}"
    );
}

/// PostgreSQL drops every connection (a restart, an administrator): a pooled
/// connection in use fails at most the statement that finds it dead and is then
/// replaced, and one that sat idle is checked before it is lent, so it fails nothing.
/// (A SQLite file cannot go away under the process.)
#[actix_web::test]
async fn connections_the_server_dropped_are_replaced() {
    let test_db = TestDb::new("auth");
    if test_db.backend() != peermesh_test_support::TestBackend::Postgres {
        return;
    }
    const POOL: u32 = 3;
    let db = Db::connect(test_db.url(), POOL, &peermesh_auth::MIGRATIONS).unwrap();
    let ping = |db: &Db| {
        let db = db.clone();
        async move {
            db.run(|c| {
                diesel::connection::SimpleConnection::batch_execute(c, "SELECT pg_sleep(0.05)")
                    .map_err(DbError::from)
            })
            .await
        }
    };
    let fill_pool = || async {
        let all = futures_util::future::join_all((0..POOL).map(|_| ping(&db))).await;
        assert!(all.iter().all(Result::is_ok), "{all:?}");
    };
    let database = test_db.url().rsplit('/').next().unwrap().to_owned();
    let drop_all = || {
        let mut admin =
            peermesh_db::establish_postgres(&peermesh_test_support::db::postgres_admin_url())
                .unwrap();
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        ))
        .execute(&mut admin)
        .unwrap();
        // Termination is asynchronous: wait until the backends are gone.
        for _ in 0..250 {
            let left: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                &format!("(SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}')"),
            ))
            .get_result(&mut admin)
            .unwrap();
            if left == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the backends of {database} did not go away");
    };

    // Dropped while in use (no idle time): each dead connection fails one statement.
    fill_pool().await;
    drop_all();
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        outcomes.push(match ping(&db).await {
            Ok(()) => true,
            Err(e) => {
                // Answered 503: a client may retry it.
                let shown = e.to_string();
                assert_eq!(peermesh_common::ApiError::from(e).status(), 503, "{shown}");
                false
            }
        });
    }
    let failed = outcomes.iter().filter(|ok| !**ok).count();
    assert!(failed <= POOL as usize, "{failed} failures: {outcomes:?}");
    assert!(
        outcomes[POOL as usize..].iter().all(|ok| *ok),
        "{outcomes:?}"
    );

    // Dropped while idle: checked before being lent, so no statement fails.
    fill_pool().await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    drop_all();
    for i in 0..10 {
        ping(&db)
            .await
            .unwrap_or_else(|e| panic!("statement {i} after idle: {e}"));
    }
}
