//! Key encodings: big-endian integers so that byte order is numeric order.

use crate::ledger::RecordKey;

pub fn u64_key(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

pub fn u128_key(value: u128) -> [u8; 16] {
    value.to_be_bytes()
}

pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

pub fn read_u128(bytes: &[u8]) -> Option<u128> {
    Some(u128::from_be_bytes(bytes.get(..16)?.try_into().ok()?))
}

/// `(u128, u64)` keys: an account's transfers and balance history by timestamp.
pub fn account_time_key(account_id: u128, timestamp: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&account_id.to_be_bytes());
    key[16..].copy_from_slice(&timestamp.to_be_bytes());
    key
}

/// `(u64, u128)` keys: pending expiry by time, then transfer id.
pub fn expiry_key(expires_at_ns: u64, transfer_id: u128) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&expires_at_ns.to_be_bytes());
    key[8..].copy_from_slice(&transfer_id.to_be_bytes());
    key
}

pub fn read_expiry_key(key: &[u8]) -> Option<(u64, u128)> {
    Some((read_u64(key)?, read_u128(key.get(8..)?)?))
}

/// Records: `[namespace length: u8][namespace][key]`, so one namespace is one contiguous range
/// and a key prefix within it is a prefix of the encoded key.
pub fn record_key(key: &RecordKey) -> Vec<u8> {
    let mut encoded = record_namespace_prefix(&key.namespace);
    encoded.extend_from_slice(&key.key);
    encoded
}

pub fn record_namespace_prefix(namespace: &str) -> Vec<u8> {
    // Namespaces are limited to RECORD_NAMESPACE_BYTES_MAX (< 256) before they get here.
    let length = u8::try_from(namespace.len()).unwrap_or(u8::MAX);
    let mut encoded = Vec::with_capacity(1 + namespace.len());
    encoded.push(length);
    encoded.extend_from_slice(namespace.as_bytes());
    encoded
}

/// The smallest key greater than every key that starts with `prefix`, if there is one.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_keys_sort_numerically() {
        assert!(u64_key(255) < u64_key(256));
        assert!(u128_key(1 << 64) > u128_key(u64::MAX as u128));
        assert!(account_time_key(1, u64::MAX) < account_time_key(2, 0));
        assert_eq!(read_expiry_key(&expiry_key(7, 9)), Some((7, 9)));
    }

    #[test]
    fn prefix_successor_skips_trailing_max_bytes() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_successor(&[255, 255]), None);
    }
}
