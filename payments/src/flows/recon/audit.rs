//! The ledger audit of a run: debits equal credits over tally-pay's accounts, every wallet's
//! balance (a seller's pending balance too) equals the sum of its movements, and the PSP clearing account holds exactly what the
//! records say is in flight.

use futures::{StreamExt, TryStreamExt};
use tally_client::{AccountFilter, Balances};

use super::matching::Objects;
use crate::domain::chart::{self, code};
use crate::domain::ids;
use crate::domain::model::ns;
use crate::domain::money::Currency;
use crate::domain::recon::{
    ClearingCheck, ConservationCheck, CurrencyChecks, WalletCheck, WalletMismatch,
};
use crate::error::PayError;
use crate::flows::reports::is_posted;
use crate::flows::Pay;

/// Account ids per lookup (the node's `EVENTS_PER_REQUEST_MAX`).
const LOOKUP_IDS_MAX: usize = 8192;

/// Reads of a ledger check repeated when payments moved money in the middle of one.
const LEDGER_READ_ATTEMPTS_MAX: u32 = 5;

/// Wallets whose movements are summed at once.
const WALLET_CHECKS_CONCURRENCY_MAX: usize = 16;

/// Wallet mismatches listed in a report (all are counted).
const WALLET_MISMATCHES_LISTED_MAX: usize = 100;

impl Pay {
    /// Conservation, wallet movements and the PSP clearing account, per enabled currency.
    pub(super) async fn check_ledger(&self) -> Result<Vec<CurrencyChecks>, PayError> {
        let owners = self.wallet_owners().await?;
        let (objects, clearing, stable) = self.objects_with_clearing().await?;
        let mut checks = Vec::with_capacity(self.currencies.len());
        for (currency, clearing) in self.currencies.iter().zip(clearing) {
            let wallets: Vec<u128> = owners
                .iter()
                .map(|(wallet_code, owner)| chart::account_id(*wallet_code, *currency, *owner))
                .collect();
            let conservation = self.check_conservation(*currency, &wallets).await?;
            let wallets = self.check_wallets(&wallets).await?;
            let (expected_balance, expected_debits_pending) =
                objects.clearing_expected(currency.code);
            let balance = i128::try_from(clearing.debits_posted).unwrap_or(i128::MAX)
                - i128::try_from(clearing.credits_posted).unwrap_or(i128::MAX);
            let psp_clearing = ClearingCheck {
                passed: stable
                    && balance == expected_balance
                    && clearing.debits_pending == expected_debits_pending,
                stable,
                balance,
                expected_balance,
                debits_pending: clearing.debits_pending,
                expected_debits_pending,
            };
            checks.push(CurrencyChecks {
                currency: currency.code.to_string(),
                passed: conservation.passed && wallets.passed && psp_clearing.passed,
                conservation,
                wallets,
                psp_clearing,
            });
        }
        Ok(checks)
    }

    /// Wallet code and owner number of every seller's wallet and pending (escrow) balance and
    /// every customer's wallet: the accounts tally-pay opens per owner.
    async fn wallet_owners(&self) -> Result<Vec<(u16, u64)>, PayError> {
        let mut owners = Vec::new();
        for (namespace, prefix, wallet_code) in [
            (ns::SELLER, ids::SELLER, code::SELLER_WALLET),
            (ns::SELLER, ids::SELLER, code::SELLER_PENDING),
            (ns::SELLER, ids::SELLER, code::DISPUTE_LOSS),
            (ns::CUSTOMER, ids::CUSTOMER, code::CUSTOMER_WALLET),
        ] {
            for (key, _) in self
                .store
                .scan_all::<serde::de::IgnoredAny>(namespace, "")
                .await?
            {
                let owner = ids::number(prefix, &key).ok_or_else(|| {
                    PayError::Internal(format!("{namespace} has a record with the key {key:?}"))
                })?;
                owners.push((wallet_code, owner));
            }
        }
        Ok(owners)
    }

