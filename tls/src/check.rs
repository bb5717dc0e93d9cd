//! Loading PEM files and checking them before any port is bound or any connection is made: the
//! certificate chains to the cluster CA, is within its validity period, is meant for its use
//! (server or client) and names the host it serves; the key belongs to the certificate. Every
//! error names the file. Also reads the identity a peer's certificate carries.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

use crate::{Secret, TlsError, NODE_NAME_PREFIX};

/// The cluster CA: its PEM (for tonic) and its parsed trust anchor.
#[derive(Clone)]
pub struct CaBundle {
    pub pem: Vec<u8>,
    roots: Arc<RootCertStore>,
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CaBundle")
    }
}

/// A certificate and key that passed the checks: PEM for tonic, and the identity's name.
#[derive(Clone)]
pub struct CheckedIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Secret,
    /// The certificate's common name.
    pub name: String,
}

impl std::fmt::Debug for CheckedIdentity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckedIdentity")
            .field("name", &self.name)
            .field("key_pem", &self.key_pem)
            .finish_non_exhaustive()
    }
}

/// Who a verified peer certificate says its holder is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject's common name.
    pub name: String,
    /// True for a certificate the CA issued as a node certificate: `CN=node-N` and usable as a
    /// server certificate (client certificates are issued for client use only).
    pub is_node: bool,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|error| TlsError::invalid(path, format!("not a PEM certificate: {error}")))?;
    if certs.is_empty() {
        return Err(TlsError::invalid(
            path,
            "holds no certificate (expected a PEM `BEGIN CERTIFICATE` block)",
        ));
    }
    Ok(certs)
}

/// Loads the cluster CA certificate.
pub fn load_ca(path: &Path) -> Result<CaBundle, TlsError> {
    let pem = read(path)?;
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, &pem)? {
        roots
            .add(cert)
            .map_err(|error| TlsError::invalid(path, format!("not a usable CA: {error}")))?;
    }
    Ok(CaBundle {
        pem,
        roots: Arc::new(roots),
    })
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>, Secret), TlsError> {
    let cert_pem = read(cert_path)?;
    let certs = certificates(cert_path, &cert_pem)?;
    let key_bytes = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| {
        TlsError::invalid(key_path, "not a PEM private key (PKCS#8, PKCS#1 or SEC1)")
    })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::invalid(key_path, format!("unusable private key: {error}")))?;
    rustls::sign::CertifiedKey::new(certs.clone(), signing_key)
        .keys_match()
        .map_err(|_| {
            TlsError::invalid(
                key_path,
                format!("this key does not belong to {}", cert_path.display()),
            )
        })?;
    let key_pem = String::from_utf8(key_bytes)
        .map_err(|_| TlsError::invalid(key_path, "not a PEM text file"))?;
    Ok((certs, cert_pem, Secret::new(key_pem)))
}

fn explain(error: rustls::Error, ca: &Path, what: &str) -> String {
    match error {
        rustls::Error::InvalidCertificate(error) => match error {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the {what} certificate has expired ({error:?}); issue a new one")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the {what} certificate is not valid yet ({error:?}); check the clock")
            }
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the {what} certificate was not signed by the cluster CA {} (wrong CA?)",
                ca.display()
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the {what} certificate does not name this host ({error:?}); issue it with \
                     the address it serves (tallyctl certs node --addr HOST:PORT)"
                )
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                format!("the certificate is not a {what} certificate ({error:?})")
            }
            other => format!("the {what} certificate is not valid: {other:?}"),
        },
        other => format!("the {what} certificate is not valid: {other}"),
    }
}

fn common_name(cert: &CertificateDer<'_>) -> Option<PeerIdentity> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = parsed
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let server_use = parsed
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|usage| usage.value.server_auth);
    let is_node = server_use
        && name
            .strip_prefix(NODE_NAME_PREFIX)
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
    Some(PeerIdentity { name, is_node })
}

/// The identity of a peer whose certificate chain the TLS handshake already verified.
pub fn peer_identity(cert: &CertificateDer<'_>) -> Option<PeerIdentity> {
    common_name(cert)
}

