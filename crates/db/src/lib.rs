//! Database plumbing shared by the services — and nothing about their tables: the
//! backend chosen from the URL (SQLite or PostgreSQL, same binary), a pool with the
//! SQLite pragmas set on every connection, the migration runner, and a way to run
//! blocking diesel code off the async threads.

use std::path::Path;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use peermesh_common::ApiError;

/// One connection to whichever backend the URL named.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// Runs `$body` on the concrete connection, for the few statements diesel cannot
/// build for both backends at once (upserts): the body is compiled once per backend,
/// so it must be SQL both understand.
///
/// ```text
/// peermesh_db::on_backend!(conn, |c| diesel::insert_into(t).values(&v).on_conflict(k).do_nothing().execute(c))?;
/// ```
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::DbConnection::Sqlite($c) => $body,
            $crate::DbConnection::Pg($c) => $body,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("connecting to the database: {0}")]
    Connect(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("no database connection came free in time")]
    Busy,
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("database task failed: {0}")]
    Task(String),
}

/// What a database closure may stop with: a database error, or the caller's own
/// error type that can hold one.
pub trait DbFailure: From<DbError> + Send + 'static {
    /// The database error inside, when this is one (a lost connection is dropped
    /// from the pool).
    fn database(&self) -> Option<&DbError>;
}

impl DbFailure for DbError {
    fn database(&self) -> Option<&DbError> {
        Some(self)
    }
}

impl DbError {
    /// SQLite found the file locked by another process (and did not or could not wait).
    fn is_locked(&self) -> bool {
        let message = match self {
            DbError::Query(diesel::result::Error::DatabaseError(_, info)) => info.message(),
            DbError::Migration(message) => message,
            _ => return false,
        };
        message.contains("database is locked")
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, DbError::Query(diesel::result::Error::NotFound))
    }

    /// The connection is gone (the server closed it, or it cannot be written to): the
    /// statement may succeed on another one.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection
                    | diesel::result::DatabaseErrorKind::UnableToSendCommand,
                _
            ))
        )
    }

    /// A unique constraint was violated (e.g. an email already taken).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Unexpected database failures are 500s (logged, never shown); an exhausted pool or
/// a connection the server dropped (a restart) is a 503 so clients can retry.
impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Pool(_) | DbError::Busy => ApiError::service_unavailable(
                "database_busy",
                "the database is busy; retry shortly",
            ),
            lost if lost.is_connection_lost() => ApiError::service_unavailable(
                "database_unavailable",
                "the database connection was lost; retry shortly",
            ),
            DbError::Query(diesel::result::Error::NotFound) => {
                ApiError::not_found("no such resource")
            }
            other => ApiError::internal(other),
        }
    }
}

/// Where a URL points, decided by its scheme alone: a typo never creates a stray file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// Path of the SQLite file.
    Sqlite(String),
    Postgres(String),
}

impl DbTarget {
    pub fn parse(url: &str) -> Result<Self, DbError> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(DbError::InvalidUrl(
                    "a SQLite URL needs a file path (sqlite://data/service.db); \
                     :memory: would give every pooled connection its own database"
                        .into(),
                ));
            }
            return Ok(DbTarget::Sqlite(path.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbTarget::Postgres(url.to_owned()));
        }
        Err(DbError::InvalidUrl(
            "the database URL must start with sqlite:// or postgres://".into(),
        ))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbTarget::Sqlite(_) => Backend::Sqlite,
            DbTarget::Postgres(_) => Backend::Postgres,
        }
    }
}

/// How long a SQLite statement waits for another connection's write lock.
const QUERY_BUSY_MS: u32 = 5000;
/// How long start-up work (journal mode, migrations) waits: several processes of one
/// service starting at once on a loaded machine take their turns one after another.
const STARTUP_BUSY_MS: u32 = 60_000;

