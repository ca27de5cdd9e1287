//! Password hashing with argon2id, off the async workers and with bounded concurrency: each
//! hash takes ~19 MiB and tens of milliseconds of a core, so a login flood queues here
//! instead of starving every other request of CPU and memory.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Shortest and longest accepted passwords (the upper bound caps hashing work per request).
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

#[derive(Clone)]
pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when an email is unknown, so that
    /// "no such user" and "wrong password" take the same time.
    decoy: Arc<str>,
}

impl PasswordHashing {
    pub fn new(concurrency: usize) -> Result<Self, ApiError> {
        let decoy = hash_now(&uuid::Uuid::new_v4().to_string())?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy: decoy.into(),
        })
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.blocking(move || hash_now(&password)).await?
    }

    /// Whether `password` matches `hash`; with `hash = None` it checks against the decoy and
    /// answers `false`, taking the same time as a real check.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.to_string());
        let matches = self
            .blocking(move || {
                Argon2::default()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            })
            .await?;
        Ok(known && matches)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ApiError::internal("password hashing semaphore", e))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::internal("password hashing task", e))
    }
}

/// Validates a new password's length, naming `field` in the error.
pub fn validate_new(field: &str, password: &str) -> Result<(), ApiError> {
    let len = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(ApiError::validation(format!(
            "{field} must be between {MIN_LEN} and {MAX_LEN} characters"
        )));
    }
    Ok(())
}

fn hash_now(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal("argon2 hash", e))
}
