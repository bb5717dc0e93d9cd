//! Webhook signatures: HMAC-SHA256 over `"<timestamp>.<body>"`, sent as
//! `psp-signature: t=<unix seconds>,v1=<hex>`. The sandbox PSP signs with [`sign`]; connectors
//! check with [`verify`] (constant-time comparison, timestamp tolerance against replays).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::WebhookError;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "psp-signature";

/// A longer header is rejected unread: a real one is about 80 bytes.
pub const SIGNATURE_HEADER_LENGTH_MAX: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// The `psp-signature` header value for `body`, sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let signature = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

/// Checks a `psp-signature` header value against `body`.
///
/// The signature is checked first (in constant time), then the timestamp: it must be at most
/// `tolerance` away from `now_unix`, in either direction, so a captured delivery cannot be
/// replayed later. Several `v1=` entries are allowed (a PSP rotating its secret sends one per
/// secret); one match is enough. Unknown entries are ignored.
pub fn verify(
    secret: &[u8],
    header_value: &str,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let header = parse_header(header_value)?;
    let matched = header.signatures.iter().any(|signature| {
        mac(secret, header.timestamp, body)
            .verify_slice(signature)
            .is_ok()
    });
    if !matched {
        return Err(WebhookError::BadSignature);
    }
    let tolerance_seconds = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age_seconds = now_unix.saturating_sub(header.timestamp);
    if age_seconds > tolerance_seconds || age_seconds < tolerance_seconds.saturating_neg() {
        return Err(WebhookError::StaleTimestamp { age_seconds });
    }
    Ok(())
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

struct SignatureHeader {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse_header(value: &str) -> Result<SignatureHeader, WebhookError> {
    if value.len() > SIGNATURE_HEADER_LENGTH_MAX {
        return Err(WebhookError::MalformedSignature);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or(WebhookError::MalformedSignature)?;
        match key {
            "t" => {
                let parsed = value
                    .parse::<i64>()
                    .map_err(|_| WebhookError::MalformedSignature)?;
                if timestamp.replace(parsed).is_some() {
                    return Err(WebhookError::MalformedSignature);
                }
            }
            "v1" => {
                let signature = hex::decode(value).map_err(|_| WebhookError::MalformedSignature)?;
                if signature.len() != 32 {
                    return Err(WebhookError::MalformedSignature);
                }
                signatures.push(signature);
            }
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !signatures.is_empty() => Ok(SignatureHeader {
            timestamp,
            signatures,
        }),
        _ => Err(WebhookError::MalformedSignature),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
    const NOW: i64 = 1_700_000_000;
    const TOLERANCE: Duration = Duration::from_secs(300);

    #[test]
    fn good_signature_verifies() {
        let header = sign(SECRET, NOW - 10, BODY);
        assert!(header.starts_with(&format!("t={},v1=", NOW - 10)));
        assert_eq!(verify(SECRET, &header, BODY, NOW, TOLERANCE), Ok(()));
    }

    #[test]
    fn forged_signature_is_rejected() {
        let header = sign(b"another secret", NOW, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, TOLERANCE),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn tampered_body_is_rejected() {
        let header = sign(SECRET, NOW, BODY);
        let tampered = br#"{"id":"evt_1","type":"charge.failed"}"#;
        assert_eq!(
            verify(SECRET, &header, tampered, NOW, TOLERANCE),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn tampered_timestamp_is_rejected() {
        let header = sign(SECRET, NOW - 1000, BODY)
            .replace(&format!("t={}", NOW - 1000), &format!("t={NOW}"));
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, TOLERANCE),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected() {
        let stale = sign(SECRET, NOW - 301, BODY);
        assert_eq!(
            verify(SECRET, &stale, BODY, NOW, TOLERANCE),
            Err(WebhookError::StaleTimestamp { age_seconds: 301 })
        );
        let future = sign(SECRET, NOW + 301, BODY);
        assert_eq!(
            verify(SECRET, &future, BODY, NOW, TOLERANCE),
            Err(WebhookError::StaleTimestamp { age_seconds: -301 })
        );
        let edge = sign(SECRET, NOW - 300, BODY);
        assert_eq!(verify(SECRET, &edge, BODY, NOW, TOLERANCE), Ok(()));
    }

    #[test]
    fn rotated_secret_matches_any_v1() {
        let good = sign(SECRET, NOW, BODY);
        let old = sign(b"old secret", NOW, BODY);
        let old_signature = old.split_once(",v1=").map(|(_, s)| s).unwrap_or_default();
        let header = format!("{good},v1={old_signature},v0=ignored");
        assert_eq!(verify(SECRET, &header, BODY, NOW, TOLERANCE), Ok(()));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let signature = "ab".repeat(32);
        let cases = [
            String::new(),
            "garbage".to_owned(),
            format!("v1={signature}"),
            format!("t={NOW}"),
            format!("t=yesterday,v1={signature}"),
            format!("t={NOW},v1=not-hex"),
            format!("t={NOW},v1=abcd"),
            format!("t={NOW},t={NOW},v1={signature}"),
            format!("t={NOW},v1={}", "ab".repeat(SIGNATURE_HEADER_LENGTH_MAX)),
        ];
        for header in cases {
            assert_eq!(
                verify(SECRET, &header, BODY, NOW, TOLERANCE),
                Err(WebhookError::MalformedSignature),
                "{header}"
            );
        }
    }
}
