//! API keys as records in the cluster (namespace `pay.api_key`), so every tally-pay process sees
//! the same keys. A key is shown once, at creation; the record keeps only a per-key random salt
//! and SHA-256(salt || secret), compared in constant time.
//!
//! A secret reads `sk_<16 hex: key number>_<48 hex: 24 random bytes>`: the number finds the
//! record without a scan, the random part is the secret. Rotation makes a new key with the same
//! name, kind and scopes and lets the old one work until its grace period ends; revocation stops
//! a key at once (within the verifying process's cache time).

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::scope::{KeyKind, Scope};
use crate::domain::model::ns;
use crate::edges::store::{Commit, Store, Txn};
use crate::error::PayError;
use crate::flows::audit::{self, Actor};
use crate::flows::{check_text, now_ms};

/// Id prefix of API keys (`key_0123456789abcdef`).
pub const KEY_ID_PREFIX: &str = "key";
/// Random bytes of a secret.
const SECRET_RANDOM_BYTES: usize = 24;
const SALT_BYTES: usize = 16;
/// Longest grace period of a rotation (7 days), and the default (24 h).
pub const GRACE_PERIOD_S_MAX: u64 = 7 * 24 * 3600;
pub const GRACE_PERIOD_S_DEFAULT: u64 = 24 * 3600;
/// Keys one installation may hold (listing is one bounded scan).
pub const KEYS_MAX: u32 = 1000;

/// A key as stored. Never holds the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub kind: KeyKind,
    /// Named scopes (restricted keys only).
    pub scopes: Vec<Scope>,
    /// `sk_0123456789abcdef_`: the non-secret head of the key.
    pub prefix: String,
    pub last4: String,
    pub salt: String,
    pub hash: String,
    pub created_at: i64,
    /// Set when the key was rotated: refused from then on.
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The key that replaced this one.
    pub rotated_to: Option<String>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What listing shows of a key: never the secret nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub kind: KeyKind,
    pub scopes: Vec<Scope>,
    /// `sk_0123456789abcdef_…a1b2`: the prefix and the last 4 characters.
    pub redacted: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub rotated_to: Option<String>,
    /// `active`, `expiring` (rotated, in its grace period), `expired` or `revoked`.
    pub status: String,
}

/// A key just made: the only time its secret is shown.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret, shown once: store it now.
    pub secret: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A request for a new key.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    pub kind: KeyKind,
    /// Scopes of a restricted key (required for it, refused for the other kinds).
    #[serde(default)]
    pub scopes: Vec<Scope>,
}

/// Who a verified key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub kind: KeyKind,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn holds(&self, scope: Scope) -> bool {
        self.kind.grants(&self.scopes, scope)
    }
}

/// Why a presented key was refused. Never carries the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the API key is malformed")]
    Malformed,
    #[error("no such API key")]
    Unknown,
    #[error("the API key was revoked")]
    Revoked,
    #[error("the API key was rotated and its grace period is over")]
    Expired,
}

impl ApiKeyRecord {
    pub fn view(&self, now: i64) -> ApiKey {
        let status = if self.revoked_at.is_some() {
            "revoked"
        } else {
            match self.expires_at {
                Some(at) if at <= now => "expired",
                Some(_) => "expiring",
                None => "active",
            }
        };
        ApiKey {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            scopes: self.scopes.clone(),
            redacted: format!("{}…{}", self.prefix, self.last4),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            rotated_to: self.rotated_to.clone(),
            status: status.to_string(),
        }
    }

    /// Whether `secret` is this key's and the key may be used at `now`.
    pub fn check(&self, secret: &str, now: i64) -> Result<(), KeyError> {
        let expected = hex::decode(&self.hash).map_err(|_| KeyError::Unknown)?;
        let actual = hash(&self.salt, secret);
        if !bool::from(expected.as_slice().ct_eq(actual.as_slice())) {
            return Err(KeyError::Unknown);
        }
        if self.revoked_at.is_some() {
            return Err(KeyError::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyError::Expired);
        }
        Ok(())
    }
}

fn hash(salt_hex: &str, secret: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(salt_hex.as_bytes())
        .chain_update(b"\0")
        .chain_update(secret.as_bytes())
        .finalize()
        .into()
}

/// The record id inside a presented secret (`sk_<number>_<random>` -> `key_<number>`), if the
/// secret is well formed.
pub fn key_id_of(secret: &str) -> Result<String, KeyError> {
    let mut parts = secret.splitn(3, '_');
    let (Some(prefix), Some(number), Some(random)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyError::Malformed);
    };
    let id = format!("{KEY_ID_PREFIX}_{number}");
    let well_formed = matches!(prefix, "sk" | "pk" | "rk")
        && crate::domain::ids::is_valid(KEY_ID_PREFIX, &id)
        && random.len() == SECRET_RANDOM_BYTES * 2
        && random.bytes().all(|b| b.is_ascii_hexdigit());
    if well_formed {
        Ok(id)
    } else {
        Err(KeyError::Malformed)
    }
}

