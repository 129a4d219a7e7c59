//! One fresh database per test: a SQLite file in a temp folder, or a new PostgreSQL
//! database (dropped afterwards) when `PEERMESH_TEST_BACKEND=postgres`.

use diesel::RunQueryDsl;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// The backend this test run targets (`PEERMESH_TEST_BACKEND`, default sqlite).
pub fn backend() -> TestBackend {
    match std::env::var("PEERMESH_TEST_BACKEND").as_deref() {
        Ok("postgres") => TestBackend::Postgres,
        Ok("sqlite") | Err(_) => TestBackend::Sqlite,
        Ok(other) => panic!("PEERMESH_TEST_BACKEND={other:?}: use sqlite or postgres"),
    }
}

/// The server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDb {
    url: String,
    backend: TestBackend,
    _dir: Option<TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// A new, empty database for `service` on the backend of this run.
    pub fn new(service: &str) -> Self {
        Self::on(backend(), service)
    }

    pub fn on(backend: TestBackend, service: &str) -> Self {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/{service}.db", dir.path().display());
                Self {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            TestBackend::Postgres => {
                let name = format!("pm_test_{service}_{}", uuid::Uuid::new_v4().simple());
                let admin = postgres_admin_url();
                let mut conn = peermesh_db::establish_postgres(&admin)
                    .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin}: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let url = replace_db_name(&admin, &name);
                Self {
                    url,
                    backend,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> TestBackend {
        self.backend
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut conn) = peermesh_db::establish_postgres(&postgres_admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

/// `postgres://u@h:5432/postgres?x=y` with the database name replaced.
fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host_part = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_db_name("postgres://p@h:5432/postgres", "x"),
            "postgres://p@h:5432/x"
        );
        assert_eq!(replace_db_name("postgres://p@h", "x"), "postgres://p@h/x");
        assert_eq!(
            replace_db_name("postgres://p@h/db?sslmode=disable", "x"),
            "postgres://p@h/x?sslmode=disable"
        );
    }
}