/// Runs a SQLite start-up step again while other processes starting on the same file
/// hold it, for up to [`STARTUP_BUSY_MS`]. SQLite waits out most locks (busy_timeout),
/// but where waiting could deadlock it refuses at once: a connection already reading
/// the file that asks to write it, as switching a new file's journal does, gets
/// "database is locked" without waiting. The test of six processes starting on one
/// new file met it twice in full CI runs on a loaded machine.
fn retry_while_locked<T>(mut step: impl FnMut() -> Result<T, DbError>) -> Result<T, DbError> {
    let started = Instant::now();
    loop {
        match step() {
            Err(e)
                if e.is_locked()
                    && started.elapsed() < Duration::from_millis(STARTUP_BUSY_MS.into()) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// SQLite settings applied to every pooled connection (they are per connection),
/// besides the busy timeout and the memory map.
const SQLITE_PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// A PostgreSQL connection. Every one must be opened here: libpq brings OpenSSL,
/// which frees its state from an `atexit` handler unless told otherwise, and a pool
/// thread still using a connection while the process exits then crashes it (SIGSEGV
/// after a clean shutdown or a passing test run). OpenSSL initialised first by us, as
/// rust-openssl does it, registers no such handler.
pub fn establish_postgres(url: &str) -> diesel::ConnectionResult<PgConnection> {
    openssl_sys::init();
    PgConnection::establish(url)
}

pub use peermesh_common::config::DEFAULT_SQLITE_MMAP_BYTES;

mod time;
pub use time::DbTime;

pub mod closed_accounts;

/// Now, in UTC, at the microsecond precision both backends store.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::DurationRound;
    let now = chrono::Utc::now().naive_utc();
    now.duration_trunc(chrono::TimeDelta::microseconds(1))
        .unwrap_or(now)
}

/// Opens connections of the backend the URL named.
pub struct ConnectionManager {
    target: DbTarget,
    /// How much of a SQLite file is read through a memory map instead of `read` calls
    /// (0: none). Pages are then used where the kernel keeps them rather than copied
    /// into each connection's cache, and pages a process maps are not what the kernel
    /// drops first as unused file cache: on the machines here a reclaimer (DAMON,
    /// `pageout` of unmapped file pages) evicts a cold page within seconds, and point
    /// reads on a 1 GB database waited on the disk. Measured on `GET /content/{id}`
    /// over 100 000 items: CPU per request 62 -> 52 µs, throughput +15-20 %.
    sqlite_mmap_bytes: u64,
}

/// A connection of the pool, with what the pool must know of it.
pub struct Pooled {
    conn: DbConnection,
    /// A statement found the server gone: the pool drops the connection instead of
    /// lending it again.
    lost: bool,
    /// When its last work ended. A PostgreSQL connection idle longer than
    /// [`IDLE_CHECK`] is asked `SELECT 1` before it is lent: the server may have
    /// closed it meanwhile (a restart, an idle timeout).
    last_used: Instant,
}

/// How long a PostgreSQL connection may sit idle and still be lent unchecked. Checking
/// every loan cost a round trip and a statement on the server per request; under load
/// connections are never idle this long, and one that dies in use is dropped after
/// the statement that found it dead (see [`Pooled::settle`]).
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Pooled {
    /// Whether the connection must be checked before it is lent.
    fn needs_check(&self) -> bool {
        matches!(self.conn, DbConnection::Pg(_)) && self.last_used.elapsed() > IDLE_CHECK
    }

    /// Notes how a piece of work on the connection ended.
    fn settle<T, E: DbFailure>(&mut self, result: &Result<T, E>) {
        let lost = result
            .as_ref()
            .is_err_and(|e| e.database().is_some_and(DbError::is_connection_lost));
        if lost {
            self.lost = true;
        }
        self.last_used = Instant::now();
    }
}

impl std::ops::Deref for Pooled {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = Pooled;
    type Error = DbError;

    fn connect(&self) -> Result<Pooled, DbError> {
        let conn = match &self.target {
            DbTarget::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)
                    .map_err(|e| DbError::Connect(e.to_string()))?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {QUERY_BUSY_MS}; {SQLITE_PRAGMAS} PRAGMA mmap_size = {};",
                    self.sqlite_mmap_bytes
                ))?;
                DbConnection::Sqlite(conn)
            }
            DbTarget::Postgres(url) => establish_postgres(url)
                .map(DbConnection::Pg)
                .map_err(|e| DbError::Connect(e.to_string()))?,
        };
        Ok(Pooled {
            conn,
            lost: false,
            last_used: Instant::now(),
        })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), DbError> {
        conn.conn.batch_execute("SELECT 1").map_err(DbError::from)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        // Also one left inside a transaction that could not be closed.
        conn.lost
            || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                &mut conn.conn,
            )
    }
}