/// A fresh key of `kind`: the record to store and the secret to show once.
fn mint(name: &str, kind: KeyKind, scopes: Vec<Scope>, now: i64) -> (ApiKeyRecord, String) {
    let id = crate::domain::ids::random(KEY_ID_PREFIX);
    let number = id.trim_start_matches("key_");
    let mut random = [0u8; SECRET_RANDOM_BYTES];
    rand::thread_rng().fill_bytes(&mut random);
    let mut salt = [0u8; SALT_BYTES];
    rand::thread_rng().fill_bytes(&mut salt);
    let prefix = format!("{}_{number}_", kind.prefix());
    let secret = format!("{prefix}{}", hex::encode(random));
    let salt = hex::encode(salt);
    let record = ApiKeyRecord {
        id,
        name: name.to_string(),
        kind,
        scopes,
        prefix,
        last4: secret[secret.len() - 4..].to_string(),
        hash: hex::encode(hash(&salt, &secret)),
        salt,
        created_at: now,
        expires_at: None,
        revoked_at: None,
        rotated_to: None,
    };
    (record, secret)
}

fn check_new(request: &NewKey) -> Result<Vec<Scope>, PayError> {
    check_text("name", &request.name)?;
    let mut scopes = request.scopes.clone();
    scopes.sort();
    scopes.dedup();
    match (request.kind, scopes.is_empty()) {
        (KeyKind::Restricted, true) => Err(PayError::invalid_param(
            "scopes_required",
            "scopes",
            "a restricted key needs at least one scope in `scopes`",
        )),
        (KeyKind::Secret | KeyKind::Publishable, false) => Err(PayError::invalid_param(
            "scopes_not_allowed",
            "scopes",
            "`scopes` applies to restricted keys only: secret keys hold every scope, \
             publishable keys none",
        )),
        _ => Ok(scopes),
    }
}

/// Creates a key. `creator` (when a key makes the request) may only hand out scopes it holds, so
/// a restricted `keys:admin` key cannot mint a secret key.
pub async fn create(
    store: &Store,
    request: NewKey,
    creator: Option<&Principal>,
    actor: &Actor,
) -> Result<CreatedKey, PayError> {
    let scopes = check_new(&request)?;
    if let Some(creator) = creator {
        let wanted: Vec<Scope> = match request.kind {
            KeyKind::Secret => Scope::ALL.to_vec(),
            KeyKind::Publishable => Vec::new(),
            KeyKind::Restricted => scopes.clone(),
        };
        if let Some(missing) = wanted.iter().find(|s| !creator.holds(**s)) {
            return Err(PayError::Forbidden {
                scope: missing.name(),
            });
        }
    }
    let now = now_ms();
    let (record, secret) = mint(&request.name, request.kind, scopes, now);
    let txn = Txn::new().require_version(ns::API_KEY, &record.id, 0).put(
        ns::API_KEY,
        &record.id,
        &record,
    );
    let txn = audit::stamp_as(txn, actor, "api_key.create", &record.id);
    match store.commit(txn).await? {
        Commit::Committed => Ok(CreatedKey {
            key: record.view(now),
            secret,
        }),
        other => Err(PayError::Internal(format!(
            "storing a new API key: {}",
            crate::flows::describe_commit(&other)
        ))),
    }
}

/// Every key, oldest id first (bounded by [`KEYS_MAX`]).
pub async fn list(store: &Store) -> Result<Vec<ApiKey>, PayError> {
    let now = now_ms();
    Ok(store
        .scan::<ApiKeyRecord>(ns::API_KEY, "", "", KEYS_MAX)
        .await?
        .into_iter()
        .map(|(_, v)| v.value.view(now))
        .collect())
}

/// Reads a key for verification.
pub async fn lookup(store: &Store, id: &str) -> Result<Option<ApiKeyRecord>, PayError> {
    Ok(store
        .get::<ApiKeyRecord>(ns::API_KEY, id)
        .await?
        .map(|v| v.value))
}

async fn load(
    store: &Store,
    id: &str,
) -> Result<crate::edges::store::Versioned<ApiKeyRecord>, PayError> {
    if !crate::domain::ids::is_valid(KEY_ID_PREFIX, id) {
        return Err(PayError::invalid(
            "invalid_id",
            "the key id must look like key_0123456789abcdef",
        ));
    }
    store
        .get::<ApiKeyRecord>(ns::API_KEY, id)
        .await?
        .ok_or_else(|| PayError::not_found(crate::flows::echo_safe("API key", id)))
}

