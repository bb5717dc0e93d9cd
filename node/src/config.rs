//! Node configuration: a TOML file, then `TALLY__SECTION__KEY` environment variables, then
//! flags; [`NodeConfig::validate`] runs before any port is bound.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use crate::raft::RaftSettings;

/// Everything `tally-node serve` needs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub node: NodeSection,
    pub raft: RaftSection,
    pub tls: TlsSection,
    pub auth: AuthSection,
}

/// Certificates (PEM files). Required unless `insecure = true`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// The cluster CA certificate: peers and clients must present certificates it signed.
    pub ca: Option<PathBuf>,
    /// This node's certificate (`tallyctl certs node`), `CN=node-<id>`, naming its address.
    pub cert: Option<PathBuf>,
    /// This node's private key.
    pub key: Option<PathBuf>,
    /// Plain text, no authentication: every caller holds every role. For experiments only.
    pub insecure: bool,
}

/// Who holds which roles (see docs/SECURITY.md).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Identity (client certificate common name or token name) -> role names.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Token name -> SHA-256 of the token, 64 hex digits (`tallyctl certs token-hash`).
    pub tokens: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// This node's id in the cluster (1 or more).
    pub id: u64,
    /// Address the gRPC server listens on, e.g. 127.0.0.1:7100.
    pub listen: String,
    /// Address other nodes and clients use to reach this node; defaults to `listen`.
    pub advertise: Option<String>,
    /// Data directory (RocksDB and snapshot files).
    pub data: PathBuf,
    /// Log filter, e.g. `info` or `tally_node=debug`.
    pub log: String,
    /// `text` (for people) or `json` (one object per line, for log collectors).
    pub log_format: String,
    /// Where `GET /metrics` (Prometheus text) is served, IP:PORT; empty: no metrics endpoint.
    pub metrics_listen: String,
    /// Below this much free space in the data directory the leader refuses writes (reads go on),
    /// so the log and state never hit a full disk mid-write. 0 turns the check off.
    pub disk_free_min_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSection {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind the snapshot (for followers that are slightly behind).
    pub entries_kept_behind_snapshot: u64,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            id: 0,
            listen: String::new(),
            advertise: None,
            data: PathBuf::new(),
            log: "info,openraft=error".into(),
            log_format: "text".into(),
            metrics_listen: String::new(),
            disk_free_min_bytes: crate::limits::DISK_FREE_MIN_BYTES_DEFAULT,
        }
    }
}

impl Default for RaftSection {
    fn default() -> Self {
        let settings = RaftSettings::default();
        RaftSection {
            heartbeat_interval_ms: settings.heartbeat_interval_ms,
            election_timeout_min_ms: settings.election_timeout_min_ms,
            election_timeout_max_ms: settings.election_timeout_max_ms,
            snapshot_every_entries: settings.snapshot_every_entries,
            entries_kept_behind_snapshot: settings.entries_kept_behind_snapshot,
        }
    }
}

/// Prefix of environment overrides: `TALLY__NODE__ID=2`, `TALLY__RAFT__HEARTBEAT_INTERVAL_MS=50`.
pub const ENV_PREFIX: &str = "TALLY__";

