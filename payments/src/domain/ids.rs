//! Ids of payment objects: a type prefix and 16 hex digits (`sel_5f0c...`).
//!
//! An object created under an `Idempotency-Key` gets an id derived from the key, so a retried or
//! taken-over request finds the object its first attempt created instead of making a second one.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub const CUSTOMER: &str = "cus";
pub const SELLER: &str = "sel";
pub const BANK_ACCOUNT: &str = "ba";
pub const CARD: &str = "card";
pub const PAYMENT: &str = "pay";
pub const ORDER: &str = "ord";
pub const DEPOSIT: &str = "dep";
pub const REFUND: &str = "re";
pub const PAYOUT: &str = "po";
pub const PLAN: &str = "plan";
pub const SUBSCRIPTION: &str = "sub";
pub const INVOICE: &str = "inv";

/// A fresh random id.
pub fn random(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::thread_rng().next_u64().max(1))
}

/// An id derived from `seed` (an idempotency key or a parent id plus an index).
pub fn derived(prefix: &str, seed: &str) -> String {
    let digest = Sha256::new()
        .chain_update(prefix.as_bytes())
        .chain_update(b"\0")
        .chain_update(seed.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    format!("{prefix}_{:016x}", u64::from_be_bytes(bytes).max(1))
}

/// The id for a new object: derived from the idempotency key when there is one.
pub fn for_request(prefix: &str, idempotency_key: Option<&str>) -> String {
    match idempotency_key {
        Some(key) => derived(prefix, key),
        None => random(prefix),
    }
}

/// The 64-bit number inside an id of the given type (`sel_00000000000000ff` -> 255), if the id is
/// well formed.
pub fn number(prefix: &str, id: &str) -> Option<u64> {
    let hex = id.strip_prefix(prefix)?.strip_prefix('_')?;
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().filter(|n| *n != 0)
}

/// True when `id` is a well-formed id of the given type.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    number(prefix, id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = random(SELLER);
        assert!(is_valid(SELLER, &id));
        assert!(!is_valid(CUSTOMER, &id));
        assert_eq!(number(SELLER, "sel_00000000000000ff"), Some(255));
        assert_eq!(number(SELLER, "sel_00000000000000FF"), None);
        assert_eq!(number(SELLER, "sel_0000000000000000"), None);
        assert_eq!(number(SELLER, "sel_ff"), None);
        assert_eq!(number(SELLER, "sel-00000000000000ff"), None);
    }

    #[test]
    fn derived_ids_are_stable() {
        assert_eq!(derived(PAYMENT, "k1"), derived(PAYMENT, "k1"));
        assert_ne!(derived(PAYMENT, "k1"), derived(PAYMENT, "k2"));
        assert_ne!(derived(PAYMENT, "k1"), derived(REFUND, "k1"));
    }
}
