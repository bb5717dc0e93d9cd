//! Value framing: `[crc32 of payload: u32 LE][payload]`, payload encoded with bincode.
//!
//! Every value the node stores goes through [`encode`] and comes back through [`decode`], so a
//! flipped bit on disk is reported as [`StorageError::Corrupt`] instead of being applied.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Space, StorageError};

const FRAME_HEADER_BYTES: usize = 4;

fn config() -> bincode::config::Configuration<bincode::config::LittleEndian, bincode::config::Fixint>
{
    bincode::config::standard().with_fixed_int_encoding()
}

/// Encodes a value without framing (for payloads that travel inside another frame).
pub fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for the node's own types: they have no maps with
    // non-string keys or other constructs bincode rejects.
    bincode::serde::encode_to_vec(value, config()).expect("bincode encoding of a node type")
}

pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|error| error.to_string())?;
    if read != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - read));
    }
    Ok(value)
}

/// Encodes and frames a value with its crc32.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let payload = to_bytes(value);
    frame(&payload)
}

pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    framed.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    framed.extend_from_slice(payload);
    framed
}

/// Checks the frame's crc32 and returns the payload.
pub fn unframe(space: Space, framed: &[u8]) -> Result<&[u8], StorageError> {
    if framed.len() < FRAME_HEADER_BYTES {
        return Err(StorageError::Corrupt {
            space: space.name(),
            reason: "value shorter than its frame".into(),
        });
    }
    let (header, payload) = framed.split_at(FRAME_HEADER_BYTES);
    let expected = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let actual = crc32fast::hash(payload);
    if expected != actual {
        return Err(StorageError::Corrupt {
            space: space.name(),
            reason: format!("crc32 mismatch: stored {expected:08x}, computed {actual:08x}"),
        });
    }
    Ok(payload)
}

pub fn decode<T: DeserializeOwned>(space: Space, framed: &[u8]) -> Result<T, StorageError> {
    let payload = unframe(space, framed)?;
    from_bytes(payload).map_err(|reason| StorageError::Corrupt {
        space: space.name(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_detects_flipped_bits() {
        let value = (42u128, String::from("tally"), vec![1u64, 2, 3]);
        let framed = encode(&value);
        let back: (u128, String, Vec<u64>) = decode(Space::Accounts, &framed).unwrap();
        assert_eq!(back, value);
        for index in 0..framed.len() {
            let mut broken = framed.clone();
            broken[index] ^= 0x10;
            assert!(
                decode::<(u128, String, Vec<u64>)>(Space::Accounts, &broken).is_err(),
                "flip at {index}"
            );
        }
    }

    #[test]
    fn short_value_is_corrupt_not_a_panic() {
        assert!(decode::<u64>(Space::Transfers, &[1, 2]).is_err());
        assert!(decode::<u64>(Space::Transfers, &[]).is_err());
    }
}
