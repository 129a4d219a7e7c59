//! Password hashing with argon2id at OWASP parameters (19 MiB, t=2, p=1), run on a
//! few low-priority threads of its own so logins cannot starve the rest.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use peermesh_common::FieldError;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Checks a new password's length (in characters, not bytes).
pub fn check_new_password(field: &str, password: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: the OWASP recommendation for argon2id.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a hash could not be computed now.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks are waiting; retry shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

type Job = Box<dyn FnOnce() + Send>;

/// The lowest priority of the normal scheduler (nice 19: a weight of 15 against 1024
/// for any request thread, so hashing gets ~1.5 % of a CPU that other work wants).
/// Not SCHED_IDLE, though it sounds the better fit: measured here with
/// `scripts/bench auth`, `GET /me`'s p99 while logins saturate both cores rose
/// 2.3-3.0x under SCHED_IDLE hashing threads and 1.3-2.2x (median 1.4x) at nice 19,
/// with the same login rate. Lowering one's own priority is always allowed; if it
/// fails we merely hash at normal priority.
fn lower_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

/// Jobs waiting for a hashing thread before new ones are refused (a few seconds' worth).
const QUEUE: usize = 256;

/// Hashes on its own threads (as many as `concurrency`), which run at the lowest CPU
/// priority: while logins saturate the machine, other requests still get the CPU
/// first, and logins use what is left.
#[derive(Clone)]
pub struct Hasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Verified against when the account does not exist, so both cases cost the same.
    dummy_hash: Arc<str>,
}

/// A hashing thread that has had no work this long gives its argon2 memory back.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(30);

impl Hasher {
    pub fn new(concurrency: usize) -> Result<Self, String> {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..concurrency.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match queue.lock() {
                            Ok(rx) => rx.recv_timeout(IDLE_RELEASE),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => release_memory(),
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .map_err(|e| format!("starting hashing threads: {e}"))?;
        }
        // The dummy hash is made like every other one, on a hashing thread: a 19 MiB
        // buffer allocated and freed here would have raised glibc's mmap threshold
        // past it, and every later buffer would stay in the heap after being freed.
        // Its memory goes back at once: a service that has not signed anyone in yet
        // holds no argon2 memory (it held 19 MiB of its 27 MiB idle).
        let (tx, rx) = std::sync::mpsc::channel();
        jobs.try_send(Box::new(move || {
            let hash = hash_phc(b"not-a-real-password-0000");
            release_memory();
            let _ = tx.send(hash);
        }))
        .map_err(|e| format!("argon2 self-test: {e}"))?;
        let dummy = rx
            .recv()
            .map_err(|e| format!("argon2 self-test: {e}"))?
            .map_err(|e| format!("argon2 self-test: {e}"))?;
        Ok(Self {
            jobs,
            dummy_hash: dummy.into(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.try_send(job).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(_) => HashError::Busy,
            std::sync::mpsc::TrySendError::Disconnected(_) => {
                HashError::Failed("hashing threads stopped".into())
            }
        })?;
        rx.await
            .map_err(|_| HashError::Failed("hashing job dropped".into()))
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_phc(password.as_bytes())).await?
    }

    /// True when `password` matches `hash`; with no hash (unknown account, or an
    /// account without a password) the dummy hash is checked and the answer is false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        self.run(move || verify_phc(password.as_bytes(), &hash) && known)
            .await
    }
}

thread_local! {
    /// Each hashing thread keeps its argon2 memory: allocating 19 MiB per login cost
    /// thousands of page faults (and TLB shootdowns that stalled the other cores), and
    /// glibc kept what every sign-up had freed (auth held ~370 MiB after 40 of them).
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Gives this thread's argon2 memory back (it is mapped on its own, so the system
/// gets it at once).
fn release_memory() {
    BLOCKS.with(|cell| *cell.borrow_mut() = Vec::new());
}

/// Runs argon2id with `params` in this thread's memory.
fn argon2id_with_thread_memory(
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        blocks.resize(params.block_count(), argon2::Block::default());
        Argon2::new(Algorithm::Argon2id, version, params).hash_password_into_with_memory(
            password,
            salt,
            out,
            &mut blocks[..],
        )
    })
}

/// A new PHC string for `password` (argon2id, a fresh salt), computed in this
/// thread's memory.
fn hash_phc(password: &[u8]) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Failed(e.to_string());
    let params = argon2().params().clone();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| failed(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id_with_thread_memory(
        Version::V0x13,
        params.clone(),
        password,
        salt_bytes,
        &mut out,
    )
    .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a PHC string, reusing this thread's argon2 memory for
/// argon2id hashes (other variants take argon2's own path).
fn verify_phc(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return argon2().verify_password(password, &parsed).is_ok();
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    argon2id_with_thread_memory(version, params, password, salt, &mut out).is_ok()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            out.as_slice(),
            expected.as_bytes(),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher as _;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(check_new_password("p", "short").is_err());
        assert!(check_new_password("p", "ééééééé").is_err());
        assert!(check_new_password("p", "éééééééé").is_ok());
        assert!(check_new_password("p", &"x".repeat(128)).is_ok());
        assert!(check_new_password("p", &"x".repeat(129)).is_err());
    }

    #[test]
    fn the_reusing_verifier_agrees_with_argon2() {
        let salt = SaltString::generate(&mut OsRng);
        let id = argon2()
            .hash_password(b"secret one", &salt)
            .unwrap()
            .to_string();
        assert!(verify_phc(b"secret one", &id));
        assert!(
            verify_phc(b"secret one", &id),
            "second run reuses the memory"
        );
        assert!(!verify_phc(b"secret two", &id));
        // Other variants and parameters still verify (through argon2's own path).
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"old", &salt)
        .unwrap()
        .to_string();
        assert!(verify_phc(b"old", &argon2i));
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"small", &salt)
        .unwrap()
        .to_string();
        assert!(verify_phc(b"small", &small) && !verify_phc(b"big", &small));
        assert!(!verify_phc(b"x", "not a hash"));
    }

    #[test]
    fn hashes_made_in_thread_memory_are_standard_phc_strings() {
        let a = hash_phc(b"secret one").unwrap();
        let b = hash_phc(b"secret one").unwrap();
        assert_ne!(a, b, "a fresh salt each time");
        // argon2's own verifier (its own memory) agrees with ours.
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(argon2().verify_password(b"secret one", &parsed).is_ok());
        assert!(argon2().verify_password(b"secret two", &parsed).is_err());
        assert!(verify_phc(b"secret one", &b));
    }

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let h = Hasher::new(2).unwrap();
        let hash = h.hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(h
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!h.verify("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!h
            .verify("not-a-real-password-0000".into(), None)
            .await
            .unwrap());
    }
}
