//! The node's part of the audit trail: membership changes are recorded as records
//! in the `audit` namespace, the same trail `tally-pay` writes its actions to, so `tallyctl audit`
//! and `GET /v1/audit` show one history. The entry is committed *before* the action is started (an
//! action whose entry cannot be written is refused), so no membership change can happen without
//! its entry; the entry's action says what was requested.

use serde::Serialize;
use tonic::{Request, Status};

use super::auth::Caller;
use crate::clock::{Clock, SystemClock};
use crate::ledger::{Command, CommandResult, Condition, RecordKey, RecordOp, Txn, TxnOutcome};
use crate::raft::RaftNode;

/// The records namespace of the audit trail (shared with `tally-pay`).
pub const AUDIT_NAMESPACE: &str = "audit";

/// One entry, in the JSON shape `tally-pay` uses for its own entries.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    id: String,
    at_ms: i64,
    actor: String,
    source: Option<String>,
    route: Option<&'a str>,
    action: &'a str,
    object_id: String,
}

/// Who is calling and from where, taken from the request before it is consumed.
#[derive(Debug, Clone)]
pub struct Origin {
    actor: String,
    source: Option<String>,
    route: &'static str,
}

impl Origin {
    pub fn of<T>(request: &Request<T>, route: &'static str) -> Origin {
        let actor = request
            .extensions()
            .get::<Caller>()
            .map(|caller| format!("grpc:{}", caller.name))
            .unwrap_or_else(|| "unknown".into());
        Origin {
            actor,
            source: request.remote_addr().map(|addr| addr.to_string()),
            route,
        }
    }
}

/// Entry ids sort newest first: the time subtracted from a constant, then bits that keep two
/// entries of one millisecond apart (the same layout `tally-pay` uses).
fn entry_id(now_ns: u64, node_id: u64) -> (String, i64) {
    const LATEST_MS: i64 = 9_999_999_999_999;
    let at_ms = i64::try_from(now_ns / 1_000_000).unwrap_or(LATEST_MS);
    let inverted = LATEST_MS.saturating_sub(at_ms).max(0);
    let spread = (now_ns as u32).wrapping_mul(2_654_435_761) ^ (node_id as u32).rotate_left(24);
    (format!("aud_{inverted:013}{spread:08x}"), at_ms)
}

/// Commits the audit entry of `action` on `object_id`; fails (and the caller must not act) when
/// it cannot be written.
pub async fn record(
    node: &RaftNode,
    origin: &Origin,
    action: &str,
    object_id: String,
) -> Result<(), Status> {
    let (id, at_ms) = entry_id(SystemClock.now_ns(), node.id());
    let entry = Entry {
        id: id.clone(),
        at_ms,
        actor: origin.actor.clone(),
        source: origin.source.clone(),
        route: Some(origin.route),
        action,
        object_id,
    };
    let value = serde_json::to_vec(&entry)
        .map_err(|error| Status::internal(format!("encoding the audit entry: {error}")))?;
    let key = RecordKey::new(AUDIT_NAMESPACE, id.into_bytes());
    let txn = Txn {
        conditions: vec![Condition::Absent { key: key.clone() }],
        record_ops: vec![RecordOp::Put { key, value }],
        accounts: Vec::new(),
        transfers: Vec::new(),
    };
    let refused = |why: String| {
        Status::unavailable(format!(
            "the audit entry for {action} could not be written, so nothing was changed: {why}"
        ))
    };
    match node.submit(Command::Txn(txn)).await {
        Ok(CommandResult::Txn(result)) if result.outcome == TxnOutcome::Committed => Ok(()),
        Ok(other) => Err(refused(format!("{other:?}"))),
        Err(error) => Err(refused(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_newest_first_and_differ_within_a_millisecond() {
        let (older, older_ms) = entry_id(1_000_000_000, 1);
        let (newer, newer_ms) = entry_id(2_000_000_000, 1);
        assert_eq!((older_ms, newer_ms), (1_000, 2_000));
        assert!(newer < older, "{newer} must sort before {older}");
        let (a, _) = entry_id(2_000_000_001, 1);
        let (b, _) = entry_id(2_000_000_002, 1);
        assert_ne!(a, b);
        assert_eq!(a.len(), "aud_".len() + 21);
    }
}
