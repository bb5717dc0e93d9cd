//! Issuing certificates with rcgen: a cluster CA, node certificates (server and client use, the
//! node's addresses as subject alternative names, `CN=node-N`) and client certificates (client
//! use only, `CN=<name>`). Keys are ECDSA P-256; key files are written with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::{check_identity_name, node_name, Secret, TlsError, CA_CERT_FILE, CA_KEY_FILE};

/// Lifetime of a certificate, counted from now (negative offsets make expired certificates for
/// tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// First valid day, relative to today.
    pub start_days: i64,
    /// Last valid day, relative to today.
    pub end_days: i64,
}

impl Validity {
    /// Valid from a day ago (tolerating clock skew) for `days` days.
    pub fn days(days: i64) -> Validity {
        Validity {
            start_days: -1,
            end_days: days,
        }
    }

    /// The default lifetime of a CA: ten years.
    pub fn ca_default() -> Validity {
        Validity::days(3650)
    }

    /// The default lifetime of a node or client certificate: one year.
    pub fn leaf_default() -> Validity {
        Validity::days(365)
    }

    fn apply(&self, params: &mut CertificateParams) {
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(self.start_days);
        params.not_after = now + time::Duration::days(self.end_days);
    }
}

/// A certificate and its private key, as PEM, not yet written anywhere.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: Secret,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Issued")
            .field("key_pem", &self.key_pem)
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// Writes `<dir>/<stem>.pem` and `<dir>/<stem>.key` (mode 0600); returns both paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        write_file(&cert, self.cert_pem.as_bytes(), false)?;
        write_file(&key, self.key_pem.expose().as_bytes(), true)?;
        Ok((cert, key))
    }
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = options
        .open(path)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()));
    result.map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A certificate authority that can sign node and client certificates.
pub struct Authority {
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Authority { key: *** }")
    }
}

fn issue_error(error: rcgen::Error) -> TlsError {
    TlsError::Issue(error.to_string())
}

impl Authority {
    /// Creates a new self-signed CA named `name`.
    pub fn create(name: &str, validity: Validity) -> Result<Authority, TlsError> {
        let key = KeyPair::generate().map_err(issue_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity.apply(&mut params);
        let cert = params.self_signed(&key).map_err(issue_error)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Loads a CA from `ca.pem` and `ca.key` in `dir`.
    pub fn load(dir: &Path) -> Result<Authority, TlsError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(&cert_path)?;
        let key = KeyPair::from_pem(&read(&key_path)?)
            .map_err(|error| TlsError::invalid(&key_path, format!("not a private key: {error}")))?;
        Issuer::from_ca_cert_pem(&cert_pem, &key).map_err(|error| {
            TlsError::invalid(&cert_path, format!("not a CA certificate: {error}"))
        })?;
        Ok(Authority { cert_pem, key })
    }

    /// Writes `ca.pem` and `ca.key` into `dir`; refuses to overwrite an existing CA.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, TlsError> {
        let cert = dir.join(CA_CERT_FILE);
        if cert.exists() {
            return Err(TlsError::invalid(
                &cert,
                "a CA already exists here; remove it first to replace it (every certificate it \
                 signed stops working)",
            ));
        }
        let issued = Issued {
            cert_pem: self.cert_pem.clone(),
            key_pem: Secret::new(self.key.serialize_pem()),
        };
        issued.write(dir, "ca")?;
        Ok(cert)
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for node `id`, valid for every host in `hosts` (IP addresses or DNS names;
    /// `localhost` and `127.0.0.1` are not added unless listed).
    pub fn issue_node(
        &self,
        id: u64,
        hosts: &[String],
        validity: Validity,
    ) -> Result<Issued, TlsError> {
        if id == 0 {
            return Err(TlsError::Usage("node ids start at 1".into()));
        }
        if hosts.is_empty() {
            return Err(TlsError::Usage(
                "a node certificate needs at least one host or IP address (--addr)".into(),
            ));
        }
        // The node's name is a subject alternative name too: peers dial node N expecting
        // `node-N`, so a certificate of another node cannot answer for it.
        let mut names = hosts.to_vec();
        names.push(node_name(id));
        let mut params = CertificateParams::new(names)
            .map_err(|error| TlsError::Usage(format!("bad host name in {hosts:?}: {error}")))?;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params, &node_name(id), validity)
    }

    /// A server certificate (not a node's) for an HTTPS service reached at `hosts`, e.g. a PSP
    /// endpoint in tests or a tally-pay listener: `CN=name`, usable only as a server.
    pub fn issue_server(
        &self,
        name: &str,
        hosts: &[String],
        validity: Validity,
    ) -> Result<Issued, TlsError> {
        check_identity_name(name).map_err(TlsError::Usage)?;
        if name.starts_with(crate::NODE_NAME_PREFIX) || hosts.is_empty() {
            return Err(TlsError::Usage(format!(
                "a server certificate needs a name not starting with {:?} and at least one host",
                crate::NODE_NAME_PREFIX
            )));
        }
        let mut params = CertificateParams::new(hosts.to_vec())
            .map_err(|error| TlsError::Usage(format!("bad host name in {hosts:?}: {error}")))?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, name, validity)
    }

    /// A client certificate for the identity `name` (the node maps it to roles).
    pub fn issue_client(&self, name: &str, validity: Validity) -> Result<Issued, TlsError> {
        check_identity_name(name).map_err(TlsError::Usage)?;
        if name.starts_with(crate::NODE_NAME_PREFIX) {
            return Err(TlsError::Usage(format!(
                "client name {name:?} starts with {:?}, which is reserved for nodes",
                crate::NODE_NAME_PREFIX
            )));
        }
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, name, validity)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        common_name: &str,
        validity: Validity,
    ) -> Result<Issued, TlsError> {
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params);
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(issue_error)?;
        let key = KeyPair::generate().map_err(issue_error)?;
        let cert = params.signed_by(&key, &issuer).map_err(issue_error)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: Secret::new(key.serialize_pem()),
        })
    }
}
