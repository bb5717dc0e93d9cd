//! Network partitions between real processes. Three `tally-node`s run in network namespaces of
//! their own (`ip netns exec`), each wired by a veth pair to one bridge in a fourth, "hub",
//! namespace. The test's own threads (its tokio runtime, and the `tallyctl`s it starts) live in
//! the hub, so the test reaches every node at its namespace's IP whatever is cut between the
//! nodes, and nothing it sends can leave the machine (the hub has no route but the bridge).
//! Links between nodes are cut with nftables drop rules inside the nodes' namespaces, matching the
//! other nodes' addresses only, so client traffic (from the hub's address) always gets through.
//!
//! On one cluster, in turn: (a) the leader is isolated, (b) a follower is split off as the
//! minority, (c) a one-way cut: the leader's calls to a follower are lost while the follower's
//! calls to the leader get through. Writers keep sending transfers through `tally-client` before,
//! during and after each cut. While (a) and (b) last, a probe sends writes and linearizable reads
//! straight to the cut-off node (no redirects followed): none may succeed. After each heal: every
//! acknowledged transfer is there as sent, none of the probe's writes is, the balances are exactly
//! the sums of the transfers that exist (acknowledged or not), and all three nodes' digests agree.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables, which `scripts/install-deps` installs);
//! without them the test prints why and skips, unless `TALLY_REQUIRE_NETNS=1` makes that a
//! failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tally_client::{
    AccountBuilder, Balances, Client, ClientOptions, CreateAccountResult, CreateTransferResult,
    Transfer, TransferBuilder,
};
use tally_proto::v1;
use tally_proto::v1::ledger_client::LedgerClient;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::harness::{eventually, output_text, Placement, TestCerts, TestCluster};
use crate::netns::{enter, ip_of, Cut, Network, NODES, PORT};

const LEDGER: u32 = 3;
const ACCOUNTS: u128 = 6;
const WRITERS: u128 = 4;
const TRANSFERS_PER_BATCH: u128 = 4;
/// Ids of the probe's writes to a cut-off node; the writers' ids are below.
const PROBE_IDS: u128 = 900_000_000;
/// How long each phase may take to reach a condition (far more than it needs).
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);
/// One attempt of the probe against the cut-off node.
const PROBE_ATTEMPT: Duration = Duration::from_secs(1);

fn addr_of(id: u64) -> String {
    format!("{}:{PORT}", ip_of(id))
}

// --- The test ---------------------------------------------------------------------------------

