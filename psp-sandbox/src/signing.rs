//! How the sandbox signs its webhooks, as a PSP does: HMAC-SHA256 with the shared secret over
//! `"<unix seconds>.<body>"`, sent as `psp-signature: t=<unix seconds>,v1=<hex>`. Checking the
//! signature (and the timestamp's age) is the receiver's job.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "psp-signature";

/// The [`SIGNATURE_HEADER`] value for `body` sent at `timestamp` (unix seconds).
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).expect("HMAC-SHA256 takes a key of any length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let signature = mac.finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // HMAC-SHA256("key", "1700000000.{}"), computed independently with openssl:
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        let header = signature_header(b"key", 1_700_000_000, b"{}");
        assert_eq!(
            header,
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert_ne!(signature_header(b"other", 1_700_000_000, b"{}"), header);
        assert_ne!(signature_header(b"key", 1_700_000_001, b"{}"), header);
    }
}
