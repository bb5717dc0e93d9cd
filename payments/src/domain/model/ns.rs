//! Record namespaces. Every payment object is one record; `INFLIGHT` indexes the objects a
//! worker must drive to a terminal state (written and deleted in the same `Txn` as the object).

pub const CUSTOMER: &str = "pay.customer";
pub const SELLER: &str = "pay.seller";
pub const BANK_ACCOUNT: &str = "pay.bank_account";
pub const CARD: &str = "pay.card";
pub const PAYMENT: &str = "pay.payment";
/// Payment orders and deposits (both are one PSP charge each).
pub const ORDER: &str = "pay.order";
pub const REFUND: &str = "pay.refund";
pub const PAYOUT: &str = "pay.payout";
pub const IDEMPOTENCY: &str = "pay.idempotency";
pub const WEBHOOK: &str = "pay.webhook";
pub const INFLIGHT: &str = "pay.inflight";
/// Captured orders held in escrow, keyed `<release_at, 20 digits>/<order id>` (value: the
/// order id), so the worker reads only those due (`escrow::release_key`); written when the
/// order is captured, deleted in the `Txn` that releases it.
pub const ESCROW: &str = "pay.escrow";
/// Payment orders authorized with manual capture, keyed `<expires_at, 20 digits>/<order
/// id>` (value: the order id), so the worker reads only expired ones
/// (`capture::expiry_key`); written in the `Txn` that records the authorization, deleted in
/// the one that captures or cancels it.
pub const AUTHORIZATION: &str = "pay.authorization";
/// Payment orders waiting for their customer's 3-D Secure authentication (`requires_action`),
/// keyed like `AUTHORIZATION` by the time tally-pay gives up on them (`action::index_key`);
/// written in the `Txn` that records the wait, deleted in the one that ends it.
pub const ACTION: &str = "pay.action";
/// Objects whose retries are exhausted, for an operator (value: `DeadLetter`).
pub const DEAD_LETTER: &str = "pay.dead_letter";
/// The stored summary of a day's reconciliation, keyed `YYYY-MM-DD` (value: `ReconRun`).
pub const RECON_RUN: &str = "pay.recon_run";
/// One reconciled line or object, keyed `<day>/<reference>`, written once (value: `ReconItem`).
pub const RECON_ITEM: &str = "pay.recon_item";
/// Reconciliation findings a person must look at, keyed `<day>/<reference>`.
pub const REVIEW: &str = "pay.review";
/// Every order, deposit, refund and payout by the UTC day it was created, keyed
/// `<YYYY-MM-DD>/<kind>/<id>` (value: the id), written in the `Txn` that creates the object,
/// so reconciling a day reads that day's objects only (`recon::index_key`).
pub const RECON_INDEX: &str = "pay.recon_index";
/// Set (key `done`) once the objects created before `RECON_INDEX` existed were indexed.
pub const RECON_INDEX_BACKFILL: &str = "pay.recon_index_backfill";
/// A record rewritten by every report to take a cluster timestamp (a consistent cut).
pub const REPORT_CUT: &str = "pay.report_cut";
/// API keys, keyed by key id (value: `auth::keys::ApiKeyRecord`, a salted hash, no secret).
pub const API_KEY: &str = "pay.api_key";
/// The audit trail, keyed by entry id, newest first (value: `audit::AuditEntry`).
/// Shared with the nodes, which record membership changes here (`tallyctl audit` reads it).
pub const AUDIT: &str = "audit";
/// Billing plans, keyed by plan id (value: `billing::Plan`).
pub const PLAN: &str = "pay.plan";
/// Subscriptions, keyed by subscription id (value: `billing::Subscription`).
pub const SUBSCRIPTION: &str = "pay.subscription";
/// Invoices, keyed by invoice id (value: `billing::Invoice`).
pub const INVOICE: &str = "pay.invoice";
/// `<subscription id>/<sequence>` -> invoice id: a subscription's invoices in order.
pub const SUBSCRIPTION_INVOICE: &str = "pay.subscription_invoice";
/// The manual billing clock (key `billing`, value: unix milliseconds).
pub const CLOCK: &str = "pay.clock";
/// Events, keyed by event id, newest first (value: `events::Event`), written in the `Txn` of
/// the change they tell of.
pub const EVENT: &str = "pay.event";
/// Events not yet handed to the webhook endpoints, keyed `<created ms>/<event id>`, oldest
/// first (value: the event id); written with the event, deleted when its deliveries exist.
pub const EVENT_OUTBOX: &str = "pay.event_outbox";
/// The merchant's webhook endpoints, keyed by id (value: `events::WebhookEndpoint`).
pub const WEBHOOK_ENDPOINT: &str = "pay.webhook_endpoint";
/// One event's delivery to one endpoint, keyed `<event id>/<endpoint id>` (value:
/// `events::Delivery`, with every attempt).
pub const DELIVERY: &str = "pay.delivery";
/// An endpoint's deliveries still to make, keyed `<endpoint id>/<created ms>/<event id>`,
/// oldest first (value: the delivery key); deleted when the delivery succeeds or is given up.
pub const DELIVERY_QUEUE: &str = "pay.delivery_queue";
/// Which tally-pay process delivers an endpoint's queue, keyed by endpoint id (value:
/// `events::DeliveryLease`): one at a time, so no event is sent twice at once.
pub const DELIVERY_LEASE: &str = "pay.delivery_lease";
/// Every listed object by kind and creation time, newest first, keyed
/// `<kind>/<inverted created_at>/<id>` (value: `lists::ListEntry`, its seller and customer),
/// written in the `Txn` that creates the object (`lists::list_key`).
pub const LIST_INDEX: &str = "pay.list_index";
/// Set (key `done`) once the objects created before `LIST_INDEX` existed were indexed.
pub const LIST_INDEX_BACKFILL: &str = "pay.list_index_backfill";
/// Disputes (chargebacks), keyed by dispute id (value: `disputes::Dispute`); the id derives
/// from the PSP's dispute id, so a dispute line or webhook finds its record without an index.
pub const DISPUTE: &str = "pay.dispute";
/// Dashboard sessions, keyed by the SHA-256 of the session token (hex), so the records hold no
/// token (value: `edges::dashboard::session::SessionRecord`); deleted at sign-out, refused once
/// expired.
pub const DASHBOARD_SESSION: &str = "pay.dashboard_session";
