//! Node addresses (`host:port`, with or without `http://`) and the leader hint a follower sends.

use crate::error::ClientError;

/// gRPC metadata key in which a follower names the leader: `"<id>=<host:port>"`.
pub const LEADER_METADATA_KEY: &str = "x-tally-leader";

/// A validated node address, kept as `host:port` (no scheme).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeAddress {
    host_port: String,
}

impl NodeAddress {
    /// Parses `host:port`, `http://host:port`, `https://host:port` or either with a trailing `/`.
    /// IPv6 hosts go in brackets (`[::1]:7100`). Whether TLS is used is decided by the client's
    /// options, not by the scheme.
    pub fn parse(input: &str) -> Result<NodeAddress, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidAddress {
            addr: input.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input.trim();
        let without_scheme = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("https://"))
            .unwrap_or(trimmed);
        let host_port = without_scheme.strip_suffix('/').unwrap_or(without_scheme);
        if host_port.is_empty() {
            return Err(invalid("the address is empty"));
        }
        if host_port.contains('/') || host_port.contains("://") {
            return Err(invalid("unexpected scheme or path"));
        }
        let Some((host, port)) = host_port.rsplit_once(':') else {
            return Err(invalid("the port is missing"));
        };
        if host.is_empty() {
            return Err(invalid("the host is missing"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(invalid(
                "IPv6 hosts must be written in brackets, e.g. [::1]:7100",
            ));
        }
        match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(invalid("the port must be a number from 1 to 65535")),
            Ok(_) => {}
        }
        Ok(NodeAddress {
            host_port: host_port.to_string(),
        })
    }

    /// `host:port`, as operators write it.
    pub fn as_str(&self) -> &str {
        &self.host_port
    }

    /// The plain-text URI tonic connects to.
    pub fn uri(&self) -> String {
        self.uri_with(false)
    }

    /// The URI tonic connects to, `https://` with TLS.
    pub fn uri_with(&self, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_port)
    }
}

impl std::fmt::Display for NodeAddress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.host_port)
    }
}

/// Parses the value of [`LEADER_METADATA_KEY`], `"<id>=<host:port>"`, into the leader's node id
/// and address. Returns `None` for anything malformed: a bad hint is treated as no hint.
pub fn parse_leader_hint(value: &str) -> Option<(u64, NodeAddress)> {
    let (id, addr) = value.trim().split_once('=')?;
    let id = id.trim().parse::<u64>().ok().filter(|id| *id != 0)?;
    let addr = NodeAddress::parse(addr.trim()).ok()?;
    Some((id, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_http_addresses() {
        for (input, expected) in [
            ("127.0.0.1:7100", "127.0.0.1:7100"),
            ("http://127.0.0.1:7100", "127.0.0.1:7100"),
            ("http://node-1.internal:7100/", "node-1.internal:7100"),
            (" localhost:1 ", "localhost:1"),
            ("[::1]:7100", "[::1]:7100"),
            ("https://127.0.0.1:7100", "127.0.0.1:7100"),
        ] {
            let parsed = NodeAddress::parse(input).unwrap();
            assert_eq!(parsed.as_str(), expected, "input {input:?}");
            assert_eq!(parsed.uri(), format!("http://{expected}"));
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for input in [
            "",
            "127.0.0.1",
            ":7100",
            "host:0",
            "host:65536",
            "host:port",
            "http://host:7100/path",
            "::1:7100",
            "ftp://host:1",
        ] {
            let error = NodeAddress::parse(input).unwrap_err();
            assert!(
                matches!(error, ClientError::InvalidAddress { .. }),
                "input {input:?}"
            );
            assert!(error.to_string().contains("HOST:PORT"), "{error}");
        }
    }

    #[test]
    fn parses_leader_hints() {
        let (id, addr) = parse_leader_hint("2=127.0.0.1:7101").unwrap();
        assert_eq!((id, addr.as_str()), (2, "127.0.0.1:7101"));
        let (id, addr) = parse_leader_hint(" 17 = http://10.0.0.3:7100 ").unwrap();
        assert_eq!((id, addr.as_str()), (17, "10.0.0.3:7100"));
    }

    #[test]
    fn malformed_leader_hints_are_ignored() {
        for value in [
            "",
            "127.0.0.1:7101",
            "=127.0.0.1:7101",
            "x=127.0.0.1:7101",
            "0=127.0.0.1:7101",
            "2=",
            "2=127.0.0.1",
            "-1=127.0.0.1:7101",
        ] {
            assert_eq!(parse_leader_hint(value), None, "value {value:?}");
        }
    }
}
