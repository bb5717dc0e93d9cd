//! Command-line grammar of `tallyctl` (clap derive) and the parsers of its values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tally_client::{AccountFlags, Secret};

/// The addresses `tally-node dev` listens on.
pub const DEFAULT_CLUSTER: &str = "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102";

const MAIN_EXAMPLES: &str = "\
Examples:
  tallyctl cluster init --nodes 1=127.0.0.1:7100,2=127.0.0.1:7101,3=127.0.0.1:7102
  tallyctl status
  tallyctl account create --id 1 --ledger 840 --code 10
  tallyctl transfer create --id 100 --debit 1 --credit 2 --amount 500 --ledger 840 --code 1
  tallyctl --json account get 1 2
  tallyctl verify
  tallyctl bench --accounts 1000 --transfers 100000 --clients 8 --batch 100

Exit codes: 0 success, 1 failure or rejected request, 2 cluster or node unreachable.";

/// Admin CLI for a Tally cluster.
#[derive(Debug, Parser)]
#[command(name = "tallyctl", version, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    /// Cluster node addresses, comma separated
    #[arg(
        long,
        global = true,
        env = "TALLY_CLUSTER",
        default_value = DEFAULT_CLUSTER,
        value_name = "HOST:PORT[,HOST:PORT...]",
        value_delimiter = ','
    )]
    pub cluster: Vec<String>,

    /// Machine-readable JSON output (u128 values as decimal strings)
    #[arg(long, global = true)]
    pub json: bool,

    /// Cluster CA certificate (PEM): the nodes' certificates must chain to it
    #[arg(long, global = true, env = "TALLY_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Client certificate (PEM, from `tallyctl certs client`); its name maps to roles on the nodes
    #[arg(long, global = true, env = "TALLY_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// The client certificate's private key (PEM)
    #[arg(long, global = true, env = "TALLY_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Bearer token instead of a client certificate (its SHA-256 is in the nodes' [auth.tokens])
    #[arg(long, global = true, env = "TALLY_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub token: Option<Secret>,

    /// Plain text, for a cluster started with --insecure
    #[arg(
        long,
        global = true,
        env = "TALLY_INSECURE",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub insecure: bool,

    /// Seconds one command may take, retries and waits included (give it before the command)
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_seconds)]
    pub timeout: f64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bootstrap the cluster, change its membership, show its status
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Show every node's Raft status (same as `cluster status`)
    Status,
    /// Create and inspect accounts
    #[command(subcommand)]
    Account(AccountCommand),
    /// Create and inspect transfers
    #[command(subcommand)]
    Transfer(TransferCommand),
    /// Check that all nodes hold identical state and every ledger balances
    #[command(after_help = VERIFY_HELP)]
    Verify,
    /// Load-test the cluster with random transfers
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Read records (the key-value space tally-pay keeps its payment objects in)
    #[command(subcommand)]
    Record(RecordCommand),
    /// List tally-pay's dead letters: payments, refunds and payouts whose retries ran out
    #[command(after_help = DEAD_LETTERS_HELP)]
    DeadLetters,
    /// Create the cluster CA and issue node and client certificates (no cluster needed)
    #[command(subcommand, after_help = CERTS_HELP)]
    Certs(CertsCommand),
    /// Take an online, consistent backup of the cluster's state into a new directory
    #[command(after_help = BACKUP_HELP)]
    Backup {
        /// The directory to create (it must not exist, or be empty)
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Page through the audit trail, newest first: who did what, when and from where
    #[command(after_help = AUDIT_HELP)]
    Audit {
        /// At most this many entries
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Start after this entry id (the last id of the previous page)
        #[arg(long, value_name = "ENTRY_ID")]
        after: Option<String>,
        /// Only entries whose action starts with this, e.g. `payout.` or `cluster.`
        #[arg(long, value_name = "PREFIX")]
        action: Option<String>,
    },
    /// Show tally-pay's reconciliation of a day: the summary and every item it recorded
    #[command(after_help = RECON_HELP)]
    Recon {
        /// The UTC day, YYYY-MM-DD
        #[arg(value_parser = parse_day)]
        date: String,
    },
}

