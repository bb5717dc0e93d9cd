//! The creation index behind the list endpoints: which kinds of objects are listed, how an
//! index entry's key orders them (newest first), and what an entry records of its object.
//!
//! Ids are random, so the object namespaces are in no useful order. Every listed object is
//! therefore also filed in `ns::LIST_INDEX` under `<kind>/<inverted created_at>/<id>`, in the
//! `Txn` that creates it. `inverted` is `i64::MAX - created_at` in 19 zero-padded digits, so
//! a forward scan of `<kind>/` meets the newest object first; objects created in the same
//! millisecond follow in id order. The entry's value holds the object's seller and customer,
//! which never change, so those filters are decided on the index alone.

use serde::{Deserialize, Serialize};

use crate::domain::ids::{CustomerId, SellerId};
use crate::domain::model::ns;

/// A kind of object the list endpoints serve. Append-only: its name is part of stored keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListKind {
    Customer,
    Seller,
    Payment,
    /// Payment orders only (deposits are not listed).
    PaymentOrder,
    Refund,
    Payout,
    Invoice,
    Subscription,
    Dispute,
}

/// A filter a list may take besides the created range, which every list takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    /// The object's current status (read from the object).
    Status,
    /// The seller paid or paying (from the index entry).
    Seller,
    /// The customer paying (from the index entry).
    Customer,
}

impl ListKind {
    pub const ALL: [ListKind; 9] = [
        ListKind::Customer,
        ListKind::Seller,
        ListKind::Payment,
        ListKind::PaymentOrder,
        ListKind::Refund,
        ListKind::Payout,
        ListKind::Invoice,
        ListKind::Subscription,
        ListKind::Dispute,
    ];

    /// The first segment of its index keys.
    pub fn name(self) -> &'static str {
        match self {
            ListKind::Customer => "customer",
            ListKind::Seller => "seller",
            ListKind::Payment => "payment",
            ListKind::PaymentOrder => "payment_order",
            ListKind::Refund => "refund",
            ListKind::Payout => "payout",
            ListKind::Invoice => "invoice",
            ListKind::Subscription => "subscription",
            ListKind::Dispute => "dispute",
        }
    }

    /// The namespace of the objects themselves.
    pub fn namespace(self) -> &'static str {
        match self {
            ListKind::Customer => ns::CUSTOMER,
            ListKind::Seller => ns::SELLER,
            ListKind::Payment => ns::PAYMENT,
            ListKind::PaymentOrder => ns::ORDER,
            ListKind::Refund => ns::REFUND,
            ListKind::Payout => ns::PAYOUT,
            ListKind::Invoice => ns::INVOICE,
            ListKind::Subscription => ns::SUBSCRIPTION,
            ListKind::Dispute => ns::DISPUTE,
        }
    }

    /// The filters its list takes (besides the created range).
    pub fn filters(self) -> &'static [ListFilter] {
        use ListFilter::*;
        match self {
            ListKind::Customer | ListKind::Seller => &[],
            ListKind::Payment | ListKind::Invoice | ListKind::Subscription => &[Status, Customer],
            ListKind::PaymentOrder | ListKind::Refund | ListKind::Dispute => {
                &[Status, Seller, Customer]
            }
            ListKind::Payout => &[Status, Seller],
        }
    }

    /// The key prefix of all its entries.
    pub fn prefix(self) -> String {
        format!("{}/", self.name())
    }
}

/// What an index entry records of its object: the parties, which never change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<SellerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
}

/// Digits of an inverted time: `i64::MAX` has 19.
const INVERTED_DIGITS: usize = 19;

fn inverted(created_at: i64) -> String {
    // Times before 1970 do not occur; clamping keeps the key's width fixed if one did.
    let inverted = i64::MAX - created_at.max(0);
    format!("{inverted:0width$}", width = INVERTED_DIGITS)
}

/// The index key of an object.
pub fn list_key(kind: ListKind, created_at: i64, id: &str) -> String {
    format!("{}/{}/{id}", kind.name(), inverted(created_at))
}

/// A scan that starts after this key meets first the objects of `kind` created at or before
/// `created_at` (no key equals it: every key goes on with `/<id>`).
pub fn list_position(kind: ListKind, created_at: i64) -> String {
    format!("{}/{}", kind.name(), inverted(created_at))
}

/// The creation time and id an index key of `kind` names.
pub fn parse_list_key(kind: ListKind, key: &str) -> Option<(i64, &str)> {
    let rest = key.strip_prefix(kind.name())?.strip_prefix('/')?;
    let (time, id) = rest.split_once('/')?;
    if time.len() != INVERTED_DIGITS || id.is_empty() {
        return None;
    }
    let inverted: i64 = time.parse().ok()?;
    Some((i64::MAX - inverted, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_newest_first_then_by_id() {
        let kind = ListKind::Payout;
        let mut keys = [
            list_key(kind, 1_000, "po_b"),
            list_key(kind, 999, "po_z"),
            list_key(kind, 1_000, "po_a"),
            list_key(kind, 1_764_000_000_000, "po_c"),
            list_key(kind, 0, "po_d"),
        ];
        keys.sort();
        let ids: Vec<&str> = keys
            .iter()
            .map(|k| parse_list_key(kind, k).unwrap().1)
            .collect();
        assert_eq!(ids, ["po_c", "po_a", "po_b", "po_z", "po_d"]);
    }

    #[test]
    fn a_key_reads_back_its_time_and_id() {
        let key = list_key(
            ListKind::PaymentOrder,
            1_764_765_432_109,
            "ord_0123456789abcdef",
        );
        assert_eq!(
            parse_list_key(ListKind::PaymentOrder, &key),
            Some((1_764_765_432_109, "ord_0123456789abcdef"))
        );
        assert_eq!(parse_list_key(ListKind::Payment, &key), None);
        assert_eq!(parse_list_key(ListKind::Payment, "payment/12/pay_1"), None);
        assert_eq!(parse_list_key(ListKind::Payment, "payment"), None);
    }

    #[test]
    fn a_position_falls_between_the_times_around_it() {
        let kind = ListKind::Refund;
        let at = list_position(kind, 5_000);
        assert!(list_key(kind, 5_001, "re_a") < at);
        assert!(at < list_key(kind, 5_000, "re_a"));
        assert!(list_key(kind, 5_000, "re_z") < list_key(kind, 4_999, "re_a"));
    }

    #[test]
    fn kinds_have_distinct_names_that_are_not_prefixes_of_each_other() {
        for a in ListKind::ALL {
            for b in ListKind::ALL {
                if a != b {
                    assert!(!a.prefix().starts_with(&b.prefix()), "{a:?} {b:?}");
                }
            }
        }
    }
}
