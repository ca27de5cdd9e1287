//! Password hashing with argon2id, off the async workers and with bounded concurrency: each
//! hash takes ~19 MiB and tens of milliseconds of a core, so a login flood queues here
//! instead of starving every other request of CPU and memory.
//!
//! The 19 MiB are not allocated per hash. Each of the `concurrency` hashing slots owns one
//! block of argon2 memory, made on the slot's first use and reused by every later hash, so
//! hashing holds at most `concurrency` × 19 MiB for the life of the process, whatever the
//! allocator does. (Allocating per hash, glibc raised its mmap threshold after the first
//! free and served later blocks from its arenas, which it never returned: 200 parallel logins
//! left the server at ~950 MB.) Hashes are the PHC strings `Argon2::hash_password` makes
//! (argon2id, v=19, the crate's default parameters, 16-byte salt, 32-byte output), and any
//! argon2 PHC string verifies, as it did through `PasswordVerifier`.

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::password_hash::try_generate_salt;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Shortest and longest accepted passwords (the upper bound caps hashing work per request).
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

#[derive(Clone)]
pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    /// The memory of the slots not hashing right now; a permit entitles its holder to one.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A real hash of a random password, verified against when an email is unknown, so that
    /// "no such user" and "wrong password" take the same time.
    decoy: Arc<str>,
}

impl PasswordHashing {
    pub fn new(concurrency: usize) -> Result<Self, ApiError> {
        let concurrency = concurrency.max(1);
        let mut memory = Vec::with_capacity(concurrency);
        let mut first = Vec::new();
        let decoy = hash_into(&mut first, &uuid::Uuid::new_v4().to_string())?;
        memory.push(first);
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            memory: Arc::new(Mutex::new(memory)),
            decoy: decoy.into(),
        })
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.blocking(move |memory| hash_into(memory, &password))
            .await?
    }

    /// Whether `password` matches `hash`; with `hash = None` it checks against the decoy and
    /// answers `false`, taking the same time as a real check.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.to_string());
        let matches = self
            .blocking(move |memory| verify_into(memory, &password, &hash))
            .await?;
        Ok(known && matches)
    }

    /// Runs `f` on the blocking pool with one slot's memory, once a slot is free.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        // The permit goes to the blocking task and is released only once the slot's memory
        // is back: a caller that gives up (a client hanging up) cannot let another hash
        // start beside its own, which would add a block to the pool for good.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| ApiError::internal("password hashing semaphore", e))?;
        let pool = Arc::clone(&self.memory);
        tokio::task::spawn_blocking(move || {
            // With a permit held, another slot's memory is waiting here, or this slot has
            // not hashed yet and makes its memory now.
            let mut memory = pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .unwrap_or_default();
            let result = f(&mut memory);
            // Back for the next holder (a panic in `f` drops it; the slot then makes another).
            pool.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(memory);
            drop(permit);
            result
        })
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

/// `memory` grown to the `params`' block count if it is smaller (kept grown: the slot's
/// memory is the largest any of its hashes needed).
fn blocks_for<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::new());
    }
    &mut memory[..needed]
}