impl NodeConfig {
    /// Reads the file (if any), then applies `TALLY__…` variables from `env`.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<NodeConfig, String> {
        Self::load_with_flags(file, env, Figment::new())
    }

    /// Reads the file (if any), then `TALLY__…` variables from `env`, then `flags` (the flags
    /// given, each a [`flag`]), and deserializes the merged result once.
    pub fn load_with_flags(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        flags: impl Provider,
    ) -> Result<NodeConfig, String> {
        let mut layers = Figment::new();
        if let Some(path) = file {
            layers = layers.merge(Layer::file(path)?);
        }
        layers
            .merge(Layer::environment(env)?)
            .merge(flags)
            .extract()
            .map_err(|error| format!("configuration: {error}"))
    }

    pub fn advertise(&self) -> String {
        self.node
            .advertise
            .clone()
            .unwrap_or_else(|| self.node.listen.clone())
    }

    pub fn raft_settings(&self) -> RaftSettings {
        RaftSettings {
            heartbeat_interval_ms: self.raft.heartbeat_interval_ms,
            election_timeout_min_ms: self.raft.election_timeout_min_ms,
            election_timeout_max_ms: self.raft.election_timeout_max_ms,
            snapshot_every_entries: self.raft.snapshot_every_entries,
            entries_kept_behind_snapshot: self.raft.entries_kept_behind_snapshot,
            disk_free_min_bytes: self.node.disk_free_min_bytes,
        }
    }

    /// The access rules from `[auth]`; an `--insecure` node checks nothing.
    pub fn auth_policy(&self) -> Result<crate::grpc::auth::AuthPolicy, Vec<String>> {
        let policy = crate::grpc::auth::AuthPolicy::new(&self.auth.roles, &self.auth.tokens)?;
        if self.tls.insecure {
            Ok(crate::grpc::auth::AuthPolicy::disabled())
        } else {
            Ok(policy)
        }
    }

    /// Checks every rule and reports all violations at once, one line each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.node.id == 0 {
            problems.push("node.id must be set to 1 or more (--id, TALLY__NODE__ID)".to_string());
        }
        if self.node.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "node.listen {:?} is not an IP:PORT address (--listen, TALLY__NODE__LISTEN)",
                self.node.listen
            ));
        }
        if let Some(advertise) = &self.node.advertise {
            if !advertise.contains(':') {
                problems.push(format!("node.advertise {advertise:?} is not HOST:PORT"));
            }
        }
        if !matches!(self.node.log_format.as_str(), "text" | "json") {
            problems.push(format!(
                "node.log_format {:?} must be `text` or `json` (--log-format)",
                self.node.log_format
            ));
        }
        if !self.node.metrics_listen.is_empty() {
            match self.node.metrics_listen.parse::<SocketAddr>() {
                Ok(metrics) if Some(metrics) == self.node.listen.parse().ok() => problems.push(
                    format!("node.metrics_listen {metrics} is the gRPC address; use another port"),
                ),
                Ok(_) => {}
                Err(_) => problems.push(format!(
                    "node.metrics_listen {:?} is not an IP:PORT address (--metrics-listen)",
                    self.node.metrics_listen
                )),
            }
        }
        if self.node.data.as_os_str().is_empty() {
            problems
                .push("node.data must name a directory (--data, TALLY__NODE__DATA)".to_string());
        }
        let raft = &self.raft;
        if raft.heartbeat_interval_ms == 0 {
            problems.push("raft.heartbeat_interval_ms must be positive".to_string());
        }
        if raft.election_timeout_min_ms <= raft.heartbeat_interval_ms {
            problems.push(format!(
                "raft.election_timeout_min_ms ({}) must exceed raft.heartbeat_interval_ms ({})",
                raft.election_timeout_min_ms, raft.heartbeat_interval_ms
            ));
        }
        if raft.election_timeout_max_ms <= raft.election_timeout_min_ms {
            problems.push(format!(
                "raft.election_timeout_max_ms ({}) must exceed raft.election_timeout_min_ms ({})",
                raft.election_timeout_max_ms, raft.election_timeout_min_ms
            ));
        }
        if raft.snapshot_every_entries == 0 {
            problems.push("raft.snapshot_every_entries must be positive".to_string());
        }
        if !self.tls.insecure {
            for (name, value) in [
                ("ca", &self.tls.ca),
                ("cert", &self.tls.cert),
                ("key", &self.tls.key),
            ] {
                if value.is_none() {
                    problems.push(format!(
                        "tls.{name} must name a PEM file (--{name}, TALLY__TLS__{}), or run with \
                         --insecure for plain text without authentication",
                        name.to_ascii_uppercase()
                    ));
                }
            }
        }
        if let Err(auth_problems) = self.auth_policy() {
            problems.extend(auth_problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The setting of one command-line flag, e.g. `flag("node.id", args.id)`, to merge over the file
/// and the environment; nothing when the flag was not given.
pub fn flag<T: Serialize>(key: &str, value: Option<T>) -> Figment {
    match value {
        Some(value) => Figment::from(Serialized::default(key, value)),
        None => Figment::new(),
    }
}

/// One layer of settings, by section, named in figment's errors: `… for key "node.id" in config
/// file node.toml`.
struct Layer<T> {
    name: String,
    settings: T,
}

impl Layer<toml::Table> {
    fn file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read config file {}: {error}", path.display()))?;
        let settings = text
            .parse::<toml::Table>()
            .map_err(|error| format!("config file {}: {error}", path.display()))?;
        let name = format!("config file {}", path.display());
        Ok(Layer { name, settings })
    }
}

impl Layer<BTreeMap<String, toml::Table>> {
    /// The `TALLY__SECTION__KEY` variables of `env`.
    fn environment(env: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut settings = BTreeMap::<String, toml::Table>::new();
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = path
                .split("__")
                .map(|part| part.to_ascii_lowercase())
                .collect();
            let [section, key] = parts.as_slice() else {
                return Err(format!(
                    "environment variable {name}: expected {ENV_PREFIX}SECTION__KEY"
                ));
            };
            settings
                .entry(section.clone())
                .or_default()
                .insert(key.clone(), env_value(value));
        }
        let name = format!("environment variables {ENV_PREFIX}*");
        Ok(Layer { name, settings })
    }
}

impl<T: Serialize> Provider for Layer<T> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone()).interpolater(|_, keys| keys.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::defaults(&self.settings).data()
    }
}

