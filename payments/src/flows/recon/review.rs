//! Working through the review queue: a person resolves a finding, with a note. The item is
//! marked resolved and leaves the queue in one `Txn`, conditioned on the queue entry's version,
//! with the audit entry naming who resolved it.

use crate::domain::model::ns;
use crate::domain::recon::{ReconItem, Resolution};
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::{audit, check_text, describe_commit, Pay};

impl Pay {
    /// Resolves the review item `key` (`<day>/<reference>`) with `note` (what was done about it).
    pub async fn resolve_review(&self, key: &str, note: &str) -> Result<ReconItem, PayError> {
        // Refuses an empty note too: the trail should say what was done.
        check_text("note", note)?;
        let entry = self
            .load::<ReconItem>(ns::REVIEW, key, "review item")
            .await?;
        let mut item = entry.value;
        let actor = audit::current();
        item.resolution = Resolution::Resolved;
        item.detail = format!("{}; resolved by {}: {}", item.detail, actor.id, note.trim());
        let txn = audit::stamp(Txn::new(), "recon.review.resolve", key)
            .require_version(ns::REVIEW, key, entry.version)
            .delete(ns::REVIEW, key)
            .put(ns::RECON_ITEM, key, &item);
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(item),
            Commit::ConditionFailed { .. } => Err(PayError::Conflict {
                code: "review_changed",
                message: "the review item changed or was resolved meanwhile; reload it".into(),
            }),
            other => Err(PayError::Internal(format!(
                "ledger refused resolving a review item: {}",
                describe_commit(&other)
            ))),
        }
    }
}