/// A new PHC string for `password` with a fresh random salt, computed in `memory`: the same
/// string `Argon2::default().hash_password` makes.
fn hash_into(memory: &mut Vec<Block>, password: &str) -> Result<String, ApiError> {
    let argon2 = Argon2::default();
    let params = argon2.params();
    let salt = try_generate_salt().map_err(|e| ApiError::internal("argon2 salt", e))?;
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = compute(&argon2, memory, password, &salt, output_len)
        .map_err(|e| ApiError::internal("argon2 hash", e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(params).map_err(|e| ApiError::internal("argon2", e))?,
        salt: Some(Salt::new(&salt).map_err(|e| ApiError::internal("argon2 salt", e))?),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`, computed in `memory` with the
/// algorithm, version, parameters, salt and output length the string names; the outputs are
/// compared in constant time (`Output`'s `PartialEq`). A string that does not parse, or
/// names something argon2 cannot compute, matches nothing.
fn verify_into(memory: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    // Includes the output length of the stored hash.
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    compute(&argon2, memory, password, salt.as_ref(), expected.len())
        .is_ok_and(|computed| computed == *expected)
}

/// argon2's output of `len` bytes for `password` and `salt`, computed in `memory`.
fn compute(
    argon2: &Argon2<'_>,
    memory: &mut Vec<Block>,
    password: &str,
    salt: &[u8],
    len: usize,
) -> Result<Output, String> {
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let out = buffer
        .get_mut(..len)
        .ok_or_else(|| format!("output of {len} bytes"))?;
    let blocks = blocks_for(memory, argon2.params());
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
        .map_err(|e| e.to_string())?;
    Output::new(out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[test]
    fn a_hash_made_here_is_what_argon2_makes_and_verifies_there() {
        let mut memory = Vec::new();
        let ours = hash_into(&mut memory, "correct horse").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        // Same algorithm, version and parameters; salt and output of the same lengths.
        let shape = |s: &str| {
            let h = PasswordHash::new(s).unwrap();
            (
                h.algorithm.to_string(),
                h.version,
                h.params.to_string(),
                h.salt.map(|s| s.len()),
                h.hash.map(|o| o.len()),
            )
        };
        assert_eq!(shape(&ours), shape(&theirs));
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let argon2 = Argon2::default();
        assert!(
            argon2
                .verify_password(b"correct horse", ours.as_str())
                .is_ok()
        );
        assert!(
            argon2
                .verify_password(b"wrong horse", ours.as_str())
                .is_err()
        );
    }

    #[test]
    fn a_hash_argon2_made_verifies_here() {
        let mut memory = Vec::new();
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify_into(&mut memory, "correct horse", &theirs));
        assert!(!verify_into(&mut memory, "correct horsE", &theirs));
        // The same memory serves every hash, before and after.
        let ours = hash_into(&mut memory, "battery staple").unwrap();
        assert!(verify_into(&mut memory, "battery staple", &ours));
        assert!(verify_into(&mut memory, "correct horse", &theirs));
        assert_eq!(memory.len(), Params::default().block_count());
    }

    #[test]
    fn hashes_with_other_parameters_still_verify() {
        let params = Params::new(Params::MIN_M_COST * 4, 1, 2, Some(24)).unwrap();
        let argon2 = Argon2::new(Algorithm::Argon2i, Version::V0x10, params);
        let theirs = argon2.hash_password(b"old password").unwrap().to_string();
        let mut memory = Vec::new();
        assert!(verify_into(&mut memory, "old password", &theirs));
        assert!(!verify_into(&mut memory, "new password", &theirs));
    }

    #[test]
    fn a_malformed_hash_matches_nothing() {
        let mut memory = Vec::new();
        for hash in [
            "",
            "plain",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA",
            "$md5$abc$def",
        ] {
            assert!(!verify_into(&mut memory, "password", hash), "{hash}");
        }
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_add_a_block() {
        let hashing = PasswordHashing::new(1).unwrap();
        let hash = hashing.hash("correct horse".to_owned()).await.unwrap();
        // Dropped while its hash runs on the blocking pool (or before it starts).
        let given_up = tokio::time::timeout(
            std::time::Duration::from_millis(1),
            hashing.verify("correct horse".to_owned(), Some(hash.clone())),
        )
        .await;
        assert!(given_up.is_err(), "a hash took under 1 ms");
        assert!(
            hashing
                .verify("correct horse".to_owned(), Some(hash))
                .await
                .unwrap()
        );
        // The second check ran only once the first had put its memory back.
        assert_eq!(hashing.memory.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn logins_reuse_the_slots_memory() {
        let hashing = PasswordHashing::new(2).unwrap();
        let hash = hashing.hash("correct horse".to_owned()).await.unwrap();
        let checks: Vec<_> = (0..8)
            .map(|i| {
                let (hashing, hash) = (hashing.clone(), hash.clone());
                tokio::spawn(async move {
                    let password = if i % 2 == 0 { "correct horse" } else { "wrong" };
                    hashing.verify(password.to_owned(), Some(hash)).await
                })
            })
            .collect();
        for (i, check) in checks.into_iter().enumerate() {
            assert_eq!(check.await.unwrap().unwrap(), i % 2 == 0);
        }
        assert!(!hashing.verify("x".to_owned(), None).await.unwrap());
        let pool = hashing.memory.lock().unwrap();
        assert!(pool.len() <= 2, "{} blocks for 2 slots", pool.len());
        assert!(
            pool.iter()
                .all(|m| m.len() == Params::default().block_count())
        );
    }
}