/// Environment values are typed the way TOML would read them: integers, booleans, else strings.
fn env_value(text: &str) -> toml::Value {
    if let Ok(integer) = text.parse::<i64>() {
        return toml::Value::Integer(integer);
    }
    match text {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_validation_lists_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "[node]\nid = 1\nlisten = \"127.0.0.1:7100\"\ndata = \"/tmp/x\"\n\
             [tls]\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n.key\"\n\
             [auth.roles]\nops = [\"admin\", \"ledger.read\"]\n",
        )
        .unwrap();
        let env = BTreeMap::from([("TALLY__NODE__ID".to_string(), "3".to_string())]);
        let config = NodeConfig::load(Some(&file), &env).unwrap();
        assert_eq!(config.node.id, 3);
        assert!(config.validate().is_ok());

        let broken = NodeConfig::default();
        let problems = broken.validate().unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("--insecure")),
            "{problems:?}"
        );
        let insecure = NodeConfig {
            tls: TlsSection {
                insecure: true,
                ..TlsSection::default()
            },
            ..NodeConfig::default()
        };
        assert_eq!(insecure.validate().unwrap_err().len(), 3);
    }

    #[test]
    fn auth_section_is_validated() {
        let env = BTreeMap::from([
            ("TALLY__NODE__ID".to_string(), "1".to_string()),
            ("TALLY__NODE__LISTEN".to_string(), "127.0.0.1:1".to_string()),
            ("TALLY__NODE__DATA".to_string(), "/tmp/x".to_string()),
            ("TALLY__TLS__INSECURE".to_string(), "true".to_string()),
        ]);
        let mut config = NodeConfig::load(None, &env).unwrap();
        assert!(config.validate().is_ok());
        config
            .auth
            .roles
            .insert("ops".into(), vec!["superuser".into()]);
        let problems = config.validate().unwrap_err();
        assert!(problems[0].contains("superuser"), "{problems:?}");
    }

    /// `config/tally-node.example.toml` names every setting, holds each default (but for the
    /// settings that have none), and loads and validates as it is.
    #[test]
    fn example_file_lists_every_setting_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tally-node.example.toml");
        let config = NodeConfig::load(Some(&path), &BTreeMap::new()).unwrap();
        config.validate().unwrap();
        let example: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let defaults = toml::Table::try_from(NodeConfig::default()).unwrap();
        let required = [
            "node.id",
            "node.listen",
            "node.data",
            "tls.ca",
            "tls.cert",
            "tls.key",
        ];
        for (section, values) in &defaults {
            for (key, default) in values.as_table().unwrap() {
                let name = format!("{section}.{key}");
                let given = example
                    .get(section)
                    .and_then(|values| values.get(key))
                    .unwrap_or_else(|| panic!("{name} is missing from {}", path.display()));
                if !required.contains(&name.as_str()) {
                    assert_eq!(given, default, "{name} in {}", path.display());
                }
            }
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let env = BTreeMap::from([("TALLY__NODE__COLOUR".to_string(), "red".to_string())]);
        let error = NodeConfig::load(None, &env).unwrap_err();
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "[node]\nid = 1\nlisten = \"127.0.0.1:7100\"\nlog = \"warn\"\n",
        )
        .unwrap();
        let env = BTreeMap::from([
            (
                "TALLY__NODE__LISTEN".to_string(),
                "127.0.0.1:7200".to_string(),
            ),
            ("TALLY__NODE__LOG".to_string(), "debug".to_string()),
        ]);
        let flags = flag("node.log", Some("trace"))
            .merge(flag("node.advertise", None::<String>))
            .merge(flag("tls.insecure", Some(true)));
        let config = NodeConfig::load_with_flags(Some(&file), &env, flags).unwrap();
        assert_eq!(config.node.id, 1);
        assert_eq!(config.node.listen, "127.0.0.1:7200");
        assert_eq!(config.node.log, "trace");
        assert_eq!(config.node.advertise, None);
        assert!(config.tls.insecure);
    }

    #[test]
    fn load_errors_name_the_file_the_variable_or_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let no_env = BTreeMap::new();
        let missing = dir.path().join("missing.toml");
        let error = NodeConfig::load(Some(&missing), &no_env).unwrap_err();
        assert!(error.starts_with("cannot read config file"), "{error}");
        let broken = dir.path().join("broken.toml");
        std::fs::write(&broken, "[node\n").unwrap();
        let error = NodeConfig::load(Some(&broken), &no_env).unwrap_err();
        assert!(error.starts_with("config file"), "{error}");
        let unknown = dir.path().join("unknown.toml");
        std::fs::write(&unknown, "[raft]\nheartbeat_ms = 5\n").unwrap();
        let error = NodeConfig::load(Some(&unknown), &no_env).unwrap_err();
        assert!(error.starts_with("configuration:"), "{error}");
        assert!(error.contains("heartbeat_ms"), "{error}");
        assert!(error.contains("unknown.toml"), "{error}");

        let shapeless = BTreeMap::from([("TALLY__NODE".to_string(), "1".to_string())]);
        let error = NodeConfig::load(None, &shapeless).unwrap_err();
        assert_eq!(
            error,
            "environment variable TALLY__NODE: expected TALLY__SECTION__KEY"
        );
        let mistyped = BTreeMap::from([("TALLY__NODE__ID".to_string(), "one".to_string())]);
        let error = NodeConfig::load(None, &mistyped).unwrap_err();
        assert!(error.starts_with("configuration:"), "{error}");
        assert!(error.contains("node.id"), "{error}");
        assert!(error.contains("TALLY__"), "{error}");
    }
}