#[test]
fn partitions_lose_no_acknowledged_transfer_and_the_cut_off_side_acknowledges_nothing() {
    let network = match Network::create() {
        Ok(network) => network,
        Err(reason) => {
            assert!(
                std::env::var("TALLY_REQUIRE_NETNS").as_deref() != Ok("1"),
                "TALLY_REQUIRE_NETNS=1, but the partition test cannot run: {reason}"
            );
            // Straight to stderr: the test harness would swallow `eprintln!` of a passing test.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipping partition test: {reason}");
            return;
        }
    };
    // The client side runs on a thread of its own in the hub, as does every runtime thread; the
    // namespaces outlive the thread (and with it the cluster, whose drop kills the nodes).
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("partition-client".into())
            .spawn_scoped(scope, || {
                let hub = network.hub_path();
                enter(&hub);
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .on_thread_start(move || enter(&hub))
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(scenarios(&network));
            })
            .expect("spawn the client thread")
            .join()
    });
    drop(network);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenarios(network: &Network) {
    let launch = |id: u64| Placement {
        addr: addr_of(id),
        launcher: network.launcher(id),
    };
    let placements: Vec<Placement> = (1..=NODES).map(launch).collect();
    let cluster = &TestCluster::start_placed(&placements, &[]).await;
    let _logs = LogsOnPanic(cluster);
    let accounts = (1..=ACCOUNTS)
        .map(|id| AccountBuilder::new(id, LEDGER, 1).build())
        .collect();
    let results = cluster
        .client
        .create_accounts(accounts)
        .await
        .expect("create accounts");
    assert!(
        results.iter().all(|r| *r == CreateAccountResult::Ok),
        "{results:?}"
    );

    let mut history = History::default();

    // (a) The leader is cut off from both followers: they elect a new leader and go on; the old
    // one, still answering the test, acknowledges nothing.
    let leader = cluster.leader().await;
    let majority: Vec<u64> = (1..=NODES).filter(|id| *id != leader).collect();
    run_phase(
        cluster,
        network,
        &mut history,
        Phase {
            name: "(a) leader isolated",
            cut: Cut::Isolate(leader),
            probe: Some(leader),
        },
        |_| async {
            let new_leader = cluster.agreed_leader(&majority).await?;
            // The old leader has noticed it lost its majority (or stepped down).
            let old = cluster.status(leader).await?;
            (new_leader != leader && !(old.role == "leader" && old.has_quorum)).then_some(())
        },
    )
    .await;

    // (b) A follower is split off as the minority; the majority holds the leader.
    let leader = cluster.leader().await;
    let follower = (1..=NODES).find(|id| *id != leader).unwrap();
    let majority: &Vec<u64> = &(1..=NODES).filter(|id| *id != follower).collect();
    run_phase(
        cluster,
        network,
        &mut history,
        Phase {
            name: "(b) minority follower split off",
            cut: Cut::Isolate(follower),
            probe: Some(follower),
        },
        |terms_at_cut| async move {
            cluster.agreed_leader(majority).await?;
            // The minority has timed out and campaigned, in vain, at least once.
            let status = cluster.status(follower).await?;
            (status.term > terms_at_cut[&follower]).then_some(())
        },
    )
    .await;

    // (c) One way: the leader's calls to a follower are lost, the follower's calls to the leader
    // arrive. The cluster goes on taking writes.
    let leader = cluster.leader().await;
    let follower = (1..=NODES).find(|id| *id != leader).unwrap();
    run_phase(
        cluster,
        network,
        &mut history,
        Phase {
            name: "(c) one-way cut",
            cut: Cut::OneWay {
                from: leader,
                to: follower,
            },
            probe: None,
        },
        |terms_at_cut| async move {
            // The follower, hearing nothing from the leader, has campaigned at least once.
            let status = cluster.status(follower).await?;
            (status.term > terms_at_cut[&follower]).then_some(())
        },
    )
    .await;

    let verify = cluster.tallyctl(&["verify"]);
    assert!(
        verify.status.success(),
        "tallyctl verify after healing:\n{}",
        output_text(&verify)
    );
}

/// On a panic, prints the end of each node's log (the cluster's directory goes with it).
struct LogsOnPanic<'a>(&'a TestCluster);

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for node in &self.0.nodes {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- node {} log (last lines) ---\n{}",
                node.id,
                tail.join("\n")
            );
        }
    }
}

struct Phase {
    name: &'static str,
    cut: Cut,
    /// The cut-off node the probe sends writes and reads to while the cut lasts.
    probe: Option<u64>,
}

/// Everything sent so far: the writers' transfers (acknowledged or not) and the probe's writes.
#[derive(Default)]
struct History {
    sent: Vec<Sent>,
    probed: Vec<u128>,
    /// The next phase's first writer id block.
    phases: u128,
}

struct Sent {
    transfer: Transfer,
    /// `Some(result)` when the cluster answered with a result for it, `None` when the call failed
    /// (its outcome unknown).
    result: Option<CreateTransferResult>,
}