/// A connection from `pool`, checked first if it sat idle (see [`IDLE_CHECK`]); one
/// that fails the check is dropped and the next one tried.
fn checkout(pool: &DbPool) -> Result<PooledConn, DbError> {
    for _ in 0..pool.max_size() {
        let mut conn = pool.get()?;
        if !conn.needs_check() {
            return Ok(conn);
        }
        if conn.conn.batch_execute("SELECT 1").is_ok() {
            conn.last_used = Instant::now();
            return Ok(conn);
        }
        conn.lost = true;
    }
    // Every pooled connection was dead: this one is new.
    Ok(pool.get()?)
}

/// Runs `f` on a connection from `pool` and notes how it ended.
fn run_on<T, E: DbFailure>(
    pool: &DbPool,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E> {
    let mut conn = checkout(pool)?;
    let result = f(&mut conn);
    conn.settle(&result);
    result
}

/// The PostgreSQL advisory lock that migrations are applied under (per database).
const MIGRATION_LOCK_KEY: i64 = 0x7065_6572_6d65_7368; // "peermesh"

/// A service's migrations, one folder per backend with the same names.
pub struct Migrations {
    pub sqlite: EmbeddedMigrations,
    pub postgres: EmbeddedMigrations,
}

/// Lends a `'static` embedded migration set to diesel, which wants it by value.
struct Source(&'static EmbeddedMigrations);

impl<DB: diesel::backend::Backend> diesel::migration::MigrationSource<DB> for Source {
    fn migrations(
        &self,
    ) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
        <EmbeddedMigrations as diesel::migration::MigrationSource<DB>>::migrations(self.0)
    }
}

pub type DbPool = Pool<ConnectionManager>;
pub type PooledConn = PooledConnection<ConnectionManager>;

/// The pool plus what it needs to know about the service's schema.
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    /// One per pooled connection: work waits for a permit as a task, so no more
    /// blocking threads than connections ever wait on the pool (a burst of requests
    /// used to park one thread each on the pool's lock, and switching between them
    /// cost a quarter of the CPU under load).
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    backend: Backend,
    migrations: &'static Migrations,
    /// The SQLite file, when that is the backend.
    sqlite_path: Option<String>,
    /// Single-instance locks held for the life of the process.
    instance_locks: std::sync::Arc<std::sync::Mutex<Vec<std::fs::File>>>,
}

impl Db {
    /// Connects (creating the SQLite file and its folder if needed); does not migrate.
    pub fn connect(
        url: &str,
        pool_size: u32,
        migrations: &'static Migrations,
    ) -> Result<Self, DbError> {
        Self::connect_with(url, pool_size, DEFAULT_SQLITE_MMAP_BYTES, migrations)
    }

