//! `Idempotency-Key` handling, stored in the ledger cluster so it survives restarts and
//! failover of tally-pay.
//!
//! - A new key is claimed with a Txn that requires the key's record to be absent.
//! - Same key, same request (method, path and canonical JSON body): the stored response is
//!   replayed with `Idempotent-Replayed: true`.
//! - Same key, different request: 422. Same key while the first request is running: 409.
//! - A claim whose process died is taken over after the lease (`pay.idempotency_lease_ms`); the handlers derive object
//!   ids from the key, so the takeover finds and continues what the first attempt started.
//! - Responses with a 5xx status are not stored: the key is released so a retry runs again.
//! - Keys are kept [`KEY_RETENTION_MS`] (24 h), then swept by the worker.
//! - Keys are stored under their SHA-256 ([`record_key`]), and object ids derive from the key
//!   and the fingerprint together ([`object_seed`]), so a released key reused for another
//!   request never finds the first request's object.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::model::ns;
use crate::edges::store::{Commit, Store, Txn, RECORD_SCAN_PAGE_MAX};
use crate::error::PayError;
use crate::flows::now_ms;

/// Longest accepted `Idempotency-Key`.
pub const KEY_BYTES_MAX: usize = 255;

/// How long a finished key is kept.
pub const KEY_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum KeyState {
    Running {
        claimed_at: i64,
    },
    Done {
        status: u16,
        body: serde_json::Value,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeyRecord {
    fingerprint: String,
    created_at: i64,
    #[serde(flatten)]
    state: KeyState,
}

/// What to do with a request carrying a key.
#[derive(Debug)]
pub enum Begin {
    /// Run it; finish with [`finish`] passing this version.
    Run { version: u64 },
    /// It ran before: answer with this.
    Replay {
        status: u16,
        body: serde_json::Value,
    },
}

/// Checks the key's shape.
pub fn check_key(key: &str) -> Result<(), PayError> {
    if key.is_empty()
        || key.len() > KEY_BYTES_MAX
        || !key.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return Err(PayError::invalid(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {KEY_BYTES_MAX} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

/// The record key of an `Idempotency-Key`: its SHA-256, so that no client text becomes a key
/// in the cluster's storage.
pub fn record_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The seed object ids of a request are derived from: the key and the request's fingerprint.
pub fn object_seed(key: &str, fingerprint: &str) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(key.as_bytes())
            .chain_update(b"\n")
            .chain_update(fingerprint.as_bytes())
            .finalize(),
    )
}

/// The request's fingerprint: method, path and the body's canonical JSON (keys sorted), so
/// whitespace and key order do not matter.
pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> String {
    let canonical = serde_json::to_string(body).unwrap_or_default();
    hex::encode(
        Sha256::new()
            .chain_update(method.as_bytes())
            .chain_update(b" ")
            .chain_update(path.as_bytes())
            .chain_update(b"\n")
            .chain_update(canonical.as_bytes())
            .finalize(),
    )
}

/// Claims `key` for a request, or says how to answer it. A claim older than `lease_ms` whose
/// request never finished is taken over.
pub async fn begin(
    store: &Store,
    key: &str,
    fingerprint: &str,
    lease_ms: i64,
) -> Result<Begin, PayError> {
    for _ in 0..8 {
        let now = now_ms();
        let claim = KeyRecord {
            fingerprint: fingerprint.to_string(),
            created_at: now,
            state: KeyState::Running { claimed_at: now },
        };
        let txn =
            Txn::new()
                .require_version(ns::IDEMPOTENCY, key, 0)
                .put(ns::IDEMPOTENCY, key, &claim);
        if store.commit(txn).await? == Commit::Committed {
            return Ok(Begin::Run { version: 1 });
        }
        let Some(existing) = store.get::<KeyRecord>(ns::IDEMPOTENCY, key).await? else {
            continue; // released in between: claim again
        };
        if existing.value.fingerprint != fingerprint {
            return Err(PayError::Idempotency {
                status: 422,
                code: "idempotency_key_reused",
                message: "this Idempotency-Key was used with a different request (method, path or \
                          body); use a new key for a new request"
                    .into(),
            });
        }
        match existing.value.state {
            KeyState::Done { status, body } => return Ok(Begin::Replay { status, body }),
            KeyState::Running { claimed_at } if now - claimed_at < lease_ms => {
                return Err(PayError::Idempotency {
                    status: 409,
                    code: "idempotency_key_in_use",
                    message: "a request with this Idempotency-Key is still being processed; retry \
                              in a moment"
                        .into(),
                });
            }
            KeyState::Running { .. } => {
                // Abandoned by a process that died: take it over.
                let mut takeover = existing.value.clone();
                takeover.state = KeyState::Running { claimed_at: now };
                let txn = Txn::new()
                    .require_version(ns::IDEMPOTENCY, key, existing.version)
                    .put(ns::IDEMPOTENCY, key, &takeover);
                if store.commit(txn).await? == Commit::Committed {
                    return Ok(Begin::Run {
                        version: existing.version + 1,
                    });
                }
            }
        }
    }
    Err(PayError::Conflict {
        code: "idempotency_key_in_use",
        message: "the Idempotency-Key kept changing; retry".into(),
    })
}

/// Stores the response (status below 500), or releases the key (5xx: the request may be retried).
pub async fn finish(
    store: &Store,
    key: &str,
    version: u64,
    status: u16,
    body: &serde_json::Value,
) -> Result<(), PayError> {
    let txn = Txn::new().require_version(ns::IDEMPOTENCY, key, version);
    let txn = if status >= 500 {
        txn.delete(ns::IDEMPOTENCY, key)
    } else {
        let Some(current) = store.get::<KeyRecord>(ns::IDEMPOTENCY, key).await? else {
            return Ok(());
        };
        txn.put(
            ns::IDEMPOTENCY,
            key,
            &KeyRecord {
                fingerprint: current.value.fingerprint,
                created_at: current.value.created_at,
                state: KeyState::Done {
                    status,
                    body: body.clone(),
                },
            },
        )
    };
    // A failed condition means another process took the key over; its answer wins.
    store.commit(txn).await?;
    Ok(())
}

/// Keys the sweep reads (and deletes, when expired) per page.
pub const SWEEP_PAGE_MAX: u32 = 500;
const _: () = assert!(SWEEP_PAGE_MAX <= RECORD_SCAN_PAGE_MAX);

/// Deletes finished keys older than [`KEY_RETENTION_MS`], [`SWEEP_PAGE_MAX`] keys at a time;
/// returns how many.
pub async fn sweep(store: &Store) -> Result<usize, PayError> {
    let cutoff = now_ms() - KEY_RETENTION_MS;
    let mut swept = 0;
    let mut cursor = String::new();
    loop {
        let page = store
            .next_page::<KeyRecord>(ns::IDEMPOTENCY, "", &mut cursor, SWEEP_PAGE_MAX)
            .await?;
        if page.is_empty() {
            return Ok(swept);
        }
        for (key, record) in page {
            if record.value.created_at < cutoff
                && matches!(record.value.state, KeyState::Done { .. })
            {
                let txn = Txn::new()
                    .require_version(ns::IDEMPOTENCY, &key, record.version)
                    .delete(ns::IDEMPOTENCY, &key);
                if store.commit(txn).await? == Commit::Committed {
                    swept += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_but_not_values() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a": 1, "b": [1,2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "b":[1, 2],"a":1 }"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a": 2, "b": [1,2]}"#).unwrap();
        assert_eq!(
            fingerprint("POST", "/v1/x", &a),
            fingerprint("POST", "/v1/x", &b)
        );
        assert_ne!(
            fingerprint("POST", "/v1/x", &a),
            fingerprint("POST", "/v1/x", &c)
        );
        assert_ne!(
            fingerprint("POST", "/v1/x", &a),
            fingerprint("POST", "/v1/y", &a)
        );
    }

    #[test]
    fn keys_are_stored_hashed_and_seeds_follow_the_request() {
        let key = "4242424242424242";
        assert!(!record_key(key).contains(key));
        assert_eq!(record_key(key).len(), 64);
        assert_eq!(object_seed(key, "f1"), object_seed(key, "f1"));
        assert_ne!(object_seed(key, "f1"), object_seed(key, "f2"));
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("order-123_ab").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"k".repeat(256)).is_err());
    }
}