/// Writers running before, through and after the cut; then the cut heals and the checks run.
async fn run_phase<F, Fut>(
    cluster: &TestCluster,
    network: &Network,
    history: &mut History,
    phase: Phase,
    cut_took_effect: F,
) where
    F: Fn(BTreeMap<u64, u64>) -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let started = std::time::Instant::now();
    let writers = Writers::start(cluster, history.phases);
    history.phases += 1;
    writers
        .wait_for_acks(20, "before the cut", phase.name)
        .await;

    let mut terms_at_cut = BTreeMap::new();
    for node in &cluster.nodes {
        let status = cluster
            .status(node.id)
            .await
            .expect("status before the cut");
        terms_at_cut.insert(node.id, status.term);
    }
    network.cut(phase.cut);
    let probe = phase
        .probe
        .map(|id| Probe::start(&cluster.certs, id, history.phases));
    writers
        .wait_for_acks(40, "while cut (the majority goes on)", phase.name)
        .await;
    eventually(
        PHASE_TIMEOUT,
        &format!("{}: the cut to take effect", phase.name),
        || cut_took_effect(terms_at_cut.clone()),
    )
    .await;
    eprintln!(
        "partition: {}: cut in effect: {}",
        phase.name,
        describe(cluster).await
    );
    if let Some(probe) = probe {
        // Attempts enough to span the cut-off node's own view changing.
        eventually(
            PHASE_TIMEOUT,
            &format!("{}: the probe's attempts", phase.name),
            || async { (probe.attempts.load(Ordering::Relaxed) >= 6).then_some(()) },
        )
        .await;
        let report = probe.stop().await;
        eprintln!(
            "partition: {}: probe of node {}: {} attempts, answers {:?}",
            phase.name, report.node, report.attempts, report.failures
        );
        assert!(
            report.acknowledged_writes.is_empty(),
            "{}: cut-off node {} acknowledged writes {:?} while it could reach no majority",
            phase.name,
            report.node,
            report.acknowledged_writes
        );
        assert_eq!(
            report.answered_reads, 0,
            "{}: cut-off node {} answered linearizable reads while it could reach no majority",
            phase.name, report.node
        );
        history.probed.extend(report.sent);
    }

    network.heal();
    cluster.leader().await;
    writers.wait_for_acks(20, "after healing", phase.name).await;
    eprintln!(
        "partition: {}: healed: {}",
        phase.name,
        describe(cluster).await
    );
    history.sent.extend(writers.stop().await);
    check(cluster, history, phase.name).await;
    eprintln!(
        "partition: {} done in {:.1?}",
        phase.name,
        started.elapsed()
    );
}

/// Each node's role, term and leader, as it says.
async fn describe(cluster: &TestCluster) -> String {
    let mut parts = Vec::new();
    for node in &cluster.nodes {
        parts.push(match cluster.status(node.id).await {
            Some(status) => format!(
                "node {} {} term {} leader {} applied {}",
                node.id, status.role, status.term, status.leader_id, status.last_applied
            ),
            None => format!("node {} silent", node.id),
        });
    }
    parts.join("; ")
}

// --- Writers ----------------------------------------------------------------------------------

fn transfer(id: u128) -> Transfer {
    let debit = id % ACCOUNTS;
    let credit = (debit + 1 + (id / ACCOUNTS) % (ACCOUNTS - 1)) % ACCOUNTS;
    TransferBuilder::new(id, 1 + debit, 1 + credit, 1 + id % 89, LEDGER, 1).build()
}

/// [`transfer`] as the protocol message, for the probes' raw gRPC calls.
fn raw_transfer(id: u128) -> v1::Transfer {
    let transfer = transfer(id);
    v1::Transfer {
        id: Some(transfer.id.into()),
        debit_account_id: Some(transfer.debit_account_id.into()),
        credit_account_id: Some(transfer.credit_account_id.into()),
        amount: Some(transfer.amount.into()),
        ledger: transfer.ledger,
        code: u32::from(transfer.code),
        ..v1::Transfer::default()
    }
}

/// Tasks sending batches of new transfers through `tally-client` (each its own client, with a
/// short deadline, over all three nodes) until stopped.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<Vec<Sent>>>,
}