    /// [`Db::connect`] with the SQLite memory-map size chosen (see
    /// [`DEFAULT_SQLITE_MMAP_BYTES`]).
    pub fn connect_with(
        url: &str,
        pool_size: u32,
        sqlite_mmap_bytes: u64,
        migrations: &'static Migrations,
    ) -> Result<Self, DbError> {
        let target = DbTarget::parse(url)?;
        if let DbTarget::Sqlite(path) = &target {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| DbError::Connect(format!("creating {}: {e}", dir.display())))?;
            }
            // WAL sticks to the file: set it once, before the pool opens connections.
            // Switching a new file's journal waits for the other processes starting
            // beside this one: the start-up busy timeout.
            let mut conn =
                SqliteConnection::establish(path).map_err(|e| DbError::Connect(e.to_string()))?;
            conn.batch_execute(&format!("PRAGMA busy_timeout = {STARTUP_BUSY_MS};"))?;
            retry_while_locked(|| Ok(conn.batch_execute("PRAGMA journal_mode = WAL;")?))?;
        }
        let backend = target.backend();
        let sqlite_path = match &target {
            DbTarget::Sqlite(path) => Some(path.clone()),
            DbTarget::Postgres(_) => None,
        };
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            // Not before every use: only connections that sat idle are checked (see
            // `checkout`), and a SQLite file opened by this process never goes away.
            .test_on_check_out(false)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .idle_timeout(Some(Duration::from_secs(300)))
            .build(ConnectionManager {
                target,
                sqlite_mmap_bytes,
            })?;
        Ok(Self {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(pool.max_size() as usize)),
            pool,
            backend,
            migrations,
            sqlite_path,
            instance_locks: Default::default(),
        })
    }

    /// On SQLite, makes this process the only `kind` (e.g. `content`, `worker`) using
    /// the file, by an exclusive lock on `<file>.<kind>.lock` held until exit; a second
    /// one is refused with the reason. Nothing to do on PostgreSQL, which scales.
    pub fn hold_single_instance(&self, kind: &str) -> Result<(), DbError> {
        let Some(path) = &self.sqlite_path else {
            return Ok(());
        };
        let lock_path = format!("{path}.{kind}.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DbError::Connect(format!("opening {lock_path}: {e}")))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DbError::Connect(format!(
                    "another {kind} process already uses {path} ({lock_path} is locked): \
                     SQLite mode runs one replica per service; use PostgreSQL to scale"
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(DbError::Connect(format!("locking {lock_path}: {e}")))
            }
        }
        self.instance_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(file);
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Pool statistics: (connections open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Publishes the pool's state (`db_pool_connections{state=open|idle|in_use|max}`),
    /// read at every scrape.
    pub fn register_metrics(
        &self,
        metrics: &peermesh_common::metrics::Metrics,
    ) -> Result<(), peermesh_common::metrics::MetricsError> {
        let gauge = metrics.gauge(
            "db_pool_connections",
            "Database pool connections by state: idle or in use (they sum to the open ones)",
            &["state"],
        )?;
        let max = metrics.register(prometheus::IntGauge::new(
            "db_pool_max_connections",
            "The most connections the database pool opens",
        )?)?;
        max.set(i64::from(self.pool.max_size()));
        let pool = self.pool.clone();
        metrics.on_scrape(move || {
            let state = pool.state();
            let gauge = gauge.clone();
            async move {
                let in_use = state.connections.saturating_sub(state.idle_connections);
                for (label, value) in [("idle", state.idle_connections), ("in_use", in_use)] {
                    gauge.with_label_values(&[label]).set(i64::from(value));
                }
            }
        });
        Ok(())
    }

    /// Applies pending migrations; returns the versions applied. Several processes of
    /// one service may start at once (an API and its workers, replicas): the first
    /// migrates while the others wait for it — on PostgreSQL behind an advisory lock,
    /// on SQLite behind the write lock of one transaction — and then find nothing
    /// pending.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut conn = checkout(&self.pool)?;
        let migrations = self.migrations;
        let names = |v: Vec<diesel::migration::MigrationVersion<'_>>| -> Vec<String> {
            v.iter().map(|m| m.to_string()).collect()
        };
        match &mut **conn {
            DbConnection::Sqlite(c) => {
                // Processes starting together queue here one after the other: the
                // last may wait for all the others' migrations, longer than a query.
                c.batch_execute(&format!("PRAGMA busy_timeout = {STARTUP_BUSY_MS}"))?;
                let applied = retry_while_locked(|| {
                    c.immediate_transaction(|c| {
                        c.run_pending_migrations(Source(&migrations.sqlite))
                            .map(names)
                            .map_err(|e| DbError::Migration(e.to_string()))
                    })
                });
                c.batch_execute(&format!("PRAGMA busy_timeout = {QUERY_BUSY_MS}"))?;
                applied
            }
            DbConnection::Pg(c) => {
                let lock = |c: &mut PgConnection, f: &str| {
                    diesel::RunQueryDsl::execute(
                        diesel::sql_query(format!("SELECT {f}({MIGRATION_LOCK_KEY})")),
                        c,
                    )
                };
                lock(c, "pg_advisory_lock")?;
                let applied = c
                    .run_pending_migrations(Source(&migrations.postgres))
                    .map(names)
                    .map_err(|e| DbError::Migration(e.to_string()));
                lock(c, "pg_advisory_unlock")?;
                applied
            }
        }
    }

    /// Runs blocking database work on the blocking pool, never on an async worker.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    {
        self.try_run(f).await
    }

    /// [`Db::run`] for work that may also stop with the caller's own error `E` (an
    /// item that is not there, a version that changed), so no `Result<Result<…>>`.
    pub async fn try_run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: DbFailure,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let permit = tokio::time::timeout(
            self.pool.connection_timeout(),
            self.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| DbError::Busy)?
        .map_err(|_| DbError::Busy)?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            run_on(&pool, f)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// A short read by key (a row or a few by an index) that, on SQLite, runs right here
    /// on the calling async worker when a connection is free at once: an in-process
    /// B-tree lookup costs a few microseconds, less than the two thread switches of
    /// handing it to a blocking thread and back (`GET /content/{id}` over 100 000
    /// items: 110 -> 55 µs of CPU per request, 9 000 -> 15 000 req/s). Otherwise —
    /// every connection busy, or PostgreSQL, where a network round trip must not hold
    /// the worker — exactly [`Db::run`]. Never for writes, scans or anything whose time
    /// grows with the data.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    {
        self.try_read(f).await
    }

    /// [`Db::read`] that may stop with the caller's own error (see [`Db::try_run`]).
    pub async fn try_read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: DbFailure,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        if self.backend == Backend::Sqlite {
            if let Ok(_permit) = self.permits.try_acquire() {
                if let Some(mut conn) = self.pool.try_get() {
                    let result = f(&mut conn);
                    conn.settle(&result);
                    return result;
                }
            }
        }
        self.try_run(f).await
    }

    /// Like [`Db::run`] inside a write transaction; on SQLite it starts with
    /// `BEGIN IMMEDIATE` so two writers never deadlock upgrading a read lock.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    {
        self.try_write(f).await
    }

    /// [`Db::write`] that may stop with the caller's own error, which rolls the
    /// transaction back like a database error does.
    pub async fn try_write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: DbFailure,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.try_run(move |conn| write_transaction(conn, f)).await
    }

    /// The readiness check for [`peermesh_common::health::Readiness::with_check`].
    pub fn ready_check(
        &self,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
           + Send
           + Sync
           + 'static {
        let db = self.clone();
        move || {
            let db = db.clone();
            Box::pin(async move { db.check_ready().await })
        }
    }

    /// Readiness: the database answers and no migration is pending.
    pub async fn check_ready(&self) -> Result<(), String> {
        let migrations = self.migrations;
        self.run(move |conn| {
            conn.batch_execute("SELECT 1")?;
            let pending = match conn {
                DbConnection::Sqlite(c) => c.has_pending_migration(Source(&migrations.sqlite)),
                DbConnection::Pg(c) => c.has_pending_migration(Source(&migrations.postgres)),
            }
            .map_err(|e| DbError::Migration(e.to_string()))?;
            if pending {
                return Err(DbError::Migration("migrations are pending".into()));
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
    }
}

fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    E: DbFailure,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
                .map_err(DbError::from)?
        }
        DbConnection::Pg(c) => {
            AnsiTransactionManager::begin_transaction(c).map_err(DbError::from)?
        }
    }
    match f(conn) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)
                .map_err(DbError::from)?;
            Ok(value)
        }
        Err(err) => {
            <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)
                .map_err(DbError::from)?;
            Err(err)
        }
    }
}