/// Revokes a key at once. Revoking a revoked key changes nothing.
pub async fn revoke(store: &Store, id: &str, actor: &Actor) -> Result<ApiKey, PayError> {
    let current = load(store, id).await?;
    let now = now_ms();
    if current.value.revoked_at.is_some() {
        return Ok(current.value.view(now));
    }
    let mut next = current.value.clone();
    next.revoked_at = Some(now);
    let txn = Txn::new()
        .require_version(ns::API_KEY, id, current.version)
        .put(ns::API_KEY, id, &next);
    let txn = audit::stamp_as(txn, actor, "api_key.revoke", id);
    commit_change(store, txn, id).await?;
    Ok(next.view(now))
}

/// Replaces a key with a new one of the same name, kind and scopes; the old key keeps working
/// for `grace_period_s` seconds (0: refused at once).
pub async fn rotate(
    store: &Store,
    id: &str,
    grace_period_s: u64,
    actor: &Actor,
) -> Result<CreatedKey, PayError> {
    if grace_period_s > GRACE_PERIOD_S_MAX {
        return Err(PayError::invalid_param(
            "invalid_grace_period",
            "grace_period_s",
            format!("`grace_period_s` must be 0 to {GRACE_PERIOD_S_MAX}"),
        ));
    }
    let current = load(store, id).await?;
    let now = now_ms();
    if current.value.revoked_at.is_some() || current.value.expires_at.is_some() {
        return Err(PayError::unprocessable(
            "key_not_active",
            format!("API key {id} was already revoked or rotated"),
        ));
    }
    let old = &current.value;
    let (fresh, secret) = mint(&old.name, old.kind, old.scopes.clone(), now);
    let mut retired = old.clone();
    let grace_ms = i64::try_from(grace_period_s.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    retired.expires_at = Some(now + grace_ms);
    retired.rotated_to = Some(fresh.id.clone());
    let txn = Txn::new()
        .require_version(ns::API_KEY, id, current.version)
        .require_version(ns::API_KEY, &fresh.id, 0)
        .put(ns::API_KEY, id, &retired)
        .put(ns::API_KEY, &fresh.id, &fresh);
    let txn = audit::stamp_as(txn, actor, "api_key.rotate", id);
    commit_change(store, txn, id).await?;
    Ok(CreatedKey {
        key: fresh.view(now),
        secret,
    })
}

async fn commit_change(store: &Store, txn: Txn, id: &str) -> Result<(), PayError> {
    match store.commit(txn).await? {
        Commit::Committed => Ok(()),
        Commit::ConditionFailed { .. } => Err(PayError::Conflict {
            code: "contention",
            message: format!("API key {id} changed at the same time; try again"),
        }),
        other => Err(PayError::Internal(format!(
            "changing API key {id}: {}",
            crate::flows::describe_commit(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_verify_and_nothing_else_does() {
        let (record, secret) = mint("ci", KeyKind::Secret, Vec::new(), 1_000);
        assert!(secret.starts_with("sk_"));
        assert_eq!(key_id_of(&secret).unwrap(), record.id);
        assert_eq!(record.check(&secret, 2_000), Ok(()));
        let mut wrong = secret.clone();
        wrong.pop();
        wrong.push(if secret.ends_with('0') { '1' } else { '0' });
        assert_eq!(record.check(&wrong, 2_000), Err(KeyError::Unknown));
        assert!(!format!("{record:?}").contains(&record.hash));
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains(&secret[20..]), "the secret is never stored");
        assert_eq!(
            record.view(2_000).redacted,
            format!("{}…{}", record.prefix, &secret[secret.len() - 4..])
        );
    }

    #[test]
    fn revoked_and_expired_keys_are_refused() {
        let (mut record, secret) = mint("ci", KeyKind::Restricted, vec![Scope::PayoutsWrite], 0);
        record.expires_at = Some(5_000);
        assert_eq!(record.check(&secret, 4_999), Ok(()));
        assert_eq!(record.check(&secret, 5_000), Err(KeyError::Expired));
        record.revoked_at = Some(1);
        assert_eq!(record.check(&secret, 0), Err(KeyError::Revoked));
    }

    #[test]
    fn malformed_secrets_are_recognized() {
        for bad in ["", "sk_", "sk_0123_abc", "xx_0123456789abcdef_00", "Bearer"] {
            assert_eq!(key_id_of(bad), Err(KeyError::Malformed), "{bad}");
        }
    }

    #[test]
    fn scopes_match_the_kind() {
        let new = |kind, scopes: Vec<Scope>| NewKey {
            name: "n".into(),
            kind,
            scopes,
        };
        assert!(check_new(&new(KeyKind::Restricted, vec![])).is_err());
        assert!(check_new(&new(KeyKind::Secret, vec![Scope::AuditRead])).is_err());
        assert_eq!(
            check_new(&new(
                KeyKind::Restricted,
                vec![Scope::AuditRead, Scope::PayoutsWrite, Scope::AuditRead]
            ))
            .unwrap(),
            vec![Scope::PayoutsWrite, Scope::AuditRead]
        );
    }
}