impl Writers {
    fn start(cluster: &TestCluster, phase: u128) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let tasks = (0..WRITERS)
            .map(|writer| {
                let first_id = 1 + (phase * WRITERS + writer) * 1_000_000;
                let mut options = ClientOptions {
                    deadline: Duration::from_secs(3),
                    request_timeout: Duration::from_secs(1),
                    ..ClientOptions::default()
                };
                cluster
                    .certs
                    .credentials("admin")
                    .apply(&mut options)
                    .expect("credentials");
                tokio::spawn(write_until_stopped(
                    cluster.addrs(),
                    options,
                    first_id,
                    stop.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        Writers { stop, acked, tasks }
    }

    /// Waits until `count` more batches were acknowledged than now.
    async fn wait_for_acks(&self, count: u64, when: &str, phase: &str) {
        let target = self.acked.load(Ordering::Relaxed) + count;
        eventually(
            PHASE_TIMEOUT,
            &format!("{phase}: {count} acknowledged batches {when}"),
            || async { (self.acked.load(Ordering::Relaxed) >= target).then_some(()) },
        )
        .await;
    }

    async fn stop(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        let mut sent = Vec::new();
        for task in self.tasks {
            sent.extend(task.await.expect("writer task"));
        }
        sent
    }
}

async fn write_until_stopped(
    addrs: Vec<String>,
    options: ClientOptions,
    first_id: u128,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> Vec<Sent> {
    let client = Client::connect(addrs, options).await.expect("client");
    let mut sent = Vec::new();
    let mut next_id = first_id;
    while !stop.load(Ordering::Relaxed) {
        let transfers: Vec<Transfer> = (next_id..next_id + TRANSFERS_PER_BATCH)
            .map(transfer)
            .collect();
        next_id += TRANSFERS_PER_BATCH;
        match client.create_transfers(transfers.clone()).await {
            Ok(results) => {
                acked.fetch_add(1, Ordering::Relaxed);
                sent.extend(
                    transfers
                        .into_iter()
                        .zip(results)
                        .map(|(transfer, result)| Sent {
                            transfer,
                            result: Some(result),
                        }),
                );
            }
            Err(_) => sent.extend(transfers.into_iter().map(|transfer| Sent {
                transfer,
                result: None,
            })),
        }
    }
    sent
}

// --- The probe of a cut-off node ----------------------------------------------------------------

/// Sends one new transfer, then a linearizable lookup, to one node directly (a raw gRPC client:
/// a redirect to the leader is an answer like any other, not followed), every 100 ms.
struct Probe {
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    task: JoinHandle<ProbeReport>,
}

struct ProbeReport {
    node: u64,
    attempts: u64,
    /// Every write sent.
    sent: Vec<u128>,
    acknowledged_writes: Vec<u128>,
    answered_reads: u64,
    /// How the attempts failed: gRPC code (or "no answer") -> count.
    failures: BTreeMap<String, u64>,
}

impl Probe {
    fn start(certs: &TestCerts, node: u64, block: u128) -> Probe {
        let (cert, key) = certs.client_cert("admin");
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(&certs.ca).expect("read CA"),
            ))
            .identity(Identity::from_pem(
                std::fs::read(cert).expect("read cert"),
                std::fs::read(key).expect("read key"),
            ));
        let channel = Endpoint::from_shared(format!("https://{}", addr_of(node)))
            .expect("endpoint")
            .tls_config(tls)
            .expect("TLS config")
            .connect_timeout(PROBE_ATTEMPT)
            .connect_lazy();
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(probe(
            LedgerClient::new(channel),
            node,
            PROBE_IDS + block * 10_000,
            stop.clone(),
            attempts.clone(),
        ));
        Probe {
            stop,
            attempts,
            task,
        }
    }

    async fn stop(self) -> ProbeReport {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("probe task")
    }
}

async fn probe(
    mut ledger: LedgerClient<Channel>,
    node: u64,
    first_id: u128,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
) -> ProbeReport {
    let mut report = ProbeReport {
        node,
        attempts: 0,
        sent: Vec::new(),
        acknowledged_writes: Vec::new(),
        answered_reads: 0,
        failures: BTreeMap::new(),
    };
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut id = first_id;
    while !stop.load(Ordering::Relaxed) {
        pace.tick().await;
        let request = v1::CreateTransfersRequest {
            transfers: vec![raw_transfer(id)],
        };
        report.sent.push(id);
        match tokio::time::timeout(PROBE_ATTEMPT, ledger.create_transfers(request)).await {
            Ok(Ok(reply)) => {
                let results = reply.into_inner().results;
                let ok = CreateTransferResult::Ok.as_u32();
                if results == [ok] || results == [CreateTransferResult::Exists.as_u32()] {
                    report.acknowledged_writes.push(id);
                } else {
                    *report
                        .failures
                        .entry(format!("write result {results:?}"))
                        .or_default() += 1;
                }
            }
            Ok(Err(status)) => {
                *report
                    .failures
                    .entry(format!("write {:?}", status.code()))
                    .or_default() += 1
            }
            Err(_) => {
                *report
                    .failures
                    .entry("write: no answer".into())
                    .or_default() += 1
            }
        }
        id += 1;
        let read = v1::LookupRequest {
            ids: vec![v1::U128::from(1u128)],
            stale_ok: false,
        };
        match tokio::time::timeout(PROBE_ATTEMPT, ledger.lookup_transfers(read)).await {
            Ok(Ok(_)) => report.answered_reads += 1,
            Ok(Err(status)) => {
                *report
                    .failures
                    .entry(format!("read {:?}", status.code()))
                    .or_default() += 1
            }
            Err(_) => *report.failures.entry("read: no answer".into()).or_default() += 1,
        }
        report.attempts += 1;
        attempts.fetch_add(1, Ordering::Relaxed);
    }
    report
}

// --- Checks after healing -----------------------------------------------------------------------

async fn lookup(cluster: &TestCluster, ids: &[u128]) -> BTreeMap<u128, Transfer> {
    let mut found = BTreeMap::new();
    for chunk in ids.chunks(500) {
        for transfer in cluster
            .client
            .lookup_transfers(chunk)
            .await
            .expect("lookup transfers")
        {
            let id = transfer.id;
            assert!(
                found.insert(id, transfer).is_none(),
                "transfer {id} returned twice"
            );
        }
    }
    found
}

fn same_transfer(sent: &Transfer, stored: &Transfer) -> bool {
    sent.debit_account_id == stored.debit_account_id
        && sent.credit_account_id == stored.credit_account_id
        && sent.amount == stored.amount
        && sent.ledger == stored.ledger
        && sent.code == stored.code
}

async fn check(cluster: &TestCluster, history: &History, phase: &str) {
    let ids: Vec<u128> = history.sent.iter().map(|sent| sent.transfer.id).collect();
    let found = lookup(cluster, &ids).await;
    let mut acknowledged = 0;
    let mut unknown = 0;
    let mut unknown_found = 0;
    for sent in &history.sent {
        let id = sent.transfer.id;
        let stored = found.get(&id);
        match sent.result {
            Some(CreateTransferResult::Ok | CreateTransferResult::Exists) => {
                acknowledged += 1;
                let stored = stored.unwrap_or_else(|| {
                    panic!("{phase}: acknowledged transfer {id} is missing after healing")
                });
                assert!(
                    same_transfer(&sent.transfer, stored),
                    "{phase}: transfer {id} differs from what was acknowledged: sent {:?}, stored {stored:?}",
                    sent.transfer
                );
            }
            Some(result) => panic!("{phase}: transfer {id} got result {result}"),
            None => {
                unknown += 1;
                if let Some(stored) = stored {
                    unknown_found += 1;
                    assert!(
                        same_transfer(&sent.transfer, stored),
                        "{phase}: transfer {id} differs from what was sent: {stored:?}"
                    );
                }
            }
        }
    }
    let probed = lookup(cluster, &history.probed).await;
    assert!(
        probed.is_empty(),
        "{phase}: writes sent only to a cut-off node exist after healing: {:?}",
        probed.keys().collect::<Vec<_>>()
    );

    // Balances are exactly the transfers that exist, each once.
    let mut expected: BTreeMap<u128, (u128, u128)> =
        (1..=ACCOUNTS).map(|id| (id, (0, 0))).collect();
    for transfer in found.values() {
        let amount = transfer.amount;
        expected
            .get_mut(&transfer.debit_account_id)
            .expect("debit account")
            .0 += amount;
        expected
            .get_mut(&transfer.credit_account_id)
            .expect("credit account")
            .1 += amount;
    }
    let account_ids: Vec<u128> = (1..=ACCOUNTS).collect();
    let actual: BTreeMap<u128, (u128, u128)> = cluster
        .client
        .lookup_accounts(&account_ids)
        .await
        .expect("lookup accounts")
        .iter()
        .map(|account| {
            let balances = Balances::of_account(account);
            (
                account.id,
                (balances.debits_posted, balances.credits_posted),
            )
        })
        .collect();
    assert_eq!(
        actual, expected,
        "{phase}: balances differ from the sum of the transfers that exist"
    );

    // Every node holds the same state, with exactly those transfers.
    cluster.wait_caught_up().await;
    let digests = cluster.digests().await;
    assert_eq!(digests.len(), NODES as usize);
    for (id, digest) in &digests {
        assert_eq!(
            digest.digest, digests[0].1.digest,
            "{phase}: node {id}'s digest differs from node {}'s",
            digests[0].0
        );
        assert_eq!(
            digest.transfers,
            found.len() as u64,
            "{phase}: node {id} holds transfers nobody sent"
        );
    }
    eprintln!(
        "partition: {phase}: {acknowledged} transfers acknowledged, all there; \
         {unknown} unknown, {unknown_found} of them applied; {} probe writes, none applied; \
         digests agree",
        history.probed.len()
    );
}
