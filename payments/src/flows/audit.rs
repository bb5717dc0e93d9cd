//! The audit trail: who did what, when and from where. Every money-moving or administrative
//! action writes one [`AuditEntry`] record in the same `Txn` as the action itself ([`stamp`]), so
//! an entry can never be missing for an action that happened, nor exist for one that did not.
//!
//! The caller travels with the request as a task-local [`Actor`] (set by the API's access layer,
//! like a tracing span), so the flows stamp their `Txn`s without every signature carrying it.
//! Work started by no request (the worker, the CLI) is stamped with a named system actor.

use std::future::Future;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::model::ns;
use crate::edges::store::{Store, Txn};
use crate::error::PayError;

/// Entries per page of `GET /v1/audit`.
pub const PAGE_LIMIT_MAX: u32 = 500;
pub const PAGE_LIMIT_DEFAULT: u32 = 100;

/// Who acts: an API key (its id, never its secret) or a system actor, and where from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `key_…` of the API key, or `system:worker`, `system:cli`.
    pub id: String,
    /// The peer address of the HTTP connection, when there is one.
    pub source: Option<String>,
    /// The route template, e.g. `POST /v1/refunds`.
    pub route: Option<String>,
}

impl Actor {
    pub fn system(name: &str) -> Actor {
        Actor {
            id: format!("system:{name}"),
            source: None,
            route: None,
        }
    }
}

tokio::task_local! {
    static ACTOR: Actor;
}

/// Runs `work` on behalf of `actor`: every [`stamp`] inside it names the actor.
pub async fn acting_as<F: Future>(actor: Actor, work: F) -> F::Output {
    ACTOR.scope(actor, work).await
}

/// The actor of the current request, or the worker when no request is being served.
pub fn current() -> Actor {
    ACTOR
        .try_with(Clone::clone)
        .unwrap_or_else(|_| Actor::system("worker"))
}

/// One audited action, as stored (namespace `audit`, shared with the nodes' membership changes) and as `GET /v1/audit` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// `aud_…`; entries sort newest first by id.
    pub id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The API key id (`key_…`), a system actor (`system:worker`, `system:cli`) or, for
    /// membership changes made on a node, the gRPC identity (`grpc:admin`).
    pub actor: String,
    /// Peer address of the request, if any.
    pub source: Option<String>,
    /// Route template of the request, if any.
    pub route: Option<String>,
    /// What happened, e.g. `payment.create`, `api_key.revoke`.
    pub action: String,
    /// The object acted on.
    pub object_id: String,
}

/// Adds the audit entry of `action` on `object_id` by the current actor to `txn`.
pub fn stamp(txn: Txn, action: &str, object_id: &str) -> Txn {
    stamp_as(txn, &current(), action, object_id)
}

/// Adds the audit entry of `action` on `object_id` by `actor` to `txn`.
pub fn stamp_as(txn: Txn, actor: &Actor, action: &str, object_id: &str) -> Txn {
    let at_ms = crate::flows::now_ms();
    let entry = AuditEntry {
        id: entry_id(at_ms),
        at_ms,
        actor: actor.id.clone(),
        source: actor.source.clone(),
        route: actor.route.clone(),
        action: action.to_string(),
        object_id: object_id.to_string(),
    };
    txn.put(ns::AUDIT, &entry.id, &entry)
}

/// Newest first: the id carries the time subtracted from a constant, then randomness so two
/// entries of one millisecond do not collide.
fn entry_id(at_ms: i64) -> String {
    const LATEST_MS: i64 = 9_999_999_999_999;
    let inverted = LATEST_MS.saturating_sub(at_ms).max(0);
    format!("aud_{inverted:013}{:08x}", rand::random::<u32>())
}

/// One page of the trail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Entries newest first, after the entry `after` (an id), at most `limit`.
pub async fn page(store: &Store, limit: u32, after: Option<&str>) -> Result<AuditPage, PayError> {
    if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
        return Err(PayError::invalid_param(
            "invalid_limit",
            "limit",
            format!("`limit` must be 1 to {PAGE_LIMIT_MAX}"),
        ));
    }
    let after = after.unwrap_or("");
    if !after.is_empty() && !is_entry_id(after) {
        return Err(PayError::invalid_param(
            "invalid_cursor",
            "after",
            "`after` must be the `next_after` of a previous page",
        ));
    }
    let rows = store
        .scan::<AuditEntry>(ns::AUDIT, "aud_", after, limit)
        .await?;
    let data: Vec<AuditEntry> = rows.into_iter().map(|(_, v)| v.value).collect();
    let next_after = (data.len() == limit as usize)
        .then(|| data.last().map(|e| e.id.clone()))
        .flatten();
    Ok(AuditPage { data, next_after })
}

fn is_entry_id(text: &str) -> bool {
    text.strip_prefix("aud_")
        .is_some_and(|rest| rest.len() == 21 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_newest_first_and_are_recognized() {
        let older = entry_id(1_000);
        let newer = entry_id(2_000);
        assert!(newer < older);
        assert!(is_entry_id(&older), "{older}");
        assert!(!is_entry_id("aud_x"));
    }

    #[tokio::test]
    async fn the_actor_is_the_request_s_or_the_worker() {
        assert_eq!(current().id, "system:worker");
        let actor = Actor {
            id: "key_00000000000000ff".into(),
            source: Some("127.0.0.1:5000".into()),
            route: Some("POST /v1/refunds".into()),
        };
        let seen = acting_as(actor.clone(), async { current() }).await;
        assert_eq!(seen, actor);
    }
}
