//! Customers, sellers, their bank accounts and cards, and wallet balances (a seller's pending,
//! escrowed, balance beside the wallet's available one).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_text, lists, parse_id, Pay};
use crate::domain::bank;
use crate::domain::chart::{self, code};
use crate::domain::escrow;
use crate::domain::ids::{BankAccountId, CardId, CustomerId, Id, SellerId};
use crate::domain::lists::{ListEntry, ListKind};
use crate::domain::model::{
    ns, BankAccount, BankAccountKind, BankAccountRecord, Card, Customer, PayoutSchedule, Seller,
};
use crate::edges::store::{Commit, Txn};
use crate::error::PayError;
use crate::flows::audit;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSeller {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub payout_schedule: PayoutSchedule,
    /// Seconds this seller's captured orders stay pending before they are released
    /// automatically (0: available at capture; at most 15552000, 180 days). Absent: the
    /// service's `escrow.hold_period_s`.
    pub hold_period_s: Option<u64>,
    /// The currency this seller is paid out in (an enabled ISO code): orders charged in another
    /// currency are converted into it at their capture, at the rate fixed then. Absent: each
    /// order's own currency.
    pub payout_currency: Option<String>,
}

/// A change to a seller: its hold period, its payout currency. It applies to the orders made
/// after it; an order keeps the hold period and payout currency it was made with.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSeller {
    /// Seconds (0 to 15552000); `null`: back to the service's `escrow.hold_period_s`; absent:
    /// unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub hold_period_s: Option<Option<u64>>,
    /// An enabled ISO code; `null`: each order's own currency again; absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub payout_currency: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one not sent (`None`, the default).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn check_hold_period(hold_period_s: Option<u64>) -> Result<(), PayError> {
    if hold_period_s.is_some_and(|s| s > escrow::HOLD_PERIOD_S_MAX) {
        return Err(PayError::invalid(
            "invalid_hold_period",
            format!(
                "`hold_period_s` must be 0 to {} seconds (180 days)",
                escrow::HOLD_PERIOD_S_MAX
            ),
        ));
    }
    Ok(())
}

/// A bank account to link: an `iban`, or a US `account_number` with its `routing_number`.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBankAccount {
    pub holder_name: String,
    pub iban: Option<String>,
    pub account_number: Option<String>,
    pub routing_number: Option<String>,
    /// Make it the seller's default payout destination (the first linked account always is).
    #[serde(default)]
    pub default: bool,
}

/// A card the buyer's device tokenized at the PSP. Card numbers and CVVs are refused.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCard {
    /// The PSP's token (`tok_...`).
    pub token: String,
}

/// A wallet's balance in one currency, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    pub currency: String,
    /// What can be paid out or refunded now: posted credits minus posted and held debits of
    /// the wallet.
    pub available: u64,
    /// A seller's captured money held in escrow until its orders are released (less refunds
    /// drawn on it); payouts cannot use it. Always 0 for a customer.
    pub pending: u64,
    /// Incoming money not yet captured (payments in processing).
    pub incoming: u64,
    /// Outgoing money held for pending payouts and refunds.
    pub held: u64,
    /// What a seller owes the platform for disputes it could not cover (its balance in
    /// recovery), repaid first by its later pay-ins. Always 0 for a customer.
    #[serde(default)]
    pub recovery: u64,
}

fn check_email(email: &str) -> Result<(), PayError> {
    check_text("email", email)?;
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    if valid {
        Ok(())
    } else {
        Err(PayError::invalid_param(
            "invalid_email",
            "email",
            "`email` is not an e-mail address",
        ))
    }
}

/// A new bank account's details once checked: an IBAN, or a US account and routing number.
struct CheckedBank {
    kind: BankAccountKind,
    country: String,
    number: String,
    routing: Option<String>,
}

fn check_bank_account(request: &NewBankAccount) -> Result<CheckedBank, PayError> {
    check_text("holder_name", &request.holder_name).map_err(|_| {
        PayError::invalid_param(
            "invalid_holder_name",
            "holder_name",
            bank::BankError::HolderName.to_string(),
        )
    })?;
    let bad = |e: bank::BankError| PayError::invalid("invalid_bank_account", e.to_string());
    let checked = match (
        &request.iban,
        &request.account_number,
        &request.routing_number,
    ) {
        (Some(iban), None, None) => {
            let (iban, country) = bank::validate_iban(iban).map_err(bad)?;
            CheckedBank {
                kind: BankAccountKind::Iban,
                country,
                number: iban,
                routing: None,
            }
        }
        (None, Some(account), Some(routing)) => {
            bank::validate_account_number(account).map_err(bad)?;
            bank::validate_routing(routing).map_err(bad)?;
            CheckedBank {
                kind: BankAccountKind::UsAch,
                country: "US".to_string(),
                number: account.clone(),
                routing: Some(routing.clone()),
            }
        }
        _ => return Err(bad(bank::BankError::Shape)),
    };
    Ok(checked)
}

