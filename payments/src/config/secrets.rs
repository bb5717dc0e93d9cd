//! Secrets: the data keys that encrypt bank account numbers at rest (`KEY_ID:BASE64`), and the
//! public development secrets that dev mode fills in when none is given.

use super::PayConfig;

/// Dev mode only (`pay.dev = true`, `--dev`): the data key, PSP key and webhook secret used when
/// none is configured. Outside dev mode a missing secret stops start-up.
pub const DEV_ENCRYPTION_KEY: &str = "dev:dGFsbHktZGV2LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=";
pub const DEV_PSP_API_KEY: &str = "sk_test_tally";
pub const DEV_WEBHOOK_SECRET: &str = "whsec_tally_dev";
/// Bytes of a data key (AES-256).
pub const DATA_KEY_BYTES: usize = 32;

/// A data key and its id (`KEY_ID:BASE64`); `Debug` shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey {
    pub id: String,
    pub bytes: [u8; DATA_KEY_BYTES],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({}, ****)", self.id)
    }
}

impl DataKey {
    /// Parses `KEY_ID:BASE64`; `setting` names where it came from in the error (which never
    /// includes the key).
    pub fn parse(setting: &str, text: &str) -> Result<DataKey, String> {
        use base64::Engine;
        let Some((id, encoded)) = text.split_once(':') else {
            return Err(format!(
                "{setting} must be `KEY_ID:BASE64` (a key id, a colon, then base64 of {DATA_KEY_BYTES} random bytes)"
            ));
        };
        let id_ok = (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(format!(
                "{setting}: the key id must be 1 to 32 letters, digits, `-` or `_`"
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| format!("{setting}: the key after `{id}:` is not base64"))?;
        let bytes: [u8; DATA_KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "{setting}: key {id} is {} bytes; it must be exactly {DATA_KEY_BYTES} random bytes",
                b.len()
            )
        })?;
        Ok(DataKey {
            id: id.to_string(),
            bytes,
        })
    }
}

impl PayConfig {
    /// The data key: `pay.encryption_key`, else the file `pay.encryption_key_file`, else (dev mode
    /// only) the development key.
    pub fn encryption_key(&self) -> Result<DataKey, String> {
        let text = if !self.pay.encryption_key.is_empty() {
            self.pay.encryption_key.clone()
        } else if !self.pay.encryption_key_file.is_empty() {
            std::fs::read_to_string(&self.pay.encryption_key_file).map_err(|error| {
                format!(
                    "pay.encryption_key_file {}: {error}",
                    self.pay.encryption_key_file
                )
            })?
        } else if self.pay.dev {
            DEV_ENCRYPTION_KEY.to_string()
        } else {
            return Err(
                "pay.encryption_key is not set: give TALLY_PAY__PAY__ENCRYPTION_KEY or \
                        pay.encryption_key_file (`KEY_ID:BASE64` of 32 random bytes, e.g. \
                        `k1:$(openssl rand -base64 32)`), or run in dev mode (--dev)"
                    .into(),
            );
        };
        DataKey::parse("pay.encryption_key", text.trim())
    }

    /// Every data key that may decrypt stored values: the current one first.
    pub fn data_keys(&self) -> Result<Vec<DataKey>, String> {
        let mut keys = vec![self.encryption_key()?];
        for text in &self.pay.previous_encryption_keys {
            keys.push(DataKey::parse("pay.previous_encryption_keys", text.trim())?);
        }
        Ok(keys)
    }

    /// In dev mode, fills the secrets that were not given with the public development ones.
    pub fn apply_dev_defaults(&mut self) {
        if !self.pay.dev {
            return;
        }
        if self.psp.api_key.is_empty() {
            self.psp.api_key = DEV_PSP_API_KEY.into();
        }
        if self.psp.webhook_secret.is_empty() {
            self.psp.webhook_secret = DEV_WEBHOOK_SECRET.into();
        }
    }
}

/// A valid data key for tests (32 bytes, 0 to 31).
#[cfg(test)]
pub(crate) const TEST_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_dev_mode_every_secret_must_be_given_and_none_is_shown() {
        let problems = PayConfig::default().validate().unwrap_err();
        for setting in ["pay.encryption_key", "psp.webhook_secret", "psp.api_key"] {
            assert!(
                problems.iter().any(|p| p.starts_with(setting)),
                "{setting}: {problems:?}"
            );
        }
        let mut config = PayConfig::default();
        config.pay.encryption_key = "k1:c2hvcnQ=".into();
        let problem = config.encryption_key().unwrap_err();
        assert!(problem.contains("5 bytes"), "{problem}");
        assert!(!problem.contains("c2hvcnQ"), "{problem}");
        config.pay.encryption_key = TEST_KEY.into();
        config.psp.api_key = "sk_live_secret".into();
        let key = config.encryption_key().unwrap();
        assert_eq!(key.id, "k1");
        let shown = format!("{config:?} {key:?}");
        assert!(
            !shown.contains("AAECAw") && !shown.contains("sk_live_secret"),
            "{shown}"
        );
    }
}
