//! The ledger postings of one object (a payment order, refund or payout): the transfers whose
//! ids derive from the object's id and each [`Leg`], read by id, so no scan is needed.

use serde::Serialize;

use super::{time_of, EntryStatus};
use crate::domain::chart::{account_name, kind_name, transfer_id};
use crate::domain::postings::Leg;
use crate::error::PayError;
use crate::flows::Pay;

/// One ledger transfer of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectPosting {
    /// The ledger transfer id (32 hex digits).
    pub id: String,
    /// The leg of the object's flow it records (`hold`, `post`, `fee`, …).
    pub leg: &'static str,
    /// What the transfer is for (`payin`, `fee`, `refund`, …).
    pub kind: String,
    pub debit_account: String,
    pub credit_account: String,
    /// Minor units.
    pub amount: u128,
    pub status: EntryStatus,
    /// RFC 3339.
    pub time: String,
}

impl Pay {
    /// Every ledger transfer of `object_id` that exists, in the order of the legs.
    pub async fn object_postings(&self, object_id: &str) -> Result<Vec<ObjectPosting>, PayError> {
        let ids: Vec<u128> = Leg::ALL
            .iter()
            .map(|leg| transfer_id(object_id, leg.as_str()))
            .collect();
        let transfers = self.store.client().lookup_transfers(&ids).await?;
        Ok(Leg::ALL
            .iter()
            .zip(&ids)
            .filter_map(|(leg, id)| {
                let transfer = transfers.iter().find(|t| t.id == *id)?;
                Some(ObjectPosting {
                    id: format!("{id:032x}"),
                    leg: leg.as_str(),
                    kind: kind_name(u32::from(transfer.code)),
                    debit_account: account_name(transfer.debit_account_id),
                    credit_account: account_name(transfer.credit_account_id),
                    amount: transfer.amount,
                    status: EntryStatus::of(transfer.flags),
                    time: time_of(transfer.timestamp),
                })
            })
            .collect())
    }
}
