//! Login tokens: JWT, HS256 only (the algorithm is pinned on decode, so `alg: none` or an
//! asymmetric algorithm is refused), `exp` enforced with no leeway.
//!
//! A token names its user, the user's tenant and the user's `token_version`; the extractor
//! checks all three against the registry on every request, so a password change or removal
//! ends every token issued before it.

use std::io::Write;
use std::path::Path;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::ids::{TenantId, UserId};

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// The user's tenant.
    pub tid: TenantId,
    /// The user's token version when the token was issued.
    pub ver: i64,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
}

/// Shortest secret accepted from configuration.
const MIN_SECRET_LEN: usize = 32;

impl Tokens {
    pub fn new(secret: &[u8], ttl_hours: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: i64::try_from(ttl_hours.saturating_mul(3600)).unwrap_or(i64::MAX),
        }
    }

    pub fn issue(&self, user: UserId, tenant: TenantId, version: i64) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            tid: tenant,
            ver: version,
            iat: now,
            exp: now.saturating_add(self.ttl_secs),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a validly signed, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// The signing secret: from configuration, else read from `<data>/jwt_secret`, else generated
/// once into that file with mode 0600.
pub fn load_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_LEN,
            "AEZEN_JWT_SECRET must be at least {MIN_SECRET_LEN} bytes"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt_secret");
    match std::fs::read_to_string(&path) {
        Ok(secret) => {
            let secret = secret.trim();
            anyhow::ensure!(
                secret.len() >= MIN_SECRET_LEN,
                "{} holds fewer than {MIN_SECRET_LEN} bytes",
                path.display()
            );
            Ok(secret.as_bytes().to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&path, secret.as_bytes())?;
            tracing::info!(path = %path.display(), "generated a new token signing secret");
            Ok(secret.into_bytes())
        }
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}
