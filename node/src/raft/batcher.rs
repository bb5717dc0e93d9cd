//! Group commit: concurrent client requests are packed into one log entry, so one append and
//! one fsync cover many transfers. While [`ENTRIES_IN_FLIGHT_MAX`] entries are uncommitted, new
//! requests queue up and the next entry takes them all (up to the per-entry limits).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::error::{map_write_error, NodeError};
use super::{LedgerRaft, Request, RequestKind, Response, Runtime};
use crate::clock::{spawn, Clock};
use crate::ledger::{Command, CommandResult};
use crate::limits::{
    ENTRIES_IN_FLIGHT_MAX, EVENTS_PER_ENTRY_MAX, REQUESTS_PER_ENTRY_MAX, REQUEST_QUEUE_MAX,
};

struct Submission {
    command: Command,
    events: usize,
    reply: oneshot::Sender<Result<CommandResult, NodeError>>,
}

#[derive(Clone)]
pub(super) struct Batcher {
    sender: mpsc::Sender<Submission>,
}

/// Events a command counts for against [`EVENTS_PER_ENTRY_MAX`].
pub(super) fn events_of(command: &Command) -> usize {
    match command {
        Command::CreateAccounts(accounts) => accounts.len().max(1),
        Command::CreateTransfers(transfers) => transfers.len().max(1),
        Command::Txn(txn) => {
            (txn.conditions.len() + txn.record_ops.len() + txn.accounts.len() + txn.transfers.len())
                .max(1)
        }
    }
}

impl Batcher {
    pub(super) fn start(raft: LedgerRaft, clock: Arc<dyn Clock>, seed: u64) -> Batcher {
        let (sender, receiver) = mpsc::channel(REQUEST_QUEUE_MAX);
        spawn(run(raft, clock, receiver, seed));
        Batcher { sender }
    }

    pub(super) async fn submit(&self, command: Command) -> Result<CommandResult, NodeError> {
        let (reply, answer) = oneshot::channel();
        let events = events_of(&command);
        self.sender
            .send(Submission {
                command,
                events,
                reply,
            })
            .await
            .map_err(|_| NodeError::Unavailable("the node is shutting down".into()))?;
        answer
            .await
            .map_err(|_| NodeError::Unavailable("the node is shutting down".into()))?
    }
}

async fn run(
    raft: LedgerRaft,
    clock: Arc<dyn Clock>,
    mut receiver: mpsc::Receiver<Submission>,
    seed: u64,
) {
    let in_flight = Arc::new(Semaphore::new(ENTRIES_IN_FLIGHT_MAX));
    let mut carried: Option<Submission> = None;
    let mut entry_number = 0u64;
    loop {
        let first = match carried.take() {
            Some(submission) => submission,
            None => match receiver.recv().await {
                Some(submission) => submission,
                None => return,
            },
        };
        // Wait for room before draining the queue: whatever arrives meanwhile joins this entry.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut events = first.events;
        let mut group = vec![first];
        while group.len() < REQUESTS_PER_ENTRY_MAX {
            let Ok(next) = receiver.try_recv() else { break };
            if events + next.events > EVENTS_PER_ENTRY_MAX {
                carried = Some(next);
                break;
            }
            events += next.events;
            group.push(next);
        }
        ::metrics::histogram!(crate::metrics::GROUP_COMMIT_BATCH).record(group.len() as f64);
        let (commands, replies): (Vec<Command>, Vec<_>) = group
            .into_iter()
            .map(|submission| (submission.command, submission.reply))
            .unzip();
        let request = Request {
            timestamp_ns: clock.now_ns(),
            kind: RequestKind::Ledger(commands),
        };
        let raft = raft.clone();
        entry_number += 1;
        let entry_seed = seed.wrapping_add(entry_number);
        spawn(Runtime::scope(entry_seed, async move {
            let outcome = raft.client_write(request).await;
            deliver(outcome, replies);
            drop(permit);
        }));
    }
}

type WriteOutcome = Result<
    openraft::raft::ClientWriteResponse<super::TypeConfig>,
    openraft::error::RaftError<
        super::TypeConfig,
        openraft::error::ClientWriteError<super::TypeConfig>,
    >,
>;

fn deliver(outcome: WriteOutcome, replies: Vec<oneshot::Sender<Result<CommandResult, NodeError>>>) {
    match outcome {
        Ok(response) => match response.data {
            Response::Ledger(results) if results.len() == replies.len() => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            other => {
                let error = NodeError::Fatal(format!(
                    "state machine answered {other:?} to a ledger entry"
                ));
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        },
        Err(error) => {
            let error = map_write_error(error);
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
