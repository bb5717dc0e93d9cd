//! The gateway's view of a dispute (chargeback) a PSP opened on one of our charges, as its
//! webhooks and its answers carry it. No serde form: each connector converts its own wire struct.

/// Where a dispute stands at the PSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisputeStatus {
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

/// A dispute (chargeback) the PSP opened on one of our charges: it took `amount` and `fee`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    /// The PSP's dispute id (`dp_...`).
    pub psp_id: String,
    /// Our reference of the disputed charge (the payment order id).
    pub charge_reference: String,
    pub amount: u64,
    pub currency: String,
    /// The PSP's dispute fee.
    pub fee: u64,
    pub reason: String,
    pub status: DisputeStatus,
    pub created: i64,
}