/// Loads and checks a node's certificate: signed by the CA, valid now, a node certificate
/// (`CN=node-<id>`), valid for `host` (the host of the address peers and clients use).
pub fn load_node_identity(
    ca_path: &Path,
    ca: &CaBundle,
    cert_path: &Path,
    key_path: &Path,
    id: u64,
    host: &str,
) -> Result<CheckedIdentity, TlsError> {
    let (certs, cert_pem, key_pem) = load_pair(cert_path, key_path)?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(ca.roots.clone(), provider())
            .build()
            .map_err(|error| TlsError::invalid(ca_path, format!("not a usable CA: {error}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let server_name = ServerName::try_from(host.to_string())
        .map_err(|_| TlsError::Usage(format!("{host:?} is not a host name or IP address")))?;
    verifier
        .verify_server_cert(&certs[0], &certs[1..], &server_name, &[], UnixTime::now())
        .map_err(|error| TlsError::invalid(cert_path, explain(error, ca_path, "node")))?;
    let identity = common_name(&certs[0])
        .ok_or_else(|| TlsError::invalid(cert_path, "the certificate has no common name"))?;
    let expected = crate::node_name(id);
    if identity.name != expected || !identity.is_node {
        return Err(TlsError::invalid(
            cert_path,
            format!(
                "this is the certificate of {:?}, not of node {id} (expected CN={expected}); \
                 issue one with `tallyctl certs node --id {id}`",
                identity.name
            ),
        ));
    }
    Ok(CheckedIdentity {
        cert_pem,
        key_pem,
        name: identity.name,
    })
}

/// Loads an HTTPS server's certificate and key (e.g. the sandbox PSP's, or a service behind no
/// proxy) into a rustls server config with HTTP/1.1 and HTTP/2. The key must belong to the
/// certificate; errors name the file. The chain is not checked against a CA here: the clients
/// that trust it do that.
pub fn load_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (certs, _, key_pem) = load_pair(cert_path, key_path)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.expose().as_bytes())
        .map_err(|_| TlsError::invalid(key_path, "not a PEM private key"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Usage(format!("TLS protocol versions: {error}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| TlsError::invalid(cert_path, format!("unusable certificate: {error}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Loads and checks a client certificate: signed by the CA, valid now, usable by a client.
pub fn load_client_identity(
    ca_path: &Path,
    ca: &CaBundle,
    cert_path: &Path,
    key_path: &Path,
) -> Result<CheckedIdentity, TlsError> {
    let (certs, cert_pem, key_pem) = load_pair(cert_path, key_path)?;
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(ca.roots.clone(), provider())
            .build()
            .map_err(|error| TlsError::invalid(ca_path, format!("not a usable CA: {error}")))?;
    verifier
        .verify_client_cert(&certs[0], &certs[1..], UnixTime::now())
        .map_err(|error| TlsError::invalid(cert_path, explain(error, ca_path, "client")))?;
    let identity = common_name(&certs[0])
        .ok_or_else(|| TlsError::invalid(cert_path, "the certificate has no common name"))?;
    Ok(CheckedIdentity {
        cert_pem,
        key_pem,
        name: identity.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Authority, Validity};

    struct Fixture {
        dir: tempfile::TempDir,
        ca_path: std::path::PathBuf,
        ca: CaBundle,
        authority: Authority,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::create("test CA", Validity::ca_default()).unwrap();
        let ca_path = authority.write(dir.path()).unwrap();
        let ca = load_ca(&ca_path).unwrap();
        Fixture {
            dir,
            ca_path,
            ca,
            authority,
        }
    }

    fn hosts() -> Vec<String> {
        vec!["127.0.0.1".into(), "localhost".into()]
    }

    #[test]
    fn issued_node_and_client_certificates_pass_the_checks() {
        let f = fixture();
        let node = f
            .authority
            .issue_node(2, &hosts(), Validity::leaf_default())
            .unwrap();
        let (cert, key) = node.write(f.dir.path(), "node-2").unwrap();
        let identity = load_node_identity(&f.ca_path, &f.ca, &cert, &key, 2, "127.0.0.1").unwrap();
        assert_eq!(identity.name, "node-2");
        // Peers dial node 2 by the name `node-2`: the certificate answers to it, not to node-3.
        load_node_identity(&f.ca_path, &f.ca, &cert, &key, 2, "node-2").unwrap();
        let error = load_node_identity(&f.ca_path, &f.ca, &cert, &key, 2, "node-3").unwrap_err();
        assert!(error.to_string().contains("does not name"), "{error}");
        let der = CertificateDer::from_pem_slice(&identity.cert_pem).unwrap();
        assert_eq!(
            peer_identity(&der),
            Some(PeerIdentity {
                name: "node-2".into(),
                is_node: true
            })
        );
        assert!(!format!("{identity:?}").contains("PRIVATE"));

        let client = f
            .authority
            .issue_client("ops", Validity::leaf_default())
            .unwrap();
        let (cert, key) = client.write(f.dir.path(), "client-ops").unwrap();
        let identity = load_client_identity(&f.ca_path, &f.ca, &cert, &key).unwrap();
        let der = CertificateDer::from_pem_slice(&identity.cert_pem).unwrap();
        assert_eq!(
            peer_identity(&der),
            Some(PeerIdentity {
                name: "ops".into(),
                is_node: false
            })
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn expired_wrong_ca_wrong_name_and_wrong_node_are_named_errors() {
        let f = fixture();
        let expired = f
            .authority
            .issue_node(
                1,
                &hosts(),
                Validity {
                    start_days: -10,
                    end_days: -2,
                },
            )
            .unwrap();
        let (cert, key) = expired.write(f.dir.path(), "expired").unwrap();
        let error = load_node_identity(&f.ca_path, &f.ca, &cert, &key, 1, "127.0.0.1")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("expired.pem") && error.contains("expired"),
            "{error}"
        );

        let other = Authority::create("other CA", Validity::ca_default()).unwrap();
        let foreign = other
            .issue_node(1, &hosts(), Validity::leaf_default())
            .unwrap();
        let (cert, key) = foreign.write(f.dir.path(), "foreign").unwrap();
        let error = load_node_identity(&f.ca_path, &f.ca, &cert, &key, 1, "127.0.0.1")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("foreign.pem") && error.contains("wrong CA"),
            "{error}"
        );

        let node = f
            .authority
            .issue_node(1, &hosts(), Validity::leaf_default())
            .unwrap();
        let (cert, key) = node.write(f.dir.path(), "node-1").unwrap();
        let error = load_node_identity(&f.ca_path, &f.ca, &cert, &key, 1, "10.9.9.9")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("node-1.pem") && error.contains("does not name"),
            "{error}"
        );
        let error = load_node_identity(&f.ca_path, &f.ca, &cert, &key, 3, "127.0.0.1")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not of node 3"), "{error}");

        let client = f
            .authority
            .issue_client("ops", Validity::leaf_default())
            .unwrap();
        let (client_cert, client_key) = client.write(f.dir.path(), "client-ops").unwrap();
        let error =
            load_node_identity(&f.ca_path, &f.ca, &client_cert, &client_key, 1, "127.0.0.1")
                .unwrap_err()
                .to_string();
        assert!(error.contains("client-ops.pem"), "{error}");
        let error = load_client_identity(&f.ca_path, &f.ca, &cert, &client_key)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not belong"), "{error}");
    }

    #[test]
    fn missing_and_garbage_files_are_named() {
        let f = fixture();
        let garbage = f.dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap();
        let error = load_ca(&garbage).unwrap_err().to_string();
        assert!(error.contains("garbage.pem"), "{error}");
        let error = load_ca(&f.dir.path().join("nope.pem"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("nope.pem"), "{error}");
        assert!(f
            .authority
            .issue_client("node-7", Validity::leaf_default())
            .is_err());
        assert!(Authority::load(f.dir.path()).is_ok());
        assert!(
            f.authority.write(f.dir.path()).is_err(),
            "never overwrites a CA"
        );
    }
}
