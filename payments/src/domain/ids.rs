//! Ids of payment objects: a type prefix and 16 hex digits (`sel_5f0c...`).
//!
//! An object created under an `Idempotency-Key` gets an id derived from the key, so a retried or
//! taken-over request finds the object its first attempt created instead of making a second one.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const CUSTOMER: &str = "cus";
pub const SELLER: &str = "sel";
pub const BANK_ACCOUNT: &str = "ba";
pub const CARD: &str = "card";
pub const PAYMENT: &str = "pay";
pub const ORDER: &str = "ord";
pub const DEPOSIT: &str = "dep";
pub const REFUND: &str = "re";
pub const PAYOUT: &str = "po";
pub const PLAN: &str = "plan";
pub const SUBSCRIPTION: &str = "sub";
pub const INVOICE: &str = "inv";
pub const WEBHOOK_ENDPOINT: &str = "we";
pub const DISPUTE: &str = "dsp";

/// A fresh random id.
pub fn random(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::thread_rng().next_u64().max(1))
}

/// An id derived from `seed` (an idempotency key or a parent id plus an index).
pub fn derived(prefix: &str, seed: &str) -> String {
    format!("{prefix}_{:016x}", derived_number(prefix, seed))
}

fn derived_number(prefix: &str, seed: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(prefix.as_bytes())
        .chain_update(b"\0")
        .chain_update(seed.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes).max(1)
}

/// The id for a new object: derived from the idempotency key when there is one.
pub fn for_request(prefix: &str, idempotency_key: Option<&str>) -> String {
    match idempotency_key {
        Some(key) => derived(prefix, key),
        None => random(prefix),
    }
}

/// The 64-bit number inside an id of the given type (`sel_00000000000000ff` -> 255), if the id is
/// well formed.
pub fn number(prefix: &str, id: &str) -> Option<u64> {
    let hex = id.strip_prefix(prefix)?.strip_prefix('_')?;
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().filter(|n| *n != 0)
}

/// True when `id` is a well-formed id of the given type.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    number(prefix, id).is_some()
}

/// A string that is not a well-formed id of the wanted type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadId {
    /// The prefix the id should have had.
    pub prefix: &'static str,
}

impl std::fmt::Display for BadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an id like {}_0123456789abcdef", self.prefix)
    }
}

impl std::error::Error for BadId {}

/// An object id of one type. Only well-formed ids can be made (parsed, derived or fresh), so the
/// number inside is always there. Stored and sent as the plain string (`sel_5f0c...`).
pub trait Id: Sized + Clone + Eq + std::fmt::Display + std::str::FromStr<Err = BadId> {
    /// The type prefix (`sel`).
    const PREFIX: &'static str;

    /// Makes the id holding `number` (never 0).
    fn from_number(number: u64) -> Self;

    /// The id derived from `seed` (an idempotency key or a parent id plus an index).
    fn derived(seed: &str) -> Self {
        Self::from_number(derived_number(Self::PREFIX, seed))
    }

    /// A fresh random id.
    fn random() -> Self {
        Self::from_number(rand::thread_rng().next_u64().max(1))
    }

    /// The id for a new object: derived from the idempotency key when there is one.
    fn for_request(idempotency_key: Option<&str>) -> Self {
        match idempotency_key {
            Some(key) => Self::derived(key),
            None => Self::random(),
        }
    }
}

/// An id of type `T` as a caller sent it in a request body, not yet checked. The body stays
/// deserializable whatever the text is, so a malformed id gets the flow's `invalid_id` answer
/// naming the field (not a generic body error); the flow's first step turns it into a `T` with
/// [`Unchecked::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Unchecked<T> {
    text: String,
    #[serde(skip)]
    id: std::marker::PhantomData<fn() -> T>,
}

impl<T> Unchecked<T> {
    /// Text from a caller (a URL path segment), to be checked as an id of type `T`.
    pub fn new(text: String) -> Self {
        Unchecked {
            text,
            id: std::marker::PhantomData,
        }
    }
}

