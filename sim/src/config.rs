//! What one seed runs: the fault mix and rates it draws, and the planted bug, if any.

use std::fmt;
use std::str::FromStr;

use crate::rng::SimRng;

/// A deliberate bug, compiled into the node only with its `planted-bugs` feature (which this
/// crate enables) and switched on only here, to prove that the checks can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Plant {
    /// The log store reports appended entries durable before the sync.
    AckBeforeSync,
    /// A repeated transfer id is applied again.
    SkipIdempotency,
    /// `debits_must_not_exceed_credits` is not enforced.
    SkipBalanceCheck,
    /// Reads skip the read index and are served by any replica.
    StaleRead,
    /// The vote is not persisted.
    ForgetVote,
}

impl Plant {
    pub const ALL: [Plant; 5] = [
        Plant::AckBeforeSync,
        Plant::SkipIdempotency,
        Plant::SkipBalanceCheck,
        Plant::StaleRead,
        Plant::ForgetVote,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Plant::AckBeforeSync => "ack-before-sync",
            Plant::SkipIdempotency => "skip-idempotency",
            Plant::SkipBalanceCheck => "skip-balance-check",
            Plant::StaleRead => "stale-read",
            Plant::ForgetVote => "forget-vote",
        }
    }
}

impl fmt::Display for Plant {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for Plant {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Plant::ALL
            .into_iter()
            .find(|plant| plant.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Plant::ALL.iter().map(|plant| plant.name()).collect();
                format!("unknown bug {text:?}; one of: {}", names.join(", "))
            })
    }
}

/// The seed's fault mix and rates.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    pub replicas: u64,
    pub clients: u64,
    /// How long faults are injected, in simulated ms.
    pub fault_phase_ms: u64,
    pub loss_permille: u64,
    pub duplicate_permille: u64,
    /// Chance of a long delay, which reorders messages.
    pub slow_permille: u64,
    pub delay_max_ms: u64,
    /// Chance that a disk sync is slow (5-30 ms instead of 0-3 ms).
    pub slow_sync_permille: u64,
    pub crashes: bool,
    /// Crash every replica at once (power loss of the whole cluster).
    pub power_loss: bool,
    pub torn_writes: bool,
    pub partitions: bool,
    pub pauses: bool,
    pub membership: bool,
    /// Milliseconds between two faults, on average.
    pub fault_interval_ms: u64,
}

impl FaultConfig {
    pub fn draw(rng: &mut SimRng) -> FaultConfig {
        FaultConfig {
            replicas: if rng.chance(250) { 5 } else { 3 },
            clients: rng.between(3, 10),
            fault_phase_ms: rng.between(2_000, 6_000),
            loss_permille: rng.pick(&[0, 0, 5, 20, 60]),
            duplicate_permille: rng.pick(&[0, 10, 50]),
            slow_permille: rng.pick(&[0, 20, 100]),
            delay_max_ms: rng.pick(&[20, 60, 150]),
            slow_sync_permille: rng.pick(&[20, 100, 300]),
            crashes: rng.chance(700),
            power_loss: rng.chance(500),
            torn_writes: rng.chance(600),
            partitions: rng.chance(700),
            pauses: rng.chance(400),
            membership: rng.chance(400),
            fault_interval_ms: rng.between(100, 600),
        }
    }

    pub fn describe(&self) -> String {
        let mut kinds = Vec::new();
        for (on, name) in [
            (self.crashes, "crash"),
            (self.power_loss, "power-loss"),
            (self.torn_writes, "torn"),
            (self.partitions, "partition"),
            (self.pauses, "pause"),
            (self.membership, "membership"),
        ] {
            if on {
                kinds.push(name);
            }
        }
        format!(
            "replicas={} clients={} fault_ms={} loss={}‰ dup={}‰ slow={}‰/{}ms faults=[{}]",
            self.replicas,
            self.clients,
            self.fault_phase_ms,
            self.loss_permille,
            self.duplicate_permille,
            self.slow_permille,
            self.delay_max_ms,
            kinds.join(",")
        )
    }
}