    /// The records and the clearing accounts' balances (per enabled currency) as of one moment:
    /// read between two looks at the clearing accounts' latest transfer, repeated until no
    /// transfer touched them in between. Every status change the expected figures depend on
    /// posts to the clearing account in the same `Txn`. The flag says whether that succeeded.
    async fn objects_with_clearing(&self) -> Result<(Objects, Vec<Balances>, bool), PayError> {
        let ids: Vec<u128> = self
            .currencies
            .iter()
            .map(|c| chart::system_account(code::PSP_CLEARING, *c))
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let before = self.latest_transfers(&ids).await?;
            let accounts = self.store.client().lookup_accounts(&ids).await?;
            let objects = self.objects().await?;
            let after = self.latest_transfers(&ids).await?;
            let balances = ids
                .iter()
                .map(|id| {
                    accounts
                        .iter()
                        .find(|a| a.id == *id)
                        .map(Balances::of_account)
                        .unwrap_or_default()
                })
                .collect();
            let stable = before == after;
            if stable || attempt >= LEDGER_READ_ATTEMPTS_MAX {
                return Ok((objects, balances, stable));
            }
        }
    }

    /// The timestamp of each account's latest transfer (0: none).
    async fn latest_transfers(&self, ids: &[u128]) -> Result<Vec<u64>, PayError> {
        let mut latest = Vec::with_capacity(ids.len());
        for id in ids {
            let page = self
                .store
                .client()
                .account_transfers(AccountFilter {
                    account_id: *id,
                    timestamp_min: 0,
                    timestamp_max: 0,
                    limit: 1,
                    reversed: true,
                })
                .await?;
            latest.push(page.first().map_or(0, |t| t.timestamp));
        }
        Ok(latest)
    }

    /// Debits equal credits, posted and pending, over the system accounts of `currency`, its FX
    /// positions and `wallets`. The accounts are read in pages, so a mismatch is read again a few times before
    /// it counts (a transfer may have landed between two pages).
    async fn check_conservation(
        &self,
        currency: Currency,
        wallets: &[u128],
    ) -> Result<ConservationCheck, PayError> {
        let ids: Vec<u128> = chart::SYSTEM_CODES
            .iter()
            .map(|c| chart::system_account(*c, currency))
            .chain(chart::fx_positions_of(currency, &self.currencies))
            .chain(wallets.iter().copied())
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut sum = Balances::default();
            let mut accounts = 0u64;
            for chunk in ids.chunks(LOOKUP_IDS_MAX) {
                for account in self.store.client().lookup_accounts(chunk).await? {
                    let b = Balances::of_account(&account);
                    accounts += 1;
                    sum.debits_posted = sum.debits_posted.saturating_add(b.debits_posted);
                    sum.credits_posted = sum.credits_posted.saturating_add(b.credits_posted);
                    sum.debits_pending = sum.debits_pending.saturating_add(b.debits_pending);
                    sum.credits_pending = sum.credits_pending.saturating_add(b.credits_pending);
                }
            }
            let passed = sum.debits_posted == sum.credits_posted
                && sum.debits_pending == sum.credits_pending;
            if passed || attempt >= LEDGER_READ_ATTEMPTS_MAX {
                return Ok(ConservationCheck {
                    passed,
                    accounts,
                    debits_posted: sum.debits_posted,
                    credits_posted: sum.credits_posted,
                    debits_pending: sum.debits_pending,
                    credits_pending: sum.credits_pending,
                });
            }
        }
    }

    /// Every wallet's posted balance against the sum of its posted movements.
    async fn check_wallets(&self, wallets: &[u128]) -> Result<WalletCheck, PayError> {
        let results: Vec<Option<(u64, Option<WalletMismatch>)>> =
            futures::stream::iter(wallets.iter().copied())
                .map(|id| self.check_wallet(id))
                .buffer_unordered(WALLET_CHECKS_CONCURRENCY_MAX)
                .try_collect()
                .await?;
        let mut check = WalletCheck {
            passed: true,
            wallets: 0,
            transfers: 0,
            mismatched: 0,
            mismatches: Vec::new(),
        };
        for (transfers, mismatch) in results.into_iter().flatten() {
            check.wallets += 1;
            check.transfers += transfers;
            if let Some(mismatch) = mismatch {
                check.passed = false;
                check.mismatched += 1;
                if check.mismatches.len() < WALLET_MISMATCHES_LISTED_MAX {
                    check.mismatches.push(mismatch);
                }
            }
        }
        check
            .mismatches
            .sort_by(|a, b| a.account_id.cmp(&b.account_id));
        Ok(check)
    }

    /// One wallet, at its latest balance history point `T`: its posted balances against the
    /// sum of its posted transfers up to `T`. Every transfer of the wallet with a timestamp up
    /// to `T` committed no later than that point, so the two agree however payments flow.
    /// `None` for a wallet without history (never used, or not opened in this currency).
    async fn check_wallet(
        &self,
        account_id: u128,
    ) -> Result<Option<(u64, Option<WalletMismatch>)>, PayError> {
        let (balance, at) = self.balance_at(account_id, u64::MAX).await?;
        if at == 0 {
            return Ok(None);
        }
        let mut credits = 0u128;
        let mut debits = 0u128;
        let transfers = self
            .visit_transfers(account_id, (0, at), |t| {
                if !is_posted(t.flags) {
                    return;
                }
                let amount = t.amount;
                if t.credit_account_id == account_id {
                    credits = credits.saturating_add(amount);
                } else {
                    debits = debits.saturating_add(amount);
                }
            })
            .await?;
        let matches = credits == balance.credits_posted && debits == balance.debits_posted;
        let mismatch = (!matches).then(|| WalletMismatch {
            account: crate::domain::chart::account_name(account_id),
            account_id: format!("{account_id:032x}"),
            at,
            credits_posted: balance.credits_posted,
            debits_posted: balance.debits_posted,
            movement_credits: credits,
            movement_debits: debits,
        });
        Ok(Some((transfers, mismatch)))
    }
}