impl Pay {
    /// Opens a customer: the record and a wallet per enabled currency, in one Txn.
    pub async fn create_customer(
        &self,
        request: NewCustomer,
        idempotency_key: Option<&str>,
    ) -> Result<Customer, PayError> {
        check_text("name", &request.name)?;
        check_email(&request.email)?;
        let id = CustomerId::for_request(idempotency_key);
        let owner = id.number();
        let customer = Customer {
            id: id.clone(),
            name: request.name,
            email: request.email,
            created_at: self.clock.now_ms(),
        };
        let mut txn = lists::listed(
            Txn::new()
                .require_version(ns::CUSTOMER, &id, 0)
                .put(ns::CUSTOMER, &id, &customer),
            ListKind::Customer,
            &id,
            customer.created_at,
            &ListEntry::default(),
        );
        for currency in &self.currencies {
            txn = txn.account(chart::wallet(code::CUSTOMER_WALLET, *currency, owner));
        }
        self.open(txn, ns::CUSTOMER, &id, customer).await
    }

    /// Opens a seller: the record, a wallet and a pending (escrow) balance per enabled currency,
    /// in one Txn. (A seller from before escrow gets its pending balance with its first held
    /// order.)
    pub async fn create_seller(
        &self,
        request: NewSeller,
        idempotency_key: Option<&str>,
    ) -> Result<Seller, PayError> {
        check_text("name", &request.name)?;
        check_email(&request.email)?;
        check_hold_period(request.hold_period_s)?;
        let payout_currency = self.payout_currency_of(request.payout_currency.as_deref())?;
        let id = SellerId::for_request(idempotency_key);
        let owner = id.number();
        let seller = Seller {
            id: id.clone(),
            name: request.name,
            email: request.email,
            payout_schedule: request.payout_schedule,
            default_bank_account: None,
            hold_period_s: request.hold_period_s,
            payout_currency,
            created_at: self.clock.now_ms(),
        };
        let mut txn = lists::listed(
            Txn::new()
                .require_version(ns::SELLER, &id, 0)
                .put(ns::SELLER, &id, &seller),
            ListKind::Seller,
            &id,
            seller.created_at,
            &ListEntry::default(),
        );
        for currency in &self.currencies {
            txn = txn
                .account(chart::wallet(code::SELLER_WALLET, *currency, owner))
                .account(chart::wallet(code::SELLER_PENDING, *currency, owner));
        }
        self.open(txn, ns::SELLER, &id, seller).await
    }

    /// Commits an opening Txn; if the record already exists (a retried request), returns it.
    async fn open<T>(&self, txn: Txn, namespace: &str, id: &str, value: T) -> Result<T, PayError>
    where
        T: Serialize + serde::de::DeserializeOwned,
    {
        match self.store.commit(txn).await? {
            Commit::Committed => Ok(value),
            Commit::ConditionFailed { .. } => {
                Ok(self.load::<T>(namespace, id, namespace).await?.value)
            }
            other => Err(PayError::Internal(format!(
                "opening {namespace}/{id}: {}",
                super::describe_commit(&other)
            ))),
        }
    }

    pub async fn customer(&self, id: &str) -> Result<Customer, PayError> {
        let id: CustomerId = parse_id("customer_id", id)?;
        Ok(self.load(ns::CUSTOMER, &id, "customer").await?.value)
    }

    /// Changes a seller's hold period or payout currency (audited, in the seller's own `Txn`).
    pub async fn update_seller(&self, id: &str, request: UpdateSeller) -> Result<Seller, PayError> {
        let seller = self.seller(id).await?;
        if let Some(hold_period_s) = request.hold_period_s {
            check_hold_period(hold_period_s)?;
        }
        let payout_currency = match &request.payout_currency {
            Some(code) => Some(self.payout_currency_of(code.as_deref())?),
            None => None,
        };
        self.update::<Seller, _>(ns::SELLER, &seller.id, |current| {
            let mut next = current.clone();
            next.hold_period_s = request.hold_period_s.unwrap_or(current.hold_period_s);
            next.payout_currency = payout_currency
                .clone()
                .unwrap_or(current.payout_currency.clone());
            (next != *current)
                .then(|| (next, audit::stamp(Txn::new(), "seller.update", &current.id)))
        })
        .await
    }

