//! Original files, kept under content-addressed names (`<dir>/ab/abcdef…`, the
//! SHA-256 of the bytes) — never the client's file name. An upload is streamed to a
//! temporary file while it is counted and hashed, and refused the moment it passes
//! the limit: it is never held whole in memory. It stays a temporary file ([`Staged`])
//! until a job takes it (commit); a refused upload is removed with it, so it leaves
//! no bytes behind.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the upload broke off: {0}")]
    Upload(String),
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// An upload in its temporary file, counted and hashed: [`Staged::commit`] moves it
/// into storage; dropped uncommitted, it is removed.
#[derive(Debug)]
pub struct Staged {
    pub sha256: String,
    pub size: u64,
    tmp: Option<PathBuf>,
    target: PathBuf,
}

impl Staged {
    /// Where the bytes are now.
    pub fn path(&self) -> &Path {
        self.tmp.as_deref().unwrap_or(&self.target)
    }

    /// Moves the bytes into storage under their hash (an existing copy is kept).
    pub async fn commit(mut self) -> std::io::Result<()> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        if let Some(parent) = self.target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if tokio::fs::try_exists(&self.target).await? {
            tokio::fs::remove_file(&tmp).await
        } else {
            tokio::fs::rename(&tmp, &self.target).await
        }
    }
}

impl Staged {
    /// [`Staged::commit`] for blocking code (inside a database transaction).
    pub fn commit_blocking(mut self) -> std::io::Result<()> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        if let Some(parent) = self.target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if self.target.exists() {
            std::fs::remove_file(&tmp)
        } else {
            std::fs::rename(&tmp, &self.target)
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl Blobs {
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join("tmp"))?;
        Ok(Self { dir })
    }

    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2.min(sha256.len())]).join(sha256)
    }

    /// Streams `chunks` into a temporary file, at most `max` bytes.
    pub async fn store<S, E>(&self, mut chunks: S, max: u64) -> Result<Staged, BlobError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let tmp = self
            .dir
            .join("tmp")
            .join(uuid::Uuid::now_v7().simple().to_string());
        let mut file = tokio::fs::File::create(&tmp).await?;
        // Removed on every way out until it is handed over below.
        let mut staged = Staged {
            sha256: String::new(),
            size: 0,
            tmp: Some(tmp),
            target: PathBuf::new(),
        };
        let mut hasher = Sha256::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| BlobError::Upload(e.to_string()))?;
            staged.size += chunk.len() as u64;
            if staged.size > max {
                return Err(BlobError::TooLarge(max));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        drop(file);
        staged.sha256 = format!("{:x}", hasher.finalize());
        staged.target = self.path(&staged.sha256);
        Ok(staged)
    }

    /// Reads a stored file whole (for files up to the processing limit).
    pub async fn read(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(sha256)).await
    }

    /// Removes a stored file (gone already is fine).
    pub async fn remove(&self, sha256: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(sha256)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
