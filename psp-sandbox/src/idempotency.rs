//! Idempotency keys: the stored response of each executed request, replayed when the same key
//! comes back with the same parameters, for [`KEY_RETENTION`].
//!
//! As at Stripe, only requests that executed are stored (a success, or a charge declined by the
//! card). A request rejected before executing (bad parameters, an injected 500, a retryable
//! processing error) stores nothing, so the key can be used again.

use std::collections::{HashMap, VecDeque};

use crate::constants::{IDEMPOTENCY_KEYS_MAX, IDEMPOTENCY_KEY_RETENTION};

/// Keys are kept this long (seconds) after their request completed.
pub const KEY_RETENTION: i64 = IDEMPOTENCY_KEY_RETENTION.as_secs() as i64;

/// A response as sent: status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug)]
enum Entry {
    InFlight {
        fingerprint: String,
    },
    Completed {
        fingerprint: String,
        response: StoredResponse,
    },
}

/// What to do with a request carrying a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// The key is now reserved for this request: execute it.
    Reserved,
    /// Done before with the same parameters: send this again.
    Replay(StoredResponse),
    /// Another request with this key is executing.
    InFlight,
    /// Done before with different parameters.
    Mismatch,
    /// No room for another key.
    Full,
}

/// A completed key as the sandbox saves it across restarts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedKey {
    pub key: String,
    pub fingerprint: String,
    pub response: StoredResponse,
    /// Unix seconds.
    pub completed_at: i64,
}

#[derive(Debug, Default)]
pub struct IdempotencyStore {
    entries: HashMap<String, Entry>,
    /// Completed keys, oldest first, with their completion time (unix seconds).
    completed: VecDeque<(i64, String)>,
}

impl IdempotencyStore {
    /// `fingerprint` identifies the request's parameters (method, path, canonical body).
    pub fn begin(&mut self, key: &str, fingerprint: &str, now: i64) -> Begin {
        self.prune(now);
        match self.entries.get(key) {
            Some(Entry::InFlight { .. }) => Begin::InFlight,
            Some(Entry::Completed {
                fingerprint: stored,
                response,
            }) => {
                if stored == fingerprint {
                    Begin::Replay(response.clone())
                } else {
                    Begin::Mismatch
                }
            }
            None if self.entries.len() >= IDEMPOTENCY_KEYS_MAX => Begin::Full,
            None => {
                let fingerprint = fingerprint.to_owned();
                self.entries
                    .insert(key.to_owned(), Entry::InFlight { fingerprint });
                Begin::Reserved
            }
        }
    }

    /// Stores the response of a reserved key.
    pub fn complete(&mut self, key: &str, response: StoredResponse, now: i64) {
        let Some(Entry::InFlight { fingerprint }) = self.entries.remove(key) else {
            debug_assert!(false, "completing key `{key}` that is not in flight");
            return;
        };
        self.entries.insert(
            key.to_owned(),
            Entry::Completed {
                fingerprint,
                response,
            },
        );
        self.completed.push_back((now, key.to_owned()));
    }

    /// Releases a reserved key without storing anything.
    pub fn abandon(&mut self, key: &str) {
        if matches!(self.entries.get(key), Some(Entry::InFlight { .. })) {
            self.entries.remove(key);
        }
    }

    /// Every completed key with its fingerprint, response and completion time, oldest first
    /// (keys still in flight are not kept: their requests die with the process).
    pub fn completed(&self) -> Vec<SavedKey> {
        self.completed
            .iter()
            .filter_map(|(completed_at, key)| match self.entries.get(key) {
                Some(Entry::Completed {
                    fingerprint,
                    response,
                }) => Some(SavedKey {
                    key: key.clone(),
                    fingerprint: fingerprint.clone(),
                    response: response.clone(),
                    completed_at: *completed_at,
                }),
                _ => None,
            })
            .collect()
    }

    /// A store holding `keys` (as [`IdempotencyStore::completed`] returned them).
    pub fn from_completed(keys: Vec<SavedKey>) -> IdempotencyStore {
        let mut store = IdempotencyStore::default();
        for saved in keys.into_iter().take(IDEMPOTENCY_KEYS_MAX) {
            store
                .completed
                .push_back((saved.completed_at, saved.key.clone()));
            store.entries.insert(
                saved.key,
                Entry::Completed {
                    fingerprint: saved.fingerprint,
                    response: saved.response,
                },
            );
        }
        store
    }

    fn prune(&mut self, now: i64) {
        while let Some((completed_at, _)) = self.completed.front() {
            if now.saturating_sub(*completed_at) < KEY_RETENTION {
                break;
            }
            if let Some((_, key)) = self.completed.pop_front() {
                self.entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> StoredResponse {
        StoredResponse {
            status: 200,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn completed_key_replays_for_the_same_parameters_only() {
        let mut store = IdempotencyStore::default();
        assert_eq!(store.begin("k", "a", 0), Begin::Reserved);
        assert_eq!(store.begin("k", "a", 0), Begin::InFlight);
        store.complete("k", response("one"), 0);
        assert_eq!(store.begin("k", "a", 1), Begin::Replay(response("one")));
        assert_eq!(store.begin("k", "b", 1), Begin::Mismatch);
    }

    #[test]
    fn abandoned_key_can_be_used_again() {
        let mut store = IdempotencyStore::default();
        assert_eq!(store.begin("k", "a", 0), Begin::Reserved);
        store.abandon("k");
        assert_eq!(store.begin("k", "b", 0), Begin::Reserved);
    }

    #[test]
    fn keys_expire_after_the_retention() {
        let mut store = IdempotencyStore::default();
        assert_eq!(store.begin("k", "a", 0), Begin::Reserved);
        store.complete("k", response("one"), 10);
        assert_eq!(
            store.begin("k", "b", 10 + KEY_RETENTION - 1),
            Begin::Mismatch
        );
        assert_eq!(store.begin("k", "b", 10 + KEY_RETENTION), Begin::Reserved);
    }
}