const CERTS_HELP: &str = "\
Example (a 3-node cluster on one machine):
  tallyctl certs init --dir certs
  tallyctl certs node --dir certs --id 1 --addr 127.0.0.1:7100
  tallyctl certs client --dir certs --name ops
  tally-node serve --id 1 ... --ca certs/ca.pem --cert certs/node-1.pem --key certs/node-1.key
  export TALLY_CA=certs/ca.pem TALLY_CERT=certs/client-ops.pem TALLY_KEY=certs/client-ops.key
Give the client's name roles in each node's config:  [auth.roles]  ops = [\"admin\", \"ledger.read\"]";

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a new cluster CA: DIR/ca.pem and DIR/ca.key (keep ca.key offline)
    Init {
        /// Directory of the CA and the certificates it issues
        #[arg(long, env = "TALLY_CERTS_DIR", default_value = "certs")]
        dir: PathBuf,
        /// The CA's common name
        #[arg(long, default_value = "Tally cluster CA")]
        name: String,
        /// Days the CA is valid
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue a node certificate: DIR/node-ID.pem and DIR/node-ID.key
    Node {
        #[arg(long, env = "TALLY_CERTS_DIR", default_value = "certs")]
        dir: PathBuf,
        /// The node's id
        #[arg(long)]
        id: u64,
        /// Address(es) peers and clients reach the node at; their hosts go into the certificate
        #[arg(long, required = true, value_name = "HOST:PORT", value_delimiter = ',')]
        addr: Vec<String>,
        /// Days the certificate is valid
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Issue a client certificate: DIR/client-NAME.pem and DIR/client-NAME.key
    Client {
        #[arg(long, env = "TALLY_CERTS_DIR", default_value = "certs")]
        dir: PathBuf,
        /// The identity's name (the certificate's common name), e.g. ops or tally-pay
        #[arg(long)]
        name: String,
        /// Days the certificate is valid
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Print the SHA-256 of the token given with --token / TALLY_TOKEN, for a node's [auth.tokens]
    TokenHash,
}

const BACKUP_HELP: &str = "\
The leader writes its applied state as one snapshot file (the format Raft snapshots use, with its
own crc32) and streams it here, while it keeps serving. DIR gets state.snapshot and
MANIFEST.json: applied_index, applied_term, the state digest (the one `tallyctl verify`
prints) and each file's size and SHA-256. Needs the admin role.

Restore into a new cluster (every node from the same backup, then init):
  tally-node restore --from DIR --data /var/lib/tally/node
  tallyctl cluster init --nodes 1=...,2=...,3=...
  tallyctl verify                      # the digest is the manifest's until the first write

Example:
  tallyctl backup --to /backups/tally-$(date -u +%F)";

const AUDIT_HELP: &str = "\
Reads the `audit` records straight from the cluster (it needs the ledger.read role), so it works
with tally-pay down; it changes nothing. Entries come from tally-pay (payments, refunds, payouts,
bank accounts, API keys, billing, reconciliation, dead-letter retries; the actor is the API key
id or `system:worker`) and from the nodes (membership changes; the actor is `grpc:IDENTITY`).
Each entry is written in the same commit as its action, or before a membership change starts.

Examples:
  tallyctl audit --limit 20
  tallyctl audit --action cluster. --json
  tallyctl audit --after aud_0008234...     (the next page)";

const RECON_HELP: &str = "\
Reads the `pay.recon_run` and `pay.recon_item` records straight from the cluster, so it works
with tally-pay down; it changes nothing. To run a reconciliation, ask tally-pay:
  tally-pay recon --date 2025-03-07     or     curl -X POST .../v1/reconciliations -d '{\"date\": ...}'

Exit codes: 0 nothing needs attention, 1 findings are queued for review, a ledger check failed,
or the day was never reconciled.";

/// A secret flag value, kept out of `Debug`.
fn parse_secret(text: &str) -> Result<Secret, String> {
    Ok(Secret::new(text))
}

/// A `YYYY-MM-DD` day (checked for shape and a plausible month and day).
pub fn parse_day(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |part: &str, digits: usize| {
        (part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    match parts.as_slice() {
        [year, month, day] => match (number(year, 4), number(month, 2), number(day, 2)) {
            (Some(_), Some(1..=12), Some(1..=31)) => Ok(text.to_string()),
            _ => Err(format!("{text:?} is not a YYYY-MM-DD date")),
        },
        _ => Err(format!("{text:?} is not a YYYY-MM-DD date")),
    }
}

const DEAD_LETTERS_HELP: &str = "\
Reads the `pay.dead_letter` records straight from the cluster, so it works with tally-pay down.
Each entry's money stays held in the ledger until it is settled. To retry one, ask tally-pay:
  curl -X POST http://127.0.0.1:8080/v1/dead_letters/ID/retry";

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Print one record: its version, timestamp and value
    #[command(after_help = "Example:\n  tallyctl record get pay.payout po_0123456789abcdef")]
    Get {
        /// Namespace, e.g. pay.order
        namespace: String,
        /// Key (UTF-8)
        key: String,
    },
    /// List the records of a namespace whose key starts with --prefix, in key order
    #[command(after_help = "Example:\n  tallyctl record scan pay.inflight --limit 20")]
    Scan {
        /// Namespace, e.g. pay.order
        namespace: String,
        /// Only keys starting with this
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many records
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

const VERIFY_HELP: &str = "\
Proposes a checkpoint through Raft, waits until every voter and learner has applied it, then
compares the nodes' state digests and checks that debits equal credits on every ledger.

Exit codes: 0 all nodes agree, 1 a mismatch was found, 2 a node could not be reached or did not
catch up before --timeout.";

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Initialize a new cluster with these voters; waits until a leader is elected
    #[command(after_help = "Example:\n  tallyctl cluster init --nodes \
                            1=127.0.0.1:7100,2=127.0.0.1:7101,3=127.0.0.1:7102")]
    Init {
        /// Voters as ID=HOST:PORT, comma separated; the first one receives the request
        #[arg(long, required = true, value_delimiter = ',', value_parser = parse_node_spec)]
        nodes: Vec<NodeSpec>,
    },
    /// Add a node: as learner, then promote it to voter
    #[command(after_help = "Example:\n  tallyctl cluster add-node --id 4 --addr 127.0.0.1:7103")]
    AddNode {
        /// The new node's id (as in its config)
        #[arg(long)]
        id: u64,
        /// The new node's gRPC address
        #[arg(long, value_name = "HOST:PORT")]
        addr: String,
        /// Stop after adding the learner; do not promote it to voter
        #[arg(long)]
        learner_only: bool,
    },
    /// Remove a node (voter or learner) from the cluster
    #[command(after_help = "Example:\n  tallyctl cluster remove-node --id 4")]
    RemoveNode {
        /// The node's id
        #[arg(long)]
        id: u64,
    },
    /// Show every node's Raft status, including voters and learners found through the others
    Status,
    /// Hand leadership to another voter (before maintenance of the leader's machine)
    #[command(after_help = "Example:\n  tallyctl cluster transfer-leader 2")]
    TransferLeader {
        /// The voter that should lead
        id: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create one account; prints the result (`ok`, `exists`, or why it was refused)
    #[command(
        after_help = "Example:\n  tallyctl account create --id 1 --ledger 840 --code 10 \
                            --flags debits_must_not_exceed_credits,history"
    )]
    Create(AccountCreateArgs),
    /// Show accounts with their balances
    #[command(after_help = "Example:\n  tallyctl account get 1 2 3")]
    Get {
        /// Account ids (decimal or 0x hex)
        #[arg(required = true, value_parser = parse_u128)]
        ids: Vec<u128>,
    },
    /// List an account's transfers (oldest first unless --reversed)
    Transfers(AccountPageArgs),
    /// Show the balance history of an account created with the `history` flag
    Balances(AccountPageArgs),
}

#[derive(Debug, Args)]
pub struct AccountCreateArgs {
    /// Account id (non-zero; decimal or 0x hex)
    #[arg(long, value_parser = parse_u128)]
    pub id: u128,
    /// Ledger (currency / asset) number
    #[arg(long)]
    pub ledger: u32,
    /// Account type code
    #[arg(long)]
    pub code: u16,
    /// Flags, comma separated: linked, debits_must_not_exceed_credits,
    /// credits_must_not_exceed_debits, history, closed
    #[arg(long, value_parser = parse_account_flags, default_value = "")]
    pub flags: AccountFlags,
    #[command(flatten)]
    pub user_data: UserDataArgs,
}

#[derive(Debug, Args)]
pub struct UserDataArgs {
    /// Opaque 128-bit user data (e.g. a reference to an external entity)
    #[arg(long, value_parser = parse_u128, default_value = "0")]
    pub user_data_128: u128,
    /// Opaque 64-bit user data
    #[arg(long, default_value_t = 0)]
    pub user_data_64: u64,
    /// Opaque 32-bit user data
    #[arg(long, default_value_t = 0)]
    pub user_data_32: u32,
}

#[derive(Debug, Args)]
pub struct AccountPageArgs {
    /// Account id
    #[arg(value_parser = parse_u128)]
    pub id: u128,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// At most this many rows (0 = the server's page maximum)
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    /// Newest first
    #[arg(long)]
    pub reversed: bool,
}

#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// Create one transfer (plain, pending, post or void); prints the result
    #[command(after_help = TRANSFER_CREATE_EXAMPLES)]
    Create(Box<TransferCreateArgs>),
    /// Show transfers by id
    Get {
        /// Transfer ids (decimal or 0x hex)
        #[arg(required = true, value_parser = parse_u128)]
        ids: Vec<u128>,
    },
    /// List an account's transfers (same as `account transfers`)
    List {
        /// Account id
        #[arg(long, value_parser = parse_u128)]
        account: u128,
        #[command(flatten)]
        page: PageArgs,
    },
}

const TRANSFER_CREATE_EXAMPLES: &str = "\
Examples:
  tallyctl transfer create --id 100 --debit 1 --credit 2 --amount 500 --ledger 840 --code 1
  tallyctl transfer create --id 101 --debit 1 --credit 2 --amount 500 --ledger 840 --code 1 \\
      --pending --timeout 3600
  tallyctl transfer create --id 102 --post 101                # capture the full amount
  tallyctl transfer create --id 103 --post 101 --amount 200   # capture part of it
  tallyctl transfer create --id 104 --void 101

A post or void may leave out --debit, --credit, --ledger and --code: they are taken from the
pending transfer.";

#[derive(Debug, Args)]
pub struct TransferCreateArgs {
    /// Transfer id (non-zero; decimal or 0x hex); retrying with the same id is safe
    #[arg(long, value_parser = parse_u128)]
    pub id: u128,
    /// Account to debit
    #[arg(long, value_parser = parse_u128, required_unless_present_any = ["post", "void"])]
    pub debit: Option<u128>,
    /// Account to credit
    #[arg(long, value_parser = parse_u128, required_unless_present_any = ["post", "void"])]
    pub credit: Option<u128>,
    /// Amount in minor units; for --post defaults to the full pending amount
    #[arg(long, value_parser = parse_u128, required_unless_present_any = ["post", "void"])]
    pub amount: Option<u128>,
    /// Ledger (currency / asset) number
    #[arg(long, required_unless_present_any = ["post", "void"])]
    pub ledger: Option<u32>,
    /// Transfer type code
    #[arg(long, required_unless_present_any = ["post", "void"])]
    pub code: Option<u16>,
    /// Reserve the amount (two-phase transfer); post or void it later
    #[arg(long)]
    pub pending: bool,
    /// Seconds after which the pending transfer expires (0 = never)
    #[arg(long, value_name = "SECONDS", requires = "pending")]
    pub timeout: Option<u32>,
    /// Post (capture) this pending transfer
    #[arg(long, value_name = "PENDING_ID", value_parser = parse_u128, conflicts_with_all = ["void", "pending"])]
    pub post: Option<u128>,
    /// Void (release) this pending transfer
    #[arg(long, value_name = "PENDING_ID", value_parser = parse_u128, conflicts_with_all = ["post", "pending"])]
    pub void: Option<u128>,
    /// Link to the next transfer of the batch (only useful from the library; a single linked
    /// transfer fails with linked_event_chain_open)
    #[arg(long)]
    pub linked: bool,
    /// Transfer at most --amount, as much as the debit account allows
    #[arg(long)]
    pub balancing_debit: bool,
    /// Transfer at most --amount, as much as the credit account allows
    #[arg(long)]
    pub balancing_credit: bool,
    #[command(flatten)]
    pub user_data: UserDataArgs,
}

const BENCH_EXAMPLES: &str = "\
Examples:
  tallyctl bench --accounts 1000 --transfers 100000 --clients 8 --batch 100
  tallyctl bench --accounts 100 --transfers 20000 --clients 4 --batch 1 --rate 2000
  tallyctl --json bench --accounts 10 --transfers 10000 --clients 16 --batch 50 --hot

Each run uses fresh account and transfer ids (a random base, printed), so runs never collide.
Latency is per request; with --rate it is measured from the time the request was due, so a
cluster that falls behind shows it (no coordinated omission).";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Number of accounts to create (at least 2)
    #[arg(long, default_value_t = 1000)]
    pub accounts: u64,
    /// Number of transfers to send
    #[arg(long, default_value_t = 100_000)]
    pub transfers: u64,
    /// Concurrent client tasks
    #[arg(long, default_value_t = 8)]
    pub clients: u32,
    /// Transfers per request
    #[arg(long, default_value_t = 100)]
    pub batch: u32,
    /// Half of the transfers touch the first account (contention)
    #[arg(long)]
    pub hot: bool,
    /// Ledger to use
    #[arg(long, default_value_t = 1)]
    pub ledger: u32,
    /// Seed of the workload's randomness (default: from the clock)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Offered load in transfers per second, total (open loop); default: as fast as possible
    #[arg(long)]
    pub rate: Option<f64>,
}

/// One `ID=HOST:PORT` of `cluster init --nodes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub id: u64,
    pub addr: String,
}

