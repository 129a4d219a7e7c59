//! The job queue: a table claimed with leases. On PostgreSQL a claim is one
//! `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)`, so workers never wait on
//! each other; on SQLite it runs inside the `BEGIN IMMEDIATE` write transaction, which
//! lets one writer at a time pick, so two workers never take the same job.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use peermesh_db::{DbConnection, DbError};

use crate::schema::{ingest_jobs, ingested_files};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";
/// Every status a job can be in.
pub const STATUSES: [&str; 5] = [QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED];

#[derive(Debug, Clone, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = ingest_jobs)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Job {
    pub id: String,
    pub owner_id: String,
    pub kind: String,
    pub status: String,
    pub progress: f64,
    pub attempts: i32,
    pub max_attempts: i32,
    pub error: Option<String>,
    pub input: String,
    pub content_ids: String,
    pub request_id: Option<String>,
    pub run_after: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub worker: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The W3C `traceparent` of the request that made the job, continued by its worker.
    pub trace_parent: Option<String>,
}

impl Job {
    /// A new job, due now.
    pub fn queued(
        owner: &str,
        kind: &str,
        input: String,
        max_attempts: i32,
        request_id: Option<String>,
    ) -> Self {
        let now = now();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            owner_id: owner.to_owned(),
            kind: kind.to_owned(),
            status: QUEUED.into(),
            progress: 0.0,
            attempts: 0,
            max_attempts,
            error: None,
            input,
            content_ids: "[]".into(),
            request_id,
            run_after: now,
            lease_until: None,
            worker: None,
            created_at: now,
            updated_at: now,
            trace_parent: peermesh_common::trace::outgoing(),
        }
    }
}

pub fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

pub fn insert(conn: &mut DbConnection, job: &Job) -> Result<(), DbError> {
    diesel::insert_into(ingest_jobs::table)
        .values(job)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, owner: &str, id: &str) -> Result<Option<Job>, DbError> {
    Ok(ingest_jobs::table
        .filter(ingest_jobs::id.eq(id.to_owned()))
        .filter(ingest_jobs::owner_id.eq(owner.to_owned()))
        .select(Job::as_select())
        .first(conn)
        .optional()?)
}

/// A job by id, whoever owns it (internal use: callbacks).
pub fn by_id(conn: &mut DbConnection, id: &str) -> Result<Option<Job>, DbError> {
    Ok(ingest_jobs::table
        .find(id.to_owned())
        .select(Job::as_select())
        .first(conn)
        .optional()?)
}

