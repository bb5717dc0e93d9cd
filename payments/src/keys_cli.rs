//! `tally-pay keys …`: API keys managed straight in the cluster, for bootstrap (the first secret
//! key cannot come from the API, which needs a key). Audit entries name the actor `system:cli`.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use tally_payments::edges::auth::keys::{self, CreatedKey, NewKey};
use tally_payments::edges::auth::{KeyKind, Scope};
use tally_payments::edges::store::Store;
use tally_payments::error::PayError;
use tally_payments::flows::audit::Actor;

/// The cluster when neither `--cluster` nor `TALLY_CLUSTER` is given.
const DEFAULT_CLUSTER: &str = "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102";

#[derive(clap::Args)]
pub struct KeysArgs {
    /// Ledger cluster nodes [default: TALLY_PAY__PAY__CLUSTER, else the local dev cluster].
    #[arg(
        long,
        global = true,
        env = "TALLY_CLUSTER",
        value_name = "HOST:PORT[,...]"
    )]
    cluster: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// How long to keep trying while the cluster is unavailable, in seconds.
    #[arg(long, global = true, default_value_t = 30)]
    wait_s: u64,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print its secret, once.
    Create {
        #[arg(long)]
        name: String,
        /// secret (every scope), publishable (none of tally-pay's routes) or restricted.
        #[arg(long, default_value = "secret")]
        kind: String,
        /// Scopes of a restricted key, comma-separated (e.g. payments:write,refunds:write).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// List keys: prefix and last 4 characters only.
    List,
    /// Revoke a key at once.
    Revoke { id: String },
    /// Replace a key; the old one keeps working for the grace period.
    Rotate {
        id: String,
        #[arg(long, default_value_t = keys::GRACE_PERIOD_S_DEFAULT)]
        grace_period_s: u64,
    },
    /// Re-encrypt stored bank account numbers under the current data key
    /// (TALLY_PAY__PAY__ENCRYPTION_KEY), reading the old ones from
    /// TALLY_PAY__PAY__PREVIOUS_ENCRYPTION_KEYS. Bounded pages; run again to resume.
    RotateDataKey {
        /// TOML configuration file (as for `serve`).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        /// Records per page.
        #[arg(long, default_value_t = 100)]
        page: u32,
    },
}

pub fn run(runtime: &tokio::runtime::Runtime, args: KeysArgs) -> anyhow::Result<()> {
    let cluster = args
        .cluster
        .clone()
        .or_else(|| std::env::var("TALLY_PAY__PAY__CLUSTER").ok())
        .unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
    let addrs: Vec<String> = cluster
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    anyhow::ensure!(
        !addrs.is_empty(),
        "--cluster must name at least one HOST:PORT"
    );
    runtime.block_on(async {
        let mut options = tally_client::ClientOptions::default();
        tally_client::Credentials::from_env()
            .apply(&mut options)
            .map_err(|error| anyhow::anyhow!("the ledger cluster's {error}"))?;
        let client = tally_client::Client::connect(addrs, options)
            .await
            .with_context(|| format!("connecting to the ledger cluster {cluster}"))?;
        let store = Store::new(client);
        let deadline = Instant::now() + Duration::from_secs(args.wait_s);
        loop {
            match once(&store, &args).await {
                Err(PayError::Unavailable(reason)) if Instant::now() < deadline => {
                    tracing::warn!(%reason, "waiting for the ledger cluster");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => anyhow::bail!("{error}"),
                Ok(()) => return Ok(()),
            }
        }
    })
}

async fn once(store: &Store, args: &KeysArgs) -> Result<(), PayError> {
    let actor = Actor::system("cli");
    match &args.command {
        KeysCommand::Create { name, kind, scopes } => {
            let kind = KeyKind::parse(kind).ok_or_else(|| {
                PayError::invalid(
                    "invalid_kind",
                    "--kind must be secret, publishable or restricted",
                )
            })?;
            let scopes = scopes
                .iter()
                .map(|s| {
                    Scope::parse(s.trim()).ok_or_else(|| {
                        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
                        PayError::invalid(
                            "invalid_scope",
                            format!("unknown scope; the scopes are {}", known.join(", ")),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let request = NewKey {
                name: name.clone(),
                kind,
                scopes,
            };
            print_created(
                &keys::create(store, request, None, &actor).await?,
                args.json,
            );
        }
        KeysCommand::List => {
            let all = keys::list(store).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&all).expect("JSON"));
            } else {
                for key in all {
                    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.name()).collect();
                    let kind = format!("{:?}", key.kind).to_lowercase();
                    println!(
                        "{}  {:<9} {:<11} {}  {}  {}",
                        key.id,
                        key.status,
                        kind,
                        key.redacted,
                        key.name,
                        scopes.join(",")
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => {
            let key = keys::revoke(store, id, &actor).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&key).expect("JSON"));
            } else {
                println!("{} revoked", key.id);
            }
        }
        KeysCommand::Rotate { id, grace_period_s } => {
            let created = keys::rotate(store, id, *grace_period_s, &actor).await?;
            print_created(&created, args.json);
        }
        KeysCommand::RotateDataKey { config, page } => {
            let sealer = data_sealer(config.as_deref())?;
            let report = tally_payments::flows::audit::acting_as(
                actor,
                tally_payments::flows::rekey::rekey_bank_accounts(store, &sealer, *page),
            )
            .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
            } else {
                println!(
                    "scanned {}, re-encrypted {}, changed meanwhile {} (run again), unreadable {}",
                    report.scanned,
                    report.reencrypted,
                    report.raced,
                    report.unreadable.len()
                );
            }
        }
    }
    Ok(())
}

/// The data keys of the configuration: the current one seals, all of them open.
fn data_sealer(file: Option<&std::path::Path>) -> Result<tally_payments::crypto::Sealer, PayError> {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let invalid = |message: String| PayError::invalid("invalid_configuration", message);
    let config = tally_payments::config::PayConfig::load(file, &env).map_err(invalid)?;
    let keys = config.data_keys().map_err(invalid)?;
    let keyring: Vec<(&str, &[u8; 32])> = keys.iter().map(|k| (k.id.as_str(), &k.bytes)).collect();
    Ok(tally_payments::crypto::Sealer::with_keys(&keyring))
}

fn print_created(created: &CreatedKey, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(created).expect("JSON"));
    } else {
        println!("id:     {}", created.key.id);
        println!("kind:   {:?}", created.key.kind);
        println!("secret: {}", created.secret);
        println!("(the secret is shown only now: store it)");
    }
}
