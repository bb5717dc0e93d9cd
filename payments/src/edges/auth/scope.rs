//! The scopes of API keys and the kinds of keys that carry them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a route requires. Declared once per route, next to it, in `api::routes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key: health, metrics, the OpenAPI document.
    Public,
    /// No key: the PSP's webhooks, which carry an HMAC signature instead.
    Signed,
    /// A key holding this scope.
    Scope(Scope),
}

impl Access {
    /// How the docs' scope table names it.
    pub fn name(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Signed => "signed (PSP webhook HMAC)",
            Access::Scope(scope) => scope.name(),
        }
    }
}

/// A named permission of restricted keys. Secret keys hold every scope, publishable keys none.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Scope {
    #[serde(rename = "customers:read")]
    CustomersRead,
    #[serde(rename = "customers:write")]
    CustomersWrite,
    #[serde(rename = "sellers:read")]
    SellersRead,
    #[serde(rename = "sellers:write")]
    SellersWrite,
    /// Linking a seller's bank account and changing the default payout destination.
    #[serde(rename = "bank_accounts:write")]
    BankAccountsWrite,
    #[serde(rename = "payments:read")]
    PaymentsRead,
    #[serde(rename = "payments:write")]
    PaymentsWrite,
    #[serde(rename = "refunds:read")]
    RefundsRead,
    #[serde(rename = "refunds:write")]
    RefundsWrite,
    #[serde(rename = "payouts:read")]
    PayoutsRead,
    #[serde(rename = "payouts:write")]
    PayoutsWrite,
    #[serde(rename = "billing:read")]
    BillingRead,
    #[serde(rename = "billing:write")]
    BillingWrite,
    /// Billing runs and the billing clock.
    #[serde(rename = "billing:admin")]
    BillingAdmin,
    /// Transactions, statements and revenue reports.
    #[serde(rename = "reports:read")]
    ReportsRead,
    /// Reconciliation runs, stored reconciliations and the review queue.
    #[serde(rename = "recon:admin")]
    ReconAdmin,
    #[serde(rename = "dead_letters:admin")]
    DeadLettersAdmin,
    /// Creating, listing, rotating and revoking API keys.
    #[serde(rename = "keys:admin")]
    KeysAdmin,
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Events (`GET /v1/events`) and their deliveries.
    #[serde(rename = "events:read")]
    EventsRead,
    /// Webhook endpoints: creating (its secret shown once), listing, disabling; resending.
    #[serde(rename = "webhooks:admin")]
    WebhooksAdmin,
    /// Disputes (chargebacks): listing and reading them.
    #[serde(rename = "disputes:read")]
    DisputesRead,
    /// Submitting a dispute's evidence.
    #[serde(rename = "disputes:write")]
    DisputesWrite,
    /// Signing in to the web dashboard (`/dashboard`) and reading its pages: the read-only role.
    #[serde(rename = "dashboard")]
    Dashboard,
    /// The dashboard's operator role: refunds, captures, resolving review items, retrying dead
    /// letters. Signing in still needs `dashboard`.
    #[serde(rename = "dashboard:operate")]
    DashboardOperate,
}

impl Scope {
    pub const ALL: [Scope; 25] = [
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::SellersRead,
        Scope::SellersWrite,
        Scope::BankAccountsWrite,
        Scope::PaymentsRead,
        Scope::PaymentsWrite,
        Scope::RefundsRead,
        Scope::RefundsWrite,
        Scope::PayoutsRead,
        Scope::PayoutsWrite,
        Scope::BillingRead,
        Scope::BillingWrite,
        Scope::BillingAdmin,
        Scope::ReportsRead,
        Scope::ReconAdmin,
        Scope::DeadLettersAdmin,
        Scope::KeysAdmin,
        Scope::AuditRead,
        Scope::EventsRead,
        Scope::WebhooksAdmin,
        Scope::DisputesRead,
        Scope::DisputesWrite,
        Scope::Dashboard,
        Scope::DashboardOperate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::CustomersRead => "customers:read",
            Scope::CustomersWrite => "customers:write",
            Scope::SellersRead => "sellers:read",
            Scope::SellersWrite => "sellers:write",
            Scope::BankAccountsWrite => "bank_accounts:write",
            Scope::PaymentsRead => "payments:read",
            Scope::PaymentsWrite => "payments:write",
            Scope::RefundsRead => "refunds:read",
            Scope::RefundsWrite => "refunds:write",
            Scope::PayoutsRead => "payouts:read",
            Scope::PayoutsWrite => "payouts:write",
            Scope::BillingRead => "billing:read",
            Scope::BillingWrite => "billing:write",
            Scope::BillingAdmin => "billing:admin",
            Scope::ReportsRead => "reports:read",
            Scope::ReconAdmin => "recon:admin",
            Scope::DeadLettersAdmin => "dead_letters:admin",
            Scope::KeysAdmin => "keys:admin",
            Scope::AuditRead => "audit:read",
            Scope::EventsRead => "events:read",
            Scope::WebhooksAdmin => "webhooks:admin",
            Scope::DisputesRead => "disputes:read",
            Scope::DisputesWrite => "disputes:write",
            Scope::Dashboard => "dashboard",
            Scope::DashboardOperate => "dashboard:operate",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// The kind of an API key, which decides its scopes and its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `sk_`: every scope; for the platform's servers.
    Secret,
    /// `pk_`: may sit in a browser or app; holds no scope of tally-pay's routes (cards are
    /// tokenized at the PSP).
    Publishable,
    /// `rk_`: the scopes named at creation.
    Restricted,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk",
            KeyKind::Publishable => "pk",
            KeyKind::Restricted => "rk",
        }
    }

    pub fn parse(text: &str) -> Option<KeyKind> {
        match text {
            "secret" => Some(KeyKind::Secret),
            "publishable" => Some(KeyKind::Publishable),
            "restricted" => Some(KeyKind::Restricted),
            _ => None,
        }
    }

    /// The scopes a key of this kind holds, given the scopes named at creation.
    pub fn grants(self, named: &[Scope], scope: Scope) -> bool {
        match self {
            KeyKind::Secret => true,
            KeyKind::Publishable => false,
            KeyKind::Restricted => named.contains(&scope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse_and_serde() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.name()));
        }
        assert_eq!(Scope::parse("payments:delete"), None);
    }

    #[test]
    fn kinds_grant_their_scopes() {
        let named = [Scope::PayoutsWrite];
        assert!(KeyKind::Secret.grants(&[], Scope::RefundsWrite));
        assert!(!KeyKind::Publishable.grants(&named, Scope::PayoutsWrite));
        assert!(KeyKind::Restricted.grants(&named, Scope::PayoutsWrite));
        assert!(!KeyKind::Restricted.grants(&named, Scope::RefundsWrite));
    }
}