impl<T: Id> Unchecked<T> {
    /// The id, if the text is a well-formed id of type `T`.
    pub fn parse(&self) -> Result<T, BadId> {
        self.text.parse()
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A checked id, as a request body made inside the service (billing's charges) carries it.
impl<T: Id> From<T> for Unchecked<T> {
    fn from(id: T) -> Self {
        Unchecked::new(id.to_string())
    }
}

impl<T> std::fmt::Display for Unchecked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<T> std::ops::Deref for Unchecked<T> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident = $prefix:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name {
            text: String,
            number: u64,
        }

        impl $name {
            /// The id as text (`sel_5f0c...`).
            pub fn as_str(&self) -> &str {
                &self.text
            }

            /// The 64-bit number inside the id (never 0).
            pub fn number(&self) -> u64 {
                self.number
            }
        }

        impl Id for $name {
            const PREFIX: &'static str = $prefix;

            fn from_number(number: u64) -> Self {
                debug_assert!(number != 0);
                $name {
                    text: format!("{}_{number:016x}", $prefix),
                    number,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = BadId;

            fn from_str(text: &str) -> Result<Self, BadId> {
                match number($prefix, text) {
                    Some(number) => Ok($name {
                        text: text.to_string(),
                        number,
                    }),
                    None => Err(BadId { prefix: $prefix }),
                }
            }
        }

        /// Unit-test fixtures only: any text, even a name like `ord_ok` that is not a
        /// well-formed id, with a number derived from it (so still never 0).
        #[cfg(test)]
        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                text.parse().unwrap_or_else(|_| $name {
                    text: text.to_string(),
                    number: derived_number($prefix, text),
                })
            }
        }

        impl TryFrom<String> for $name {
            type Error = BadId;

            fn try_from(text: String) -> Result<Self, BadId> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.text
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.text
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.text
            }
        }
    };
}

id_type!(
    /// `cus_...`: a customer.
    CustomerId = CUSTOMER
);
id_type!(
    /// `sel_...`: a seller.
    SellerId = SELLER
);
id_type!(
    /// `ba_...`: a seller's bank account.
    BankAccountId = BANK_ACCOUNT
);
id_type!(
    /// `card_...`: a customer's card.
    CardId = CARD
);
id_type!(
    /// `pay_...`: a payment event.
    PaymentId = PAYMENT
);
id_type!(
    /// `ord_...`: one seller's order of a payment.
    OrderId = ORDER
);
id_type!(
    /// `dep_...`: a deposit into a customer's wallet.
    DepositId = DEPOSIT
);
id_type!(
    /// `re_...`: a refund.
    RefundId = REFUND
);
id_type!(
    /// `po_...`: a payout.
    PayoutId = PAYOUT
);
id_type!(
    /// `plan_...`: a billing plan.
    PlanId = PLAN
);
id_type!(
    /// `sub_...`: a subscription.
    SubscriptionId = SUBSCRIPTION
);
id_type!(
    /// `inv_...`: an invoice.
    InvoiceId = INVOICE
);
id_type!(
    /// `we_...`: a webhook endpoint of the merchant's.
    WebhookEndpointId = WEBHOOK_ENDPOINT
);
id_type!(
    /// `dsp_...`: a dispute (chargeback) of a payment order, derived from the PSP's dispute id.
    DisputeId = DISPUTE
);

/// The id of a charge record (`pay.order`): a payment order or a deposit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ChargeId {
    Order(OrderId),
    Deposit(DepositId),
}

impl ChargeId {
    pub fn as_str(&self) -> &str {
        match self {
            ChargeId::Order(id) => id.as_str(),
            ChargeId::Deposit(id) => id.as_str(),
        }
    }
}

impl std::str::FromStr for ChargeId {
    type Err = BadId;

    fn from_str(text: &str) -> Result<Self, BadId> {
        if let Ok(order) = text.parse() {
            Ok(ChargeId::Order(order))
        } else if let Ok(deposit) = text.parse() {
            Ok(ChargeId::Deposit(deposit))
        } else {
            Err(BadId { prefix: ORDER })
        }
    }
}