pub fn parse_node_spec(text: &str) -> Result<NodeSpec, String> {
    let (id, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not ID=HOST:PORT (e.g. 1=127.0.0.1:7100)"))?;
    let id = id
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|id| *id != 0)
        .ok_or_else(|| format!("node id `{id}` must be a positive integer"))?;
    let addr = tally_client::NodeAddress::parse(addr).map_err(|error| error.to_string())?;
    Ok(NodeSpec {
        id,
        addr: addr.to_string(),
    })
}

/// Parses a u128 in decimal (underscores allowed) or `0x` hex.
pub fn parse_u128(text: &str) -> Result<u128, String> {
    let cleaned = text.trim().replace('_', "");
    let parsed = match cleaned
        .strip_prefix("0x")
        .or_else(|| cleaned.strip_prefix("0X"))
    {
        Some(hex) => u128::from_str_radix(hex, 16),
        None => cleaned.parse::<u128>(),
    };
    parsed.map_err(|_| {
        format!("`{text}` is not an unsigned 128-bit integer (decimal, or hex with 0x)")
    })
}

/// A comma (or `|`) separated list of account flag names (`history,closed`; empty or `none` = no
/// flag). Dashes are accepted for underscores.
fn parse_account_flags(text: &str) -> Result<AccountFlags, String> {
    let mut flags = AccountFlags::empty();
    for part in text.split([',', '|']).map(str::trim) {
        if part.is_empty() || part == "none" {
            continue;
        }
        match AccountFlags::from_names(&part.replace('-', "_")) {
            Ok(flag) => flags = flags | flag,
            Err(_) => {
                let known = AccountFlags::KNOWN.names().join(", ");
                return Err(format!("unknown flag `{part}`; known flags: {known}"));
            }
        }
    }
    Ok(flags)
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        _ => Err(format!(
            "`{text}` is not a number of seconds between 0 and 86400"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tallyctl").chain(args.iter().copied()))
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn recon_takes_a_day() {
        assert!(matches!(
            parse(&["recon", "2025-03-07"]).unwrap().command,
            Command::Recon { date } if date == "2025-03-07"
        ));
        for bad in [
            "2025-3-07",
            "2025-13-01",
            "2025-03-32",
            "07-03-2025",
            "today",
        ] {
            assert!(parse(&["recon", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_u128_values() {
        assert_eq!(parse_u128("0"), Ok(0));
        assert_eq!(parse_u128("1_000"), Ok(1000));
        assert_eq!(parse_u128("0xff"), Ok(255));
        assert_eq!(
            parse_u128("340282366920938463463374607431768211455"),
            Ok(u128::MAX)
        );
        assert!(parse_u128("340282366920938463463374607431768211456").is_err());
        assert!(parse_u128("-1").is_err());
        assert!(parse_u128("").is_err());
    }

    #[test]
    fn parses_node_specs() {
        assert_eq!(
            parse_node_spec("3=http://127.0.0.1:7102"),
            Ok(NodeSpec {
                id: 3,
                addr: "127.0.0.1:7102".into()
            })
        );
        assert!(parse_node_spec("127.0.0.1:7102").is_err());
        assert!(parse_node_spec("0=127.0.0.1:7102").is_err());
        assert!(parse_node_spec("1=127.0.0.1").is_err());
    }

    #[test]
    fn global_options_and_defaults() {
        let cli = parse(&["status"]).unwrap();
        assert_eq!(cli.cluster.len(), 3);
        assert!(!cli.json);
        assert_eq!(cli.timeout, 30.0);
        let cli = parse(&[
            "--timeout",
            "2.5",
            "cluster",
            "status",
            "--json",
            "--cluster",
            "a:1,b:2",
        ])
        .unwrap();
        assert_eq!(cli.cluster, vec!["a:1", "b:2"]);
        assert!(cli.json);
        assert_eq!(cli.timeout, 2.5);
        assert!(parse(&["--timeout", "0", "status"]).is_err());
    }

    #[test]
    fn cluster_init_needs_nodes() {
        let cli = parse(&["cluster", "init", "--nodes", "1=a:1,2=b:2"]).unwrap();
        let Command::Cluster(ClusterCommand::Init { nodes }) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(nodes.iter().map(|node| node.id).collect::<Vec<_>>(), [1, 2]);
        assert!(parse(&["cluster", "init"]).is_err());
    }

    #[test]
    fn account_create_parses_flags() {
        let cli = parse(&[
            "account",
            "create",
            "--id",
            "7",
            "--ledger",
            "840",
            "--code",
            "10",
            "--flags",
            "history,closed",
            "--user-data-128",
            "0x10",
        ])
        .unwrap();
        let Command::Account(AccountCommand::Create(args)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(
            (args.id, args.ledger, args.code, args.flags),
            (7, 840, 10, AccountFlags(8 | 16))
        );
        assert_eq!(args.user_data.user_data_128, 16);
        let error = parse(&[
            "account", "create", "--id", "7", "--ledger", "1", "--code", "1", "--flags", "frozen",
        ])
        .unwrap_err();
        assert!(error.to_string().contains("unknown flag"), "{error}");
    }

    #[test]
    fn transfer_create_requires_accounts_unless_post_or_void() {
        assert!(parse(&["transfer", "create", "--id", "1", "--amount", "5"]).is_err());
        assert!(parse(&["transfer", "create", "--id", "2", "--post", "1"]).is_ok());
        assert!(parse(&["transfer", "create", "--id", "2", "--void", "1"]).is_ok());
        assert!(parse(&["transfer", "create", "--id", "2", "--post", "1", "--void", "1"]).is_err());
        assert!(parse(&[
            "transfer",
            "create",
            "--id",
            "2",
            "--post",
            "1",
            "--pending"
        ])
        .is_err());
        let plain = [
            "transfer", "create", "--id", "1", "--debit", "1", "--credit", "2", "--amount", "5",
            "--ledger", "1", "--code", "1",
        ];
        assert!(parse(&plain).is_ok());
        let mut with_timeout = plain.to_vec();
        with_timeout.extend(["--timeout", "60"]);
        assert!(parse(&with_timeout).is_err(), "--timeout needs --pending");
        with_timeout.push("--pending");
        let cli = parse(&with_timeout).unwrap();
        assert_eq!(
            cli.timeout, 30.0,
            "the pending timeout is not the command timeout"
        );
    }
}
