//! Client-side batching, as TigerBeetle's clients do it: concurrent `create_transfers` calls made
//! through one [`Client`](crate::Client) are packed into one request, sent as soon as the
//! previous one is answered (so a lone caller waits for nobody), and each caller gets back its
//! own result codes, in order. Many tasks that each send one transfer (an application server)
//! then cost the cluster a few large requests instead of many small ones.
//!
//! Semantics do not change: every caller's transfers stay contiguous and in order, so a linked
//! chain is never split; a batch that ends in an open chain is sent last in its request, so it
//! cannot run into another caller's transfers. A request the cluster rejects as a whole (a
//! malformed field) is retried caller by caller, so one bad batch fails only its own caller.

use std::sync::Weak;

use tally_ledger::{CreateTransferResult, Transfer, TransferFlags};
use tokio::sync::{mpsc, oneshot};

use crate::ClientError;

/// Events in one packed request at most (the node takes up to 8192 per request).
pub const PACKED_EVENTS_MAX: usize = 8000;
/// Callers waiting to be packed, at most; more wait to enqueue.
const QUEUE_CAPACITY: usize = 4096;

pub(crate) struct Pending {
    transfers: Vec<Transfer>,
    reply: oneshot::Sender<Result<Vec<CreateTransferResult>, ClientError>>,
}

pub(crate) type Queue = mpsc::Sender<Pending>;

/// True when `transfers` may be packed with others: it is not empty and fits one request. (The
/// ledger's types leave no field the node could refuse for the whole request.) A batch that is not
/// packable is sent alone.
pub(crate) fn packable(transfers: &[Transfer]) -> bool {
    !transfers.is_empty() && transfers.len() <= PACKED_EVENTS_MAX
}

/// Starts the packing task of a client; it ends when the client is dropped.
pub(crate) fn start(client: Weak<crate::client::Inner>) -> Queue {
    let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
    tokio::spawn(run(client, receiver));
    sender
}

/// Sends `transfers` through the packing task and waits for its own results.
pub(crate) async fn submit(
    queue: &Queue,
    transfers: Vec<Transfer>,
) -> Result<Vec<CreateTransferResult>, ClientError> {
    let (reply, answer) = oneshot::channel();
    let gone = || ClientError::InvalidReply("the client's batching task stopped".into());
    queue
        .send(Pending { transfers, reply })
        .await
        .map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

fn ends_in_open_chain(transfers: &[Transfer]) -> bool {
    transfers
        .last()
        .is_some_and(|last| last.flags.contains(TransferFlags::LINKED))
}

async fn run(client: Weak<crate::client::Inner>, mut queue: mpsc::Receiver<Pending>) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match queue.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let mut events = first.transfers.len();
        let mut group = vec![first];
        while !ends_in_open_chain(&group[group.len() - 1].transfers) {
            let Ok(next) = queue.try_recv() else { break };
            if events + next.transfers.len() > PACKED_EVENTS_MAX {
                carried = Some(next);
                break;
            }
            events += next.transfers.len();
            group.push(next);
        }
        let Some(inner) = client.upgrade() else {
            return;
        };
        let client = crate::Client::from_inner(inner);
        send_group(&client, group).await;
    }
}

async fn send_group(client: &crate::Client, group: Vec<Pending>) {
    let all: Vec<Transfer> = group
        .iter()
        .flat_map(|pending| pending.transfers.iter().cloned())
        .collect();
    match client.send_transfers(all).await {
        Ok(results) => {
            let mut results = results.into_iter();
            for pending in group {
                let own: Vec<CreateTransferResult> =
                    results.by_ref().take(pending.transfers.len()).collect();
                let _ = pending.reply.send(Ok(own));
            }
        }
        // One caller's malformed batch must not fail the others: each on its own.
        Err(ClientError::Rejected { .. }) if group.len() > 1 => {
            for pending in group {
                let own = client.send_transfers(pending.transfers).await;
                let _ = pending.reply.send(own);
            }
        }
        Err(error) => {
            for pending in group {
                let _ = pending.reply.send(Err(error.clone()));
            }
        }
    }
}
