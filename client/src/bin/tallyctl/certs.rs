//! `tallyctl certs`: create the cluster CA, issue node and client certificates, hash tokens.

use std::process::ExitCode;

use tally_tls::{Authority, Validity};

use crate::cli::CertsCommand;

pub fn run(
    command: CertsCommand,
    token: Option<&tally_client::Secret>,
) -> anyhow::Result<ExitCode> {
    match command {
        CertsCommand::Init { dir, name, days } => {
            let authority = Authority::create(&name, Validity::days(i64::from(days)))?;
            let cert = authority.write(&dir)?;
            outln!(
                "created CA {} (key {})",
                cert.display(),
                dir.join(tally_tls::CA_KEY_FILE).display()
            );
        }
        CertsCommand::Node {
            dir,
            id,
            addr,
            days,
        } => {
            let hosts = addr
                .iter()
                .map(|addr| host_of(addr))
                .collect::<Result<Vec<_>, _>>()?;
            let authority = Authority::load(&dir)?;
            let issued = authority.issue_node(id, &hosts, Validity::days(i64::from(days)))?;
            let (cert, key) = issued.write(&dir, &tally_tls::node_name(id))?;
            outln!(
                "issued {} (CN={}, hosts {}) and {}",
                cert.display(),
                tally_tls::node_name(id),
                hosts.join(", "),
                key.display()
            );
        }
        CertsCommand::Client { dir, name, days } => {
            let authority = Authority::load(&dir)?;
            let issued = authority.issue_client(&name, Validity::days(i64::from(days)))?;
            let (cert, key) = issued.write(&dir, &format!("client-{name}"))?;
            outln!(
                "issued {} (CN={name}) and {}",
                cert.display(),
                key.display()
            );
            outln!(
                "grant it roles in each node's config:  [auth.roles]  {name} = [\"ledger.read\"]"
            );
        }
        CertsCommand::TokenHash => {
            let Some(token) = token else {
                anyhow::bail!("pass the token with --token or TALLY_TOKEN");
            };
            outln!("{}", tally_tls::token_sha256_hex(token.expose()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The host part of `HOST:PORT` (brackets of an IPv6 host removed), or a bare host.
fn host_of(addr: &str) -> anyhow::Result<String> {
    let addr = addr.trim();
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        anyhow::bail!("--addr {addr:?}: the host is missing (expected HOST:PORT)");
    }
    Ok(host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_addresses() {
        assert_eq!(host_of("127.0.0.1:7100").unwrap(), "127.0.0.1");
        assert_eq!(host_of("node1.internal").unwrap(), "node1.internal");
        assert_eq!(host_of("[::1]:7100").unwrap(), "::1");
        assert!(host_of(":7100").is_err());
    }
}