    /// A payout currency as given: an enabled currency's code, or none.
    fn payout_currency_of(&self, code: Option<&str>) -> Result<Option<String>, PayError> {
        code.map(|code| {
            self.currency(code)
                .map(|c| c.code.to_string())
                .map_err(|e| e.with_param("payout_currency"))
        })
        .transpose()
    }

    pub async fn seller(&self, id: &str) -> Result<Seller, PayError> {
        let id: SellerId = parse_id("seller_id", id)?;
        Ok(self.load(ns::SELLER, &id, "seller").await?.value)
    }

    /// Links a bank account to a seller: validated, stored masked, the number encrypted.
    pub async fn add_bank_account(
        &self,
        seller_id: &str,
        request: NewBankAccount,
        idempotency_key: Option<&str>,
    ) -> Result<BankAccount, PayError> {
        let seller = self.seller(seller_id).await?;
        let CheckedBank {
            kind,
            country,
            number,
            routing,
        } = check_bank_account(&request)?;
        let id = match idempotency_key {
            Some(key) => BankAccountId::derived(&format!("{seller_id}/{key}")),
            None => BankAccountId::random(),
        };
        let record = BankAccountRecord {
            id: id.clone(),
            seller_id: seller.id.clone(),
            holder_name: request.holder_name,
            country,
            kind,
            masked: bank::mask(&number),
            routing_number: routing,
            encrypted_number: self.sealer.seal(&number),
            created_at: self.clock.now_ms(),
        };
        let view = BankAccount::from(&record);
        let make_default = request.default;
        let key = bank_key(seller_id, &id);
        // A retried request (same key, so same id) finds what its first attempt linked.
        if let Some(existing) = self.bank_account_record(seller_id, &id).await? {
            return Ok(BankAccount::from(&existing));
        }
        self.update::<Seller, _>(ns::SELLER, seller_id, |seller| {
            let mut next = seller.clone();
            let mut action = "bank_account.link";
            if make_default || seller.default_bank_account.is_none() {
                next.default_bank_account = Some(id.clone());
                action = "bank_account.link_as_default";
            }
            let txn = audit::stamp(Txn::new(), action, &id)
                .require_version(ns::BANK_ACCOUNT, &key, 0)
                .put(ns::BANK_ACCOUNT, &key, &record);
            Some((next, txn))
        })
        .await?;
        Ok(view)
    }

    pub async fn bank_accounts(&self, seller_id: &str) -> Result<Vec<BankAccount>, PayError> {
        self.seller(seller_id).await?;
        Ok(self
            .store
            .scan_all::<BankAccountRecord>(ns::BANK_ACCOUNT, &format!("{seller_id}/"))
            .await?
            .iter()
            .map(|(_, v)| BankAccount::from(&v.value))
            .collect())
    }

    pub(crate) async fn bank_account_record(
        &self,
        seller_id: &str,
        id: &str,
    ) -> Result<Option<BankAccountRecord>, PayError> {
        let Ok(id) = id.parse::<BankAccountId>() else {
            return Ok(None);
        };
        Ok(self
            .store
            .get::<BankAccountRecord>(ns::BANK_ACCOUNT, &bank_key(seller_id, &id))
            .await?
            .map(|v| v.value))
    }