impl TryFrom<String> for ChargeId {
    type Error = BadId;

    fn try_from(text: String) -> Result<Self, BadId> {
        text.parse()
    }
}

impl From<ChargeId> for String {
    fn from(id: ChargeId) -> String {
        match id {
            ChargeId::Order(id) => id.into(),
            ChargeId::Deposit(id) => id.into(),
        }
    }
}

/// Unit-test fixtures only (see the id types' `From<&str>`): an order id unless it starts `dep_`.
#[cfg(test)]
impl From<&str> for ChargeId {
    fn from(text: &str) -> Self {
        if text.starts_with("dep_") {
            ChargeId::Deposit(text.into())
        } else {
            ChargeId::Order(text.into())
        }
    }
}

impl From<OrderId> for ChargeId {
    fn from(id: OrderId) -> ChargeId {
        ChargeId::Order(id)
    }
}

impl From<DepositId> for ChargeId {
    fn from(id: DepositId) -> ChargeId {
        ChargeId::Deposit(id)
    }
}

impl std::fmt::Display for ChargeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::ops::Deref for ChargeId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ChargeId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = random(SELLER);
        assert!(is_valid(SELLER, &id));
        assert!(!is_valid(CUSTOMER, &id));
        assert_eq!(number(SELLER, "sel_00000000000000ff"), Some(255));
        assert_eq!(number(SELLER, "sel_00000000000000FF"), None);
        assert_eq!(number(SELLER, "sel_0000000000000000"), None);
        assert_eq!(number(SELLER, "sel_ff"), None);
        assert_eq!(number(SELLER, "sel-00000000000000ff"), None);
    }

    #[test]
    fn derived_ids_are_stable() {
        assert_eq!(derived(PAYMENT, "k1"), derived(PAYMENT, "k1"));
        assert_ne!(derived(PAYMENT, "k1"), derived(PAYMENT, "k2"));
        assert_ne!(derived(PAYMENT, "k1"), derived(REFUND, "k1"));
    }

    #[test]
    fn typed_ids_parse_like_the_strings_and_serialize_as_them() {
        let id: SellerId = "sel_00000000000000ff".parse().unwrap();
        assert_eq!(id.number(), 255);
        assert_eq!(id.as_str(), "sel_00000000000000ff");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"sel_00000000000000ff\""
        );
        assert_eq!(
            serde_json::from_str::<SellerId>("\"sel_00000000000000ff\"").unwrap(),
            id
        );
        assert!(serde_json::from_str::<SellerId>("\"cus_00000000000000ff\"").is_err());
        for bad in [
            "sel_00000000000000FF",
            "sel_0000000000000000",
            "sel_ff",
            "cus_00000000000000ff",
        ] {
            assert_eq!(bad.parse::<SellerId>(), Err(BadId { prefix: SELLER }));
        }
        assert_eq!(PaymentId::derived("k1").as_str(), derived(PAYMENT, "k1"));
        assert_eq!(
            RefundId::derived("k1").number(),
            number(REFUND, &derived(REFUND, "k1")).unwrap()
        );
        assert!(is_valid(CUSTOMER, CustomerId::random().as_str()));
        assert_eq!(
            PlanId::for_request(Some("k")).as_str(),
            for_request(PLAN, Some("k"))
        );
    }

    #[test]
    fn charge_ids_are_orders_or_deposits() {
        let charge: ChargeId = "dep_0000000000000001".parse().unwrap();
        assert!(matches!(charge, ChargeId::Deposit(_)));
        let charge: ChargeId = "ord_0000000000000001".parse().unwrap();
        assert!(matches!(charge, ChargeId::Order(_)));
        assert_eq!(
            serde_json::to_string(&charge).unwrap(),
            "\"ord_0000000000000001\""
        );
        assert!("re_0000000000000001".parse::<ChargeId>().is_err());
    }
}
