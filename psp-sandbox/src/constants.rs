//! Every limit of the sandbox PSP, in one place.

use std::time::Duration;

/// Largest request body accepted (a charge is about 200 bytes; an adjustment list is the
/// largest body).
pub const REQUEST_BODY_SIZE_MAX: usize = 256 * 1024;
/// Largest amount in minor units (a billion in a two-decimal currency).
pub const AMOUNT_MAX: u64 = 100_000_000_000;
/// Longest reference, idempotency key or token.
pub const REFERENCE_LENGTH_MAX: usize = 255;
pub const DESCRIPTION_LENGTH_MAX: usize = 1000;
pub const HOLDER_NAME_LENGTH_MAX: usize = 200;
/// Most objects of each kind (tokens, charges, refunds, payouts) kept in memory.
pub const OBJECTS_MAX: usize = 1_000_000;
/// Most idempotency keys kept at once.
pub const IDEMPOTENCY_KEYS_MAX: usize = 1_000_000;
pub const IDEMPOTENCY_KEY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
pub const ADJUSTMENTS_MAX: usize = 10_000;
/// What the PSP charges for every dispute opened on a charge, in minor units of the charge's
/// currency, kept whatever the outcome.
pub const DISPUTE_FEE: u64 = 1500;
/// Longest text of one evidence field of a dispute.
pub const EVIDENCE_TEXT_LENGTH_MAX: usize = 5000;
/// Longest fault spec accepted by `POST /_sandbox/faults`.
pub const FAULT_SPEC_LENGTH_MAX: usize = 1024;

/// Longest `payout_delay` a configuration may set.
pub const PAYOUT_DELAY_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest `three_ds_timeout` a configuration may set: a challenge abandoned this long fails.
pub const THREE_DS_TIMEOUT_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// Delivery attempts per webhook event, with exponential backoff from the initial value.
pub const WEBHOOK_ATTEMPTS_MAX: u32 = 6;
pub const WEBHOOK_BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Timeout of one delivery attempt.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries (including waits between attempts) in progress at once; more are dropped.
pub const WEBHOOK_DELIVERIES_IN_FLIGHT_MAX: usize = 4096;
/// How long a reordered webhook is held back.
pub const WEBHOOK_REORDER_DELAY: Duration = Duration::from_secs(1);

const _: () = assert!(REFERENCE_LENGTH_MAX + DESCRIPTION_LENGTH_MAX < REQUEST_BODY_SIZE_MAX);
const _: () = assert!(FAULT_SPEC_LENGTH_MAX < REQUEST_BODY_SIZE_MAX);
const _: () = assert!(3 * EVIDENCE_TEXT_LENGTH_MAX < REQUEST_BODY_SIZE_MAX);
const _: () = assert!(DISPUTE_FEE < AMOUNT_MAX);
const _: () = assert!(IDEMPOTENCY_KEY_RETENTION.as_secs() <= i64::MAX as u64);
// The sum of a charge's refunds is checked against its amount with u64 arithmetic.
const _: () = assert!(AMOUNT_MAX < u64::MAX / 2);
