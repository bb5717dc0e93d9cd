//! Encryption at rest of sensitive fields (bank account numbers): AES-256-GCM with a random
//! 96-bit nonce per value, stored as `KEY_ID:hex(nonce || ciphertext || tag)`. The key id says
//! which data key sealed a value, so keys can be rotated: new values are sealed with the current
//! key, old ones still open with the previous keys until they are re-encrypted.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};

const NONCE_BYTES: usize = 12;

#[derive(Clone)]
pub struct Sealer {
    /// The current key first, then previous keys, each with its id.
    ciphers: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot decrypt a stored value: wrong key or corrupted data")]
pub struct OpenError;

impl Sealer {
    /// A sealer with one key (id `k`), for tests and tools.
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer::with_keys(&[("k", key)])
    }

    /// The current key first, then the previous ones that may still open older values.
    pub fn with_keys(keys: &[(&str, &[u8; 32])]) -> Sealer {
        assert!(!keys.is_empty(), "a sealer needs a key");
        Sealer {
            ciphers: keys
                .iter()
                .map(|(id, key)| {
                    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(*key));
                    (id.to_string(), cipher)
                })
                .collect(),
        }
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.ciphers[0].0
    }

    /// The id of the key that sealed `sealed` (`None` for values from before key ids).
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        sealed.split_once(':').map(|(id, _)| id)
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let (id, cipher) = &self.ciphers[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("{id}:{}", hex::encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, OpenError> {
        match sealed.split_once(':') {
            Some((id, body)) => {
                let (_, cipher) = self
                    .ciphers
                    .iter()
                    .find(|(k, _)| k == id)
                    .ok_or(OpenError)?;
                open_with(cipher, body)
            }
            // Sealed before values carried a key id: try every key.
            None => self
                .ciphers
                .iter()
                .find_map(|(_, cipher)| open_with(cipher, sealed).ok())
                .ok_or(OpenError),
        }
    }
}

fn open_with(cipher: &Aes256Gcm, sealed: &str) -> Result<String, OpenError> {
    let bytes = hex::decode(sealed).map_err(|_| OpenError)?;
    if bytes.len() <= NONCE_BYTES {
        return Err(OpenError);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
    let plaintext = cipher
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .map_err(|_| OpenError)?;
    String::from_utf8(plaintext).map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let sealer = Sealer::new(&[7u8; 32]);
        let sealed = sealer.seal("DE89370400440532013000");
        assert!(!sealed.contains("0532013000"));
        assert_eq!(sealer.open(&sealed).unwrap(), "DE89370400440532013000");
        assert_ne!(sealer.seal("x"), sealer.seal("x"), "fresh nonce per value");
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            sealer.open(&String::from_utf8(tampered).unwrap()),
            Err(OpenError)
        );
        assert_eq!(
            Sealer::new(&[8u8; 32]).open(&sealer.seal("x")),
            Err(OpenError)
        );
    }

    #[test]
    fn values_open_with_the_key_that_sealed_them() {
        let old = Sealer::with_keys(&[("k1", &[1u8; 32])]);
        let sealed = old.seal("GB82WEST12345698765432");
        assert_eq!(Sealer::key_id_of(&sealed), Some("k1"));
        let rotated = Sealer::with_keys(&[("k2", &[2u8; 32]), ("k1", &[1u8; 32])]);
        assert_eq!(rotated.open(&sealed).unwrap(), "GB82WEST12345698765432");
        assert_eq!(Sealer::key_id_of(&rotated.seal("x")), Some("k2"));
        let forgot = Sealer::with_keys(&[("k2", &[2u8; 32])]);
        assert_eq!(forgot.open(&sealed), Err(OpenError));
    }
}
