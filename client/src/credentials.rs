//! How the client proves who it is and checks whom it talks to: the cluster CA, an optional client
//! certificate and key, an optional bearer token, or explicit plain text; read from flags or the
//! environment the way etcdctl does (`TALLY_CA`, `TALLY_CERT`, `TALLY_KEY`, `TALLY_TOKEN`,
//! `TALLY_INSECURE`). Files are checked when the client is created, with errors naming the file.

use std::path::PathBuf;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

pub use tally_tls::Secret;

use crate::error::ClientError;

/// Environment variables read by [`Credentials::from_env`].
pub const ENV_CA: &str = "TALLY_CA";
pub const ENV_CERT: &str = "TALLY_CERT";
pub const ENV_KEY: &str = "TALLY_KEY";
pub const ENV_TOKEN: &str = "TALLY_TOKEN";
pub const ENV_INSECURE: &str = "TALLY_INSECURE";

/// Where the client's TLS material is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    /// The cluster CA certificate; the node's certificate must chain to it and name its address.
    pub ca: PathBuf,
    /// Client certificate (mutual TLS); its common name is the identity the node maps to roles.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub key: Option<PathBuf>,
}

impl TlsOptions {
    pub(crate) fn load(&self) -> Result<ClientTlsConfig, ClientError> {
        tally_tls::install_crypto_provider();
        let error = |error: tally_tls::TlsError| ClientError::Credentials(error.to_string());
        let ca = tally_tls::load_ca(&self.ca).map_err(error)?;
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca.pem))
            .timeout(std::time::Duration::from_secs(5));
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let identity =
                    tally_tls::load_client_identity(&self.ca, &ca, cert, key).map_err(error)?;
                config = config.identity(Identity::from_pem(
                    &identity.cert_pem,
                    identity.key_pem.expose().as_bytes(),
                ));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(ClientError::Credentials(
                    "a client certificate needs its key: pass --key (TALLY_KEY)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(ClientError::Credentials(
                    "a client key needs its certificate: pass --cert (TALLY_CERT)".into(),
                ))
            }
        }
        Ok(config)
    }
}

/// Credentials as an operator gives them (flags, environment), before they become
/// [`crate::ClientOptions`] fields with [`Credentials::apply`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub token: Option<Secret>,
    /// Plain text, for a cluster started with `--insecure`.
    pub insecure: bool,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.trim().is_empty())
}

/// True for `1`, `true`, `yes`, `on` (any case).
pub fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl Credentials {
    /// Reads `TALLY_CA`, `TALLY_CERT`, `TALLY_KEY`, `TALLY_TOKEN` and `TALLY_INSECURE`.
    pub fn from_env() -> Credentials {
        Credentials::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Credentials::from_env`], reading through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Credentials {
        let path = |name| non_empty(lookup(name)).map(PathBuf::from);
        Credentials {
            ca: path(ENV_CA),
            cert: path(ENV_CERT),
            key: path(ENV_KEY),
            token: non_empty(lookup(ENV_TOKEN)).map(Secret::new),
            insecure: lookup(ENV_INSECURE).is_some_and(|value| is_truthy(&value)),
        }
    }

    /// Sets `options.tls` and `options.token`. Without a CA the client refuses to start unless
    /// plain text was asked for explicitly.
    pub fn apply(&self, options: &mut crate::ClientOptions) -> Result<(), ClientError> {
        options.token = self.token.clone();
        if self.insecure {
            options.tls = None;
            return Ok(());
        }
        let Some(ca) = &self.ca else {
            return Err(ClientError::Credentials(
                "no cluster CA: pass --ca (or TALLY_CA) with the cluster's ca.pem, plus a client \
                 certificate (--cert/--key) or a token (--token); for a cluster started with \
                 --insecure pass --insecure (TALLY_INSECURE=1). `tally-node dev` writes these \
                 settings to DATA/tally.env: `source` it"
                    .into(),
            ));
        };
        options.tls = Some(TlsOptions {
            ca: ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_read_and_token_masked() {
        let env = |name: &str| match name {
            "TALLY_CA" => Some("/c/ca.pem".to_string()),
            "TALLY_TOKEN" => Some("s3cret".to_string()),
            "TALLY_INSECURE" => Some("0".to_string()),
            _ => None,
        };
        let credentials = Credentials::from_lookup(env);
        assert_eq!(credentials.ca, Some(PathBuf::from("/c/ca.pem")));
        assert!(!credentials.insecure);
        assert!(!format!("{credentials:?}").contains("s3cret"));
        let mut options = crate::ClientOptions::default();
        credentials.apply(&mut options).unwrap();
        assert_eq!(options.tls.unwrap().ca, PathBuf::from("/c/ca.pem"));
    }

    #[test]
    fn no_ca_without_insecure_is_a_clear_error() {
        let mut options = crate::ClientOptions::default();
        let error = Credentials::default().apply(&mut options).unwrap_err();
        assert!(error.to_string().contains("--ca"), "{error}");
        let insecure = Credentials {
            insecure: true,
            ..Credentials::default()
        };
        insecure.apply(&mut options).unwrap();
        assert!(options.tls.is_none());
    }
}
