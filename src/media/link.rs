//! Signed media links.
//!
//! A browser cannot put a bearer token on `<img src>`, `<audio src>` or `<video src>`, so
//! every media item the API shows carries links that need none:
//! `/api/media/{id}?tenant=…&expires=…&signature=…` (`&variant=thumbnail` for the preview).
//! The signature is an HMAC-SHA256 over the tenant, the item, the variant and the expiry,
//! so a link opens that one item of that one tenant until it expires, and nothing else.
//!
//! Links last [`LINK_TTL`] and are minted on 5-minute boundaries: the same item listed
//! twice within a few minutes gets the same link, so the browser's cache serves it.
//!
//! The key is the tenant's own, kept in its file (`tenant_meta.media_link_key`, made by
//! the migration that added media): it moves with the file, and nothing needs to be shared
//! between tenants or processes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::ids::TenantId;

/// How long a link works, at least.
pub const LINK_TTL_SECS: i64 = 3600;
/// Links are minted to expire on a multiple of this (so they repeat for a while).
const ROUND_SECS: i64 = 300;

/// Which bytes of an item a link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Original,
    /// The JPEG preview WhatsApp sent with the item.
    Thumbnail,
}

impl Variant {
    fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Thumbnail => "thumbnail",
        }
    }
}

fn mac(key: &[u8], tenant: TenantId, media: Uuid, variant: Variant, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{tenant}/{media}/{}/{expires}", variant.as_str()).as_bytes());
    mac
}

/// When links minted at `now` expire.
pub fn expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    let at = now.timestamp() + LINK_TTL_SECS;
    let rounded = at.div_euclid(ROUND_SECS) * ROUND_SECS + ROUND_SECS;
    DateTime::from_timestamp(rounded, 0).unwrap_or(now)
}

/// A link to `variant` of the item, expiring at `expires`.
pub fn url(
    key: &[u8],
    tenant: TenantId,
    media: Uuid,
    variant: Variant,
    expires: DateTime<Utc>,
) -> String {
    let expires = expires.timestamp();
    let signature = URL_SAFE_NO_PAD.encode(
        mac(key, tenant, media, variant, expires)
            .finalize()
            .into_bytes(),
    );
    let variant = match variant {
        Variant::Original => "",
        Variant::Thumbnail => "variant=thumbnail&",
    };
    format!("/api/media/{media}?{variant}tenant={tenant}&expires={expires}&signature={signature}")
}

/// Why a link does not open its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this media link has expired; ask for a new one (GET /api/media/{{id}}/links)")]
    Expired,
    #[error("this media link is not valid")]
    Invalid,
}

/// Checks a link's signature (in constant time) and expiry.
pub fn verify(
    key: &[u8],
    tenant: TenantId,
    media: Uuid,
    variant: Variant,
    expires: i64,
    signature: &str,
    now: DateTime<Utc>,
) -> Result<(), LinkError> {
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| LinkError::Invalid)?;
    mac(key, tenant, media, variant, expires)
        .verify_slice(&signature)
        .map_err(|_| LinkError::Invalid)?;
    if expires <= now.timestamp() {
        return Err(LinkError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (i64, String) {
        let query = url.split_once('?').unwrap().1;
        let get = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        (get("expires").parse().unwrap(), get("signature"))
    }

    #[test]
    fn a_link_opens_its_own_item_variant_and_tenant_until_it_expires() {
        let (tenant, other_tenant) = (TenantId::new(), TenantId::new());
        let (media, other_media) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Utc::now();
        let expires = expiry(now);
        assert!(expires.timestamp() >= now.timestamp() + LINK_TTL_SECS);
        let key = b"one tenant's key";
        let (exp, sig) = parts(&url(key, tenant, media, Variant::Original, expires));
        assert_eq!(
            verify(key, tenant, media, Variant::Original, exp, &sig, now),
            Ok(())
        );
        assert_eq!(
            verify(
                b"another key",
                tenant,
                media,
                Variant::Original,
                exp,
                &sig,
                now
            ),
            Err(LinkError::Invalid)
        );
        for (t, m, v) in [
            (other_tenant, media, Variant::Original),
            (tenant, other_media, Variant::Original),
            (tenant, media, Variant::Thumbnail),
        ] {
            assert_eq!(
                verify(key, t, m, v, exp, &sig, now),
                Err(LinkError::Invalid)
            );
        }
        assert_eq!(
            verify(key, tenant, media, Variant::Original, exp + 1, &sig, now),
            Err(LinkError::Invalid),
            "a longer expiry is not the signed one"
        );
        let later = DateTime::from_timestamp(exp, 0).unwrap();
        assert_eq!(
            verify(key, tenant, media, Variant::Original, exp, &sig, later),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn links_minted_minutes_apart_are_the_same_link() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let a = expiry(at);
        let b = expiry(at + chrono::Duration::seconds(30));
        assert_eq!(a, b);
    }
}
