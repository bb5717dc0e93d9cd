//! Tally's certificates: issuing a cluster CA and node/client certificates ([`issue`]), loading
//! and checking PEM files with errors that name the file ([`check`]), reading the identity a
//! peer's certificate carries, and hashing bearer tokens. Used by `tally-node`, `tallyctl`,
//! `tally-client` and the tests, so every one of them agrees on names and checks.

pub mod check;
pub mod issue;

use std::path::{Path, PathBuf};

pub use check::{
    load_ca, load_client_identity, load_node_identity, load_server_config, peer_identity, CaBundle,
    CheckedIdentity, PeerIdentity,
};
pub use issue::{Authority, Issued, Validity};

/// Common-name prefix of node certificates: node 3's certificate says `CN=node-3`.
pub const NODE_NAME_PREFIX: &str = "node-";

/// Longest identity name (certificate common name or token name).
pub const IDENTITY_NAME_LENGTH_MAX: usize = 64;

/// File names inside a certificate directory.
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";

/// An error about a certificate or key file; every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
    #[error("issuing a certificate: {0}")]
    Issue(String),
}

impl TlsError {
    fn invalid(path: &Path, reason: impl Into<String>) -> TlsError {
        TlsError::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Makes ring the process's rustls crypto provider (if none is set yet), so TLS servers never
/// depend on which rustls features other crates in the build enable.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The name of node `id`'s identity (its certificate's common name).
pub fn node_name(id: u64) -> String {
    format!("{NODE_NAME_PREFIX}{id}")
}

/// Checks an identity name: 1 to 64 characters of `a-z A-Z 0-9 . _ -`.
pub fn check_identity_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > IDENTITY_NAME_LENGTH_MAX {
        return Err(format!(
            "identity name must have 1 to {IDENTITY_NAME_LENGTH_MAX} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "identity name {name:?} may only use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Lower-case hex SHA-256 of a bearer token: what a node's `[auth.tokens]` stores, never the
/// token itself.
pub fn token_sha256_hex(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A secret (private key PEM, bearer token) whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself: call only where it is used, never to log or print.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_tokens_hashed() {
        let secret = Secret::new("tok_very_secret");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(
            token_sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn identity_names_are_checked() {
        assert!(check_identity_name("tally-pay").is_ok());
        assert!(check_identity_name("").is_err());
        assert!(check_identity_name("a b").is_err());
        assert!(check_identity_name(&"x".repeat(65)).is_err());
    }
}
