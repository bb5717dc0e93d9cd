//! The layers of the configuration, merged by figment: the TOML file, then
//! `TALLY_PAY__SECTION__KEY` environment variables, then the flags given; deserialized once.

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;

use super::PayConfig;

/// Prefix of environment overrides: `TALLY_PAY__PSP__URL=http://127.0.0.1:7400`.
pub const ENV_PREFIX: &str = "TALLY_PAY__";

impl PayConfig {
    /// Reads the file (if any), then applies `TALLY_PAY__…` variables from `env`.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<PayConfig, String> {
        Self::load_with_flags(file, env, Figment::new())
    }

    /// Reads the file (if any), then `TALLY_PAY__…` variables from `env`, then `flags` (the
    /// flags given, each a [`flag`]), and deserializes the merged result once.
    pub fn load_with_flags(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        flags: impl Provider,
    ) -> Result<PayConfig, String> {
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
}

/// The setting of one command-line flag, e.g. `flag("pay.listen", listen)`, to merge over the
/// file and the environment; nothing when the flag was not given.
pub fn flag<T: Serialize>(key: &str, value: Option<T>) -> Figment {
    match value {
        Some(value) => Figment::from(Serialized::default(key, value)),
        None => Figment::new(),
    }
}

/// One layer of settings, by section, named in figment's errors: `… for key "psp.url" in config
/// file tally-pay.toml`.
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
    /// The `TALLY_PAY__SECTION__KEY` variables of `env`.
    fn environment(env: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut settings = BTreeMap::<String, toml::Table>::new();
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let [section, key] = parts.as_slice() else {
                return Err(format!(
                    "environment variable {name}: expected {ENV_PREFIX}SECTION__KEY"
                ));
            };
            settings
                .entry(section.clone())
                .or_default()
                .insert(key.clone(), env_value(key, value));
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

/// Environment values are typed the way TOML would read them; list-valued keys take
/// comma-separated values.
fn env_value(key: &str, text: &str) -> toml::Value {
    if key == "retry_days" {
        return toml::Value::Array(
            text.split(',')
                .filter_map(|s| s.trim().parse::<i64>().ok())
                .map(toml::Value::Integer)
                .collect(),
        );
    }
    if matches!(
        key,
        "currencies"
            | "blocked_customers"
            | "blocked_emails"
            | "previous_encryption_keys"
            | "rates"
    ) {
        return toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        );
    }
    if key != "percent" {
        if let Ok(integer) = text.parse::<i64>() {
            return toml::Value::Integer(integer);
        }
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
    use crate::config::secrets::TEST_KEY;

    #[test]
    fn defaults_are_valid_in_dev_mode_and_env_overrides_file() {
        let mut dev = PayConfig::default();
        dev.pay.dev = true;
        dev.apply_dev_defaults();
        assert_eq!(dev.validate(), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pay.toml");
        std::fs::write(
            &file,
            "[psp]\ntimeout_ms = 100\n[fees]\npercent = \"1.5\"\n",
        )
        .unwrap();
        let env = BTreeMap::from([
            ("TALLY_PAY__PSP__TIMEOUT_MS".to_string(), "250".to_string()),
            (
                "TALLY_PAY__PAY__CURRENCIES".to_string(),
                "USD,JPY".to_string(),
            ),
            ("TALLY_PAY__FEES__PERCENT".to_string(), "3".to_string()),
            (
                "TALLY_PAY__PAY__ENCRYPTION_KEY".to_string(),
                TEST_KEY.to_string(),
            ),
            ("TALLY_PAY__PSP__API_KEY".to_string(), "sk_psp".to_string()),
            (
                "TALLY_PAY__PSP__WEBHOOK_SECRET".to_string(),
                "whsec_x".to_string(),
            ),
        ]);
        let config = PayConfig::load(Some(&file), &env).unwrap();
        assert_eq!(config.psp.timeout_ms, 250);
        assert_eq!(config.pay.currencies, vec!["USD", "JPY"]);
        assert_eq!(config.fees.percent, "3");
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let env = BTreeMap::from([("TALLY_PAY__PSP__URLL".to_string(), "x".to_string())]);
        let error = PayConfig::load(None, &env).unwrap_err();
        assert!(error.contains("urll"), "{error}");
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pay.toml");
        std::fs::write(
            &file,
            "[pay]\nlisten = \"127.0.0.1:9000\"\ncluster = \"a:1\"\ndev = true\n",
        )
        .unwrap();
        let env = BTreeMap::from([
            ("TALLY_PAY__PAY__CLUSTER".to_string(), "b:2,c:3".to_string()),
            (
                "TALLY_PAY__PSP__URL".to_string(),
                "http://127.0.0.1:1".to_string(),
            ),
        ]);
        let flags = flag("psp.url", Some("https://psp.example"))
            .merge(flag("pay.listen", None::<String>))
            .merge(flag("pay.dev", false.then_some(true)));
        let config = PayConfig::load_with_flags(Some(&file), &env, flags).unwrap();
        assert_eq!(config.pay.listen, "127.0.0.1:9000");
        assert_eq!(config.cluster_addrs(), vec!["b:2", "c:3"]);
        assert_eq!(config.psp.url, "https://psp.example");
        assert!(config.pay.dev);
    }

    #[test]
    fn load_errors_name_the_file_the_variable_or_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let error = PayConfig::load(Some(&missing), &BTreeMap::new()).unwrap_err();
        assert!(error.starts_with("cannot read config file"), "{error}");
        let shapeless = BTreeMap::from([("TALLY_PAY__PSP".to_string(), "x".to_string())]);
        let error = PayConfig::load(None, &shapeless).unwrap_err();
        assert_eq!(
            error,
            "environment variable TALLY_PAY__PSP: expected TALLY_PAY__SECTION__KEY"
        );
        let mistyped = BTreeMap::from([(
            "TALLY_PAY__WORKER__MAX_ATTEMPTS".to_string(),
            "many".to_string(),
        )]);
        let error = PayConfig::load(None, &mistyped).unwrap_err();
        assert!(error.starts_with("configuration:"), "{error}");
        assert!(error.contains("worker.max_attempts"), "{error}");
        assert!(error.contains("TALLY_PAY__"), "{error}");
    }
}