/// Newest first; `after` is the last id of the previous page. `owner: None` lists
/// every owner's jobs (the operators' `jobs list`).
pub fn page(
    conn: &mut DbConnection,
    owner: Option<&str>,
    status: Option<&str>,
    limit: i64,
    after: Option<&str>,
) -> Result<Vec<Job>, DbError> {
    let mut query = ingest_jobs::table
        .select(Job::as_select())
        .order(ingest_jobs::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(ingest_jobs::owner_id.eq(owner.to_owned()));
    }
    if let Some(status) = status {
        query = query.filter(ingest_jobs::status.eq(status.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(ingest_jobs::id.lt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// Ends, as failed, the running jobs whose lease lapsed on their last attempt: the
/// worker holding them stopped (crashed, was killed) that many times, and a job that
/// keeps taking its worker down must not be claimed forever. Returns them. Run in a
/// write transaction.
pub fn bury_lapsed(conn: &mut DbConnection) -> Result<Vec<Job>, DbError> {
    let now = now();
    let dead = ingest_jobs::table
        .filter(ingest_jobs::status.eq(RUNNING))
        .filter(ingest_jobs::lease_until.lt(now))
        .filter(ingest_jobs::attempts.ge(ingest_jobs::max_attempts));
    let jobs: Vec<Job> = dead.select(Job::as_select()).load(conn)?;
    if jobs.is_empty() {
        return Ok(jobs);
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    diesel::update(
        ingest_jobs::table
            .filter(ingest_jobs::id.eq_any(&ids))
            .filter(ingest_jobs::status.eq(RUNNING)),
    )
    .set((
        ingest_jobs::status.eq(FAILED),
        ingest_jobs::error.eq(Some(
            "given up: the worker processing this job stopped (its lease lapsed) on every attempt",
        )),
        ingest_jobs::lease_until.eq(None::<NaiveDateTime>),
        ingest_jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(jobs)
}

/// Takes the next due job (queued and due, or running with a lapsed lease and
/// attempts left; see [`bury_lapsed`]) for `worker`, holding it for `lease`. Run in a
/// write transaction.
pub fn claim(
    conn: &mut DbConnection,
    worker: &str,
    lease: TimeDelta,
) -> Result<Option<Job>, DbError> {
    let now = now();
    let until = now + lease;
    match conn {
        DbConnection::Pg(c) => {
            let jobs: Vec<Job> = diesel::sql_query(
                "UPDATE ingest_jobs SET status = 'running', attempts = attempts + 1, progress = 0, \
                     lease_until = $1, worker = $2, updated_at = $3 \
                 WHERE id = ( \
                     SELECT id FROM ingest_jobs \
                     WHERE (status = 'queued' AND run_after <= $3) \
                        OR (status = 'running' AND lease_until < $3 \
                            AND attempts < max_attempts) \
                     ORDER BY run_after LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING *",
            )
            .bind::<Timestamp, _>(until)
            .bind::<Text, _>(worker)
            .bind::<Timestamp, _>(now)
            .load(c)?;
            Ok(jobs.into_iter().next())
        }
        DbConnection::Sqlite(_) => {
            let due: Option<String> = ingest_jobs::table
                .filter(
                    ingest_jobs::status
                        .eq(QUEUED)
                        .and(ingest_jobs::run_after.le(now))
                        .or(ingest_jobs::status
                            .eq(RUNNING)
                            .and(ingest_jobs::lease_until.lt(now))
                            .and(ingest_jobs::attempts.lt(ingest_jobs::max_attempts))),
                )
                .order(ingest_jobs::run_after.asc())
                .select(ingest_jobs::id)
                .first(conn)
                .optional()?;
            let Some(id) = due else {
                return Ok(None);
            };
            diesel::update(ingest_jobs::table.find(&id))
                .set((
                    ingest_jobs::status.eq(RUNNING),
                    ingest_jobs::attempts.eq(ingest_jobs::attempts + 1),
                    ingest_jobs::progress.eq(0.0),
                    ingest_jobs::lease_until.eq(Some(until)),
                    ingest_jobs::worker.eq(Some(worker)),
                    ingest_jobs::updated_at.eq(now),
                ))
                .execute(conn)?;
            Ok(ingest_jobs::table
                .find(&id)
                .select(Job::as_select())
                .first(conn)
                .optional()?)
        }
    }
}

/// Extends the lease of a job `worker` still holds; false when it lost it.
pub fn heartbeat(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    lease: TimeDelta,
    progress: Option<f64>,
) -> Result<bool, DbError> {
    let now = now();
    let target = ingest_jobs::table
        .filter(ingest_jobs::id.eq(id.to_owned()))
        .filter(ingest_jobs::status.eq(RUNNING))
        .filter(ingest_jobs::worker.eq(worker.to_owned()));
    let n = diesel::update(target)
        .set((
            ingest_jobs::lease_until.eq(Some(now + lease)),
            ingest_jobs::updated_at.eq(now),
            progress.map(|p| ingest_jobs::progress.eq(p)),
        ))
        .execute(conn)?;
    Ok(n > 0)
}

/// Marks a job `worker` holds as done with what it made.
pub fn succeed(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    content_ids: &[String],
) -> Result<bool, DbError> {
    let now = now();
    let n = diesel::update(
        ingest_jobs::table
            .filter(ingest_jobs::id.eq(id.to_owned()))
            .filter(ingest_jobs::status.eq(RUNNING))
            .filter(ingest_jobs::worker.eq(worker.to_owned())),
    )
    .set((
        ingest_jobs::status.eq(SUCCEEDED),
        ingest_jobs::progress.eq(1.0),
        ingest_jobs::error.eq(None::<String>),
        ingest_jobs::content_ids.eq(serde_json::Value::from(content_ids.to_vec()).to_string()),
        ingest_jobs::lease_until.eq(None::<NaiveDateTime>),
        ingest_jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n > 0)
}

/// Records a failed attempt: queued again after `retry_in`, or `failed` for good when
/// `retry_in` is `None` (a permanent error, or no attempts left).
pub fn fail(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    error: &str,
    retry_in: Option<TimeDelta>,
) -> Result<bool, DbError> {
    let now = now();
    let target = ingest_jobs::table
        .filter(ingest_jobs::id.eq(id.to_owned()))
        .filter(ingest_jobs::status.eq(RUNNING))
        .filter(ingest_jobs::worker.eq(worker.to_owned()));
    let n = match retry_in {
        Some(delay) => diesel::update(target)
            .set((
                ingest_jobs::status.eq(QUEUED),
                ingest_jobs::error.eq(Some(error)),
                ingest_jobs::run_after.eq(now + delay),
                ingest_jobs::lease_until.eq(None::<NaiveDateTime>),
                ingest_jobs::worker.eq(None::<String>),
                ingest_jobs::updated_at.eq(now),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                ingest_jobs::status.eq(FAILED),
                ingest_jobs::error.eq(Some(error)),
                ingest_jobs::lease_until.eq(None::<NaiveDateTime>),
                ingest_jobs::updated_at.eq(now),
            ))
            .execute(conn)?,
    };
    Ok(n > 0)
}

/// Hands a job back untouched (shutdown): it counts no attempt.
pub fn release(conn: &mut DbConnection, id: &str, worker: &str) -> Result<(), DbError> {
    diesel::update(
        ingest_jobs::table
            .filter(ingest_jobs::id.eq(id.to_owned()))
            .filter(ingest_jobs::status.eq(RUNNING))
            .filter(ingest_jobs::worker.eq(worker.to_owned())),
    )
    .set((
        ingest_jobs::status.eq(QUEUED),
        ingest_jobs::attempts.eq(ingest_jobs::attempts - 1),
        ingest_jobs::lease_until.eq(None::<NaiveDateTime>),
        ingest_jobs::worker.eq(None::<String>),
        ingest_jobs::updated_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(())
}

/// Cancels a queued job; false when it is not queued (any more).
pub fn cancel(conn: &mut DbConnection, owner: &str, id: &str) -> Result<bool, DbError> {
    let now = now();
    let n = diesel::update(
        ingest_jobs::table
            .filter(ingest_jobs::id.eq(id.to_owned()))
            .filter(ingest_jobs::owner_id.eq(owner.to_owned()))
            .filter(ingest_jobs::status.eq(QUEUED)),
    )
    .set((
        ingest_jobs::status.eq(CANCELLED),
        ingest_jobs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n > 0)
}

/// Queues a failed (or cancelled) job again with fresh attempts; `owner: None` for
/// any owner's job (the operators' `jobs retry`).
pub fn retry(conn: &mut DbConnection, owner: Option<&str>, id: &str) -> Result<bool, DbError> {
    let now = now();
    let changes = (
        ingest_jobs::status.eq(QUEUED),
        ingest_jobs::attempts.eq(0),
        ingest_jobs::progress.eq(0.0),
        ingest_jobs::run_after.eq(now),
        ingest_jobs::updated_at.eq(now),
    );
    let retryable = ingest_jobs::id
        .eq(id.to_owned())
        .and(ingest_jobs::status.eq_any([FAILED, CANCELLED]));
    let n = match owner {
        Some(owner) => diesel::update(
            ingest_jobs::table
                .filter(retryable)
                .filter(ingest_jobs::owner_id.eq(owner.to_owned())),
        )
        .set(changes)
        .execute(conn)?,
        None => diesel::update(ingest_jobs::table.filter(retryable))
            .set(changes)
            .execute(conn)?,
    };
    Ok(n > 0)
}

/// The job an earlier upload of the same bytes by this owner made.
pub fn job_for_file(
    conn: &mut DbConnection,
    owner: &str,
    sha256: &str,
) -> Result<Option<Job>, DbError> {
    Ok(ingested_files::table
        .inner_join(ingest_jobs::table)
        .filter(ingested_files::owner_id.eq(owner.to_owned()))
        .filter(ingested_files::sha256.eq(sha256.to_owned()))
        .select(Job::as_select())
        .first(conn)
        .optional()?)
}

/// Points (owner, sha256) at `job_id`: a new row, or the row that pointed at the
/// failed or cancelled job `replacing`. Of two transactions recording the same file at
/// once only one succeeds; the other fails with a unique violation (the insert hits
/// the primary key, or the row no longer points at `replacing`).
fn remember_file(
    conn: &mut DbConnection,
    owner: &str,
    sha256: &str,
    job_id: &str,
    size: u64,
    replacing: Option<&str>,
) -> Result<(), DbError> {
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let Some(replacing) = replacing else {
        diesel::insert_into(ingested_files::table)
            .values((
                ingested_files::owner_id.eq(owner.to_owned()),
                ingested_files::sha256.eq(sha256.to_owned()),
                ingested_files::job_id.eq(job_id.to_owned()),
                ingested_files::created_at.eq(now()),
                ingested_files::size.eq(size),
            ))
            .execute(conn)?;
        return Ok(());
    };
    let replaced = diesel::update(
        ingested_files::table
            .filter(ingested_files::owner_id.eq(owner.to_owned()))
            .filter(ingested_files::sha256.eq(sha256.to_owned()))
            .filter(ingested_files::job_id.eq(replacing.to_owned())),
    )
    .set((
        ingested_files::job_id.eq(job_id.to_owned()),
        ingested_files::created_at.eq(now()),
        ingested_files::size.eq(size),
    ))
    .execute(conn)?;
    if replaced == 0 {
        return Err(DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            Box::new("the file was taken in by another request meanwhile".to_owned()),
        )));
    }
    Ok(())
}

/// The per-user limits a new file job must fit in.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Bytes of files one user may have stored.
    pub quota_bytes: u64,
    /// Jobs one user may have queued or running.
    pub active_jobs: i64,
}

/// What recording a file job came to.
#[derive(Debug)]
pub enum FileClaim {
    /// The job was recorded and holds the file.
    New,
    /// The same bytes of the same owner already have a job (done, or under way).
    Earlier(Box<Job>),
    /// The file does not fit in the owner's storage quota.
    OverQuota { used: u64, quota: u64 },
    /// The owner has `active` jobs queued or running already.
    QueueFull { active: i64 },
}

/// Records `job` for the owner's file `sha256` of `size` bytes, unless an earlier job
/// for the same bytes answers (all but `stale`, see below) or a limit refuses it. Run in a write transaction; a
/// concurrent claim of the same file makes this one fail with a unique violation (the
/// caller then finds the winner with [`job_for_file`]).
pub fn claim_file(
    conn: &mut DbConnection,
    job: &Job,
    sha256: &str,
    size: u64,
    limits: FileLimits,
    stale: Option<&str>,
) -> Result<FileClaim, DbError> {
    let owner = job.owner_id.as_str();
    let earlier = job_for_file(conn, owner, sha256)?;
    if let Some(earlier) = &earlier {
        // A failed or cancelled job is replaced, and so is `stale`: a succeeded job
        // whose items the owner has deleted since.
        let replaced = [FAILED, CANCELLED].contains(&earlier.status.as_str())
            || stale == Some(earlier.id.as_str());
        if !replaced {
            return Ok(FileClaim::Earlier(Box::new(earlier.clone())));
        }
    }
    let used = stored_bytes(conn, owner, sha256)?;
    if used.saturating_add(size) > limits.quota_bytes {
        return Ok(FileClaim::OverQuota {
            used,
            quota: limits.quota_bytes,
        });
    }
    if job.status == QUEUED {
        let active = active_jobs(conn, owner)?;
        if active >= limits.active_jobs {
            return Ok(FileClaim::QueueFull { active });
        }
    }
    insert(conn, job)?;
    let replacing = earlier.as_ref().map(|e| e.id.as_str());
    remember_file(conn, owner, sha256, &job.id, size, replacing)?;
    Ok(FileClaim::New)
}

/// Bytes of the owner's stored files, but for `except` (the file being replaced).
fn stored_bytes(conn: &mut DbConnection, owner: &str, except: &str) -> Result<u64, DbError> {
    let total: i64 = ingested_files::table
        .filter(ingested_files::owner_id.eq(owner.to_owned()))
        .filter(ingested_files::sha256.ne(except.to_owned()))
        // The same on both backends (diesel's sum() is NUMERIC on PostgreSQL).
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(COALESCE(SUM(size), 0) AS BIGINT)",
        ))
        .first(conn)?;
    Ok(u64::try_from(total).unwrap_or(0))
}

/// Jobs of the owner waiting or running.
pub fn active_jobs(conn: &mut DbConnection, owner: &str) -> Result<i64, DbError> {
    Ok(ingest_jobs::table
        .filter(ingest_jobs::owner_id.eq(owner.to_owned()))
        .filter(ingest_jobs::status.eq_any([QUEUED, RUNNING]))
        .count()
        .get_result(conn)?)
}

/// Jobs waiting and running, by status (the queue's depth, for metrics).
pub fn depth(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, DbError> {
    Ok(ingest_jobs::table
        .filter(ingest_jobs::status.eq_any([QUEUED, RUNNING]))
        .group_by(ingest_jobs::status)
        .select((ingest_jobs::status, diesel::dsl::count_star()))
        .load(conn)?)
}
