//! [`NodeTls`]: the node's certificate, key and the cluster CA, checked at start-up, turned into
//! tonic's server config (TLS, client certificates verified against the CA when presented) and
//! client config for Raft traffic to peers (mutual TLS).

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::NodeConfig;
use crate::limits::TLS_HANDSHAKE_TIMEOUT;

/// A node's TLS material. `Debug` shows no key.
#[derive(Clone)]
pub struct NodeTls {
    ca: tally_tls::CaBundle,
    identity: tally_tls::CheckedIdentity,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NodeTls")
            .field("name", &self.identity.name)
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// Loads and checks `[tls]`: the certificate must be node `node.id`'s, signed by the CA,
    /// valid now and for the host of the advertised address. `None` for an `--insecure` node.
    pub fn load(config: &NodeConfig) -> Result<Option<NodeTls>, tally_tls::TlsError> {
        if config.tls.insecure {
            return Ok(None);
        }
        tally_tls::install_crypto_provider();
        let missing =
            |name: &str| tally_tls::TlsError::Usage(format!("tls.{name} is not set (--{name})"));
        let ca_path = config.tls.ca.as_deref().ok_or_else(|| missing("ca"))?;
        let cert = config.tls.cert.as_deref().ok_or_else(|| missing("cert"))?;
        let key = config.tls.key.as_deref().ok_or_else(|| missing("key"))?;
        let ca = tally_tls::load_ca(ca_path)?;
        let advertise = config.advertise();
        let host = advertise
            .rsplit_once(':')
            .map(|(host, _)| host)
            .unwrap_or(&advertise);
        let identity =
            tally_tls::load_node_identity(ca_path, &ca, cert, key, config.node.id, host)?;
        Ok(Some(NodeTls { ca, identity }))
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(
            &self.identity.cert_pem,
            self.identity.key_pem.expose().as_bytes(),
        )
    }

    pub(crate) fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(Certificate::from_pem(&self.ca.pem))
            // Clients may authenticate with a token instead; the role check needs one or the other.
            .client_auth_optional(true)
            .timeout(TLS_HANDSHAKE_TIMEOUT)
    }

    /// Mutual TLS to peer `target`: its certificate must chain to the CA *and* name it
    /// (`node-<target>`, a subject alternative name of every node certificate), so a node
    /// certificate of another id cannot stand in for the peer at that address.
    pub(crate) fn peer_config(&self, target: u64) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .domain_name(tally_tls::node_name(target))
            .ca_certificate(Certificate::from_pem(&self.ca.pem))
            .identity(self.identity())
            .timeout(TLS_HANDSHAKE_TIMEOUT)
    }
}