    /// Adds a card tokenized at the PSP; only token, brand, last4, expiry and funding are kept.
    pub async fn add_card(
        &self,
        customer_id: &str,
        request: NewCard,
        idempotency_key: Option<&str>,
    ) -> Result<Card, PayError> {
        let customer = self.customer(customer_id).await?;
        if request.token.is_empty()
            || request.token.len() > 128
            || !request
                .token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(PayError::invalid_param(
                "invalid_token",
                "token",
                "`token` must be the PSP's card token (tok_...); tokenize the card at the PSP first",
            ));
        }
        let details = self.psp.card(&request.token).await.map_err(|e| match e {
            crate::edges::psp::PspError::NotFound | crate::edges::psp::PspError::Invalid { .. } => {
                PayError::unprocessable(
                    "invalid_token",
                    format!("the PSP does not know this token: {e}"),
                )
            }
            crate::edges::psp::PspError::Declined { code, message } => {
                PayError::unprocessable("card_declined", format!("{code}: {message}"))
            }
            other => PayError::PspUnavailable(format!("{other}")),
        })?;
        let id = match idempotency_key {
            Some(key) => CardId::derived(&format!("{customer_id}/{key}")),
            None => CardId::random(),
        };
        let card = Card {
            id: id.clone(),
            customer_id: customer.id,
            token: details.token,
            brand: details.brand,
            last4: details.last4,
            exp_month: details.exp_month,
            exp_year: details.exp_year,
            funding: details.funding,
            created_at: self.clock.now_ms(),
        };
        let key = card_key(customer_id, &id);
        let txn = Txn::new()
            .require_version(ns::CARD, &key, 0)
            .put(ns::CARD, &key, &card);
        self.open(txn, ns::CARD, &key, card).await
    }

    pub async fn cards(&self, customer_id: &str) -> Result<Vec<Card>, PayError> {
        self.customer(customer_id).await?;
        Ok(self
            .store
            .scan_all::<Card>(ns::CARD, &format!("{customer_id}/"))
            .await?
            .into_iter()
            .map(|(_, v)| v.value)
            .collect())
    }

    pub(crate) async fn card(&self, customer_id: &str, card_id: &str) -> Result<Card, PayError> {
        let card_id: CardId = parse_id("card_id", card_id)?;
        self.store
            .get::<Card>(ns::CARD, &card_key(customer_id, &card_id))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| {
                PayError::unprocessable(
                    "card_not_found",
                    format!("card {card_id} is not one of customer {customer_id}'s cards"),
                )
            })
    }

    /// Wallet balances of a seller or customer, one per enabled currency; a seller's with its
    /// pending (escrow) balance.
    pub async fn balances(&self, owner_id: &str) -> Result<Vec<Balance>, PayError> {
        let (wallet_code, owner) = if owner_id.starts_with("sel_") {
            let seller = self.seller(owner_id).await?;
            (code::SELLER_WALLET, seller.id.number())
        } else {
            let customer = self.customer(owner_id).await?;
            (code::CUSTOMER_WALLET, customer.id.number())
        };
        let pending_code = (wallet_code == code::SELLER_WALLET).then_some(code::SELLER_PENDING);
        let wanted: Vec<u128> = self
            .currencies
            .iter()
            .flat_map(|c| {
                let pending = pending_code.map(|p| chart::account_id(p, *c, owner));
                [Some(chart::account_id(wallet_code, *c, owner)), pending]
            })
            .flatten()
            .collect();
        let accounts = self.store.client().lookup_accounts(&wanted).await?;
        let of = |id: u128| {
            accounts
                .iter()
                .find(|a| a.id == id)
                .map(tally_client::Balances::of_account)
        };
        let mut balances = Vec::new();
        for currency in &self.currencies {
            let Some(wallet) = of(chart::account_id(wallet_code, *currency, owner)) else {
                continue;
            };
            let pending = pending_code
                .and_then(|p| of(chart::account_id(p, *currency, owner)))
                .unwrap_or_default();
            let to_u64 = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
            balances.push(Balance {
                currency: currency.code.to_string(),
                available: to_u64(spendable(&wallet)),
                pending: to_u64(spendable(&pending)),
                incoming: to_u64(
                    wallet
                        .credits_pending
                        .saturating_add(pending.credits_pending),
                ),
                held: to_u64(wallet.debits_pending.saturating_add(pending.debits_pending)),
                recovery: match pending_code {
                    Some(_) => self.recovery(*currency, owner).await?,
                    None => 0,
                },
            });
        }
        Ok(balances)
    }
}

/// Posted credits minus posted and held debits: what an account can still give.
fn spendable(b: &tally_client::Balances) -> u128 {
    b.credits_posted
        .saturating_sub(b.debits_posted)
        .saturating_sub(b.debits_pending)
}

/// Bank accounts are keyed under their seller so that a seller's accounts scan by prefix.
pub(crate) fn bank_key(seller_id: &str, id: &str) -> String {
    format!("{seller_id}/{id}")
}

/// Cards are keyed under their customer.
pub(crate) fn card_key(customer_id: &str, id: &str) -> String {
    format!("{customer_id}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seller_update_tells_null_from_absent() {
        let parse = |json: &str| serde_json::from_str::<UpdateSeller>(json).unwrap();
        assert_eq!(parse("{}").hold_period_s, None, "absent: unchanged");
        assert_eq!(
            parse(r#"{"hold_period_s": null}"#).hold_period_s,
            Some(None),
            "null: the service's default"
        );
        assert_eq!(
            parse(r#"{"hold_period_s": 60}"#).hold_period_s,
            Some(Some(60))
        );
        assert!(serde_json::from_str::<UpdateSeller>(r#"{"name": "x"}"#).is_err());
        assert!(check_hold_period(Some(escrow::HOLD_PERIOD_S_MAX)).is_ok());
        assert!(check_hold_period(Some(escrow::HOLD_PERIOD_S_MAX + 1)).is_err());
        assert!(check_hold_period(None).is_ok());
    }
}