/// `<binary> migrate`: connects with one connection and applies what is missing.
pub fn migrate_only(
    settings: &peermesh_common::config::ServerSettings,
    default_url: &str,
    migrations: &'static Migrations,
) -> Result<Vec<String>, DbError> {
    let url = settings.database_url_or(default_url);
    Db::connect_with(&url, 1, settings.sqlite_mmap_bytes, migrations)?.migrate()
}

/// Opens a service's database from its settings and applies its migrations unless
/// they are switched off (`<PREFIX>RUN_MIGRATIONS=false`). With
/// `<PREFIX>SQLITE_SINGLE_INSTANCE=true`, the process must be the only one of each of
/// `kinds` on a SQLite file (see [`Db::hold_single_instance`]).
pub fn open(
    settings: &peermesh_common::config::ServerSettings,
    default_url: &str,
    migrations: &'static Migrations,
    kinds: &[&str],
    logger: &slog::Logger,
) -> Result<Db, DbError> {
    let url = settings.database_url_or(default_url);
    let db = Db::connect_with(
        &url,
        settings.db_pool_size,
        settings.sqlite_mmap_bytes,
        migrations,
    )?;
    if settings.sqlite_single_instance {
        for kind in kinds {
            db.hold_single_instance(kind)?;
        }
    }
    slog::info!(logger, "database connected"; "backend" => format!("{:?}", db.backend()));
    if settings.run_migrations {
        let applied = db.migrate()?;
        if !applied.is_empty() {
            slog::info!(logger, "migrations applied"; "versions" => applied.join(","));
        }
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend_by_scheme() {
        assert_eq!(
            DbTarget::parse("sqlite://data/auth.db").unwrap(),
            DbTarget::Sqlite("data/auth.db".into())
        );
        assert_eq!(
            DbTarget::parse("sqlite:///var/lib/x.db?mode=rwc").unwrap(),
            DbTarget::Sqlite("/var/lib/x.db".into())
        );
        assert_eq!(
            DbTarget::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert!(DbTarget::parse("postgress://typo/db").is_err());
        assert!(DbTarget::parse("data/auth.db").is_err());
        assert!(DbTarget::parse("sqlite://:memory:").is_err());
    }
}
