//! Who may call tally-pay: API keys (`keys`), their scopes (`scope`), and the in-process guards
//! in front of them (`limits`: a cache of verified keys, per-key rate limits, per-address limits
//! of failed authentications). The HTTP side (headers, status codes) is in `api::access`.

pub mod keys;
pub mod limits;
pub mod scope;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::ApiSection;
use crate::edges::store::Store;
use crate::error::PayError;
pub use keys::{KeyError, Principal};
pub use limits::TokenBuckets;
pub use scope::{Access, KeyKind, Scope};

/// Verified keys remembered per process. A revoked key is refused by every process within the
/// cache time ([`ApiSection::key_cache_ms`]).
const CACHE_ENTRIES_MAX: usize = 10_000;

/// Verifies presented keys against the records in the cluster.
pub struct Verifier {
    cache: Mutex<std::collections::HashMap<[u8; 32], (Principal, Instant)>>,
    cache_time: Duration,
}

impl Verifier {
    pub fn new(config: &ApiSection) -> Verifier {
        Verifier {
            cache: Mutex::new(Default::default()),
            cache_time: Duration::from_millis(config.key_cache_ms),
        }
    }

    /// The principal of `secret`, or why it was refused (or could not be checked).
    pub async fn verify(&self, store: &Store, secret: &str) -> Result<Principal, VerifyError> {
        // The cache is keyed by a hash, so the process holds no presented secret.
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        if let Some(principal) = self.cached(&digest) {
            return Ok(principal);
        }
        let id = keys::key_id_of(secret).map_err(VerifyError::Refused)?;
        let record = keys::lookup(store, &id)
            .await
            .map_err(VerifyError::Unavailable)?
            .ok_or(VerifyError::Refused(KeyError::Unknown))?;
        let now = crate::flows::now_ms();
        record.check(secret, now).map_err(VerifyError::Refused)?;
        let principal = Principal {
            key_id: record.id.clone(),
            kind: record.kind,
            scopes: record.scopes.clone(),
        };
        // A key in its grace period is cached no longer than the grace period lasts.
        let until = match record.expires_at {
            Some(at) => {
                let left = u64::try_from(at - now).unwrap_or(0);
                Instant::now() + self.cache_time.min(Duration::from_millis(left))
            }
            None => Instant::now() + self.cache_time,
        };
        let mut cache = self.cache.lock().expect("key cache");
        if cache.len() >= CACHE_ENTRIES_MAX {
            cache.clear();
        }
        cache.insert(digest, (principal.clone(), until));
        Ok(principal)
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Principal> {
        let mut cache = self.cache.lock().expect("key cache");
        match cache.get(digest) {
            Some((principal, until)) if *until > Instant::now() => Some(principal.clone()),
            Some(_) => {
                cache.remove(digest);
                None
            }
            None => None,
        }
    }
}

/// Why a key could not be verified.
#[derive(Debug)]
pub enum VerifyError {
    Refused(KeyError),
    Unavailable(PayError),
}
