//! The bodies the API accepts for charges, captures, cancels, refunds and payouts, and their
//! checks.

use serde::Deserialize;

use super::{PayoutFailure, ACCOUNT_CLOSED, CLOSED_ACCOUNT_NUMBER, CLOSED_IBAN_SUFFIX};
use crate::bank;
use crate::constants::{
    AMOUNT_MAX, DESCRIPTION_LENGTH_MAX, HOLDER_NAME_LENGTH_MAX, REFERENCE_LENGTH_MAX,
};
use crate::error::ApiError;

/// The body of `POST /v1/charges`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeInput {
    pub reference: String,
    pub card_token: String,
    pub amount: u64,
    pub currency: String,
    #[serde(default)]
    pub description: String,
    /// `false`: authorize only.
    #[serde(default = "yes")]
    pub capture: bool,
}

fn yes() -> bool {
    true
}

impl ChargeInput {
    pub(super) fn validate(&self) -> Result<(), ApiError> {
        check_reference("reference", &self.reference)?;
        check_amount(self.amount)?;
        check_currency(&self.currency)?;
        if self.description.len() > DESCRIPTION_LENGTH_MAX {
            return Err(ApiError::invalid(
                "invalid_description",
                format!("description is longer than {DESCRIPTION_LENGTH_MAX} bytes"),
            ));
        }
        Ok(())
    }
}

/// The body of `POST /v1/charges/{reference}/capture`; without `amount`, all of it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureInput {
    pub amount: Option<u64>,
}

/// The body of `POST /v1/charges/{reference}/cancel`: `{}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {}

/// The body of `POST /v1/refunds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    pub reference: String,
    pub charge_reference: String,
    pub amount: u64,
    pub currency: String,
}

/// The body of `POST /v1/payouts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutInput {
    pub reference: String,
    pub amount: u64,
    pub currency: String,
    pub destination: DestinationInput,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationInput {
    pub holder_name: String,
    pub country: String,
    pub iban: Option<String>,
    pub account_number: Option<String>,
    pub routing_number: Option<String>,
}

impl std::fmt::Debug for DestinationInput {
    /// Account numbers are not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationInput")
            .field("country", &self.country)
            .finish_non_exhaustive()
    }
}

/// A reference goes into URL paths: 1 to 255 visible ASCII characters.
pub fn check_reference(field: &str, reference: &str) -> Result<(), ApiError> {
    let visible = reference.bytes().all(|b| b.is_ascii_graphic());
    if reference.is_empty() || reference.len() > REFERENCE_LENGTH_MAX || !visible {
        return Err(ApiError::invalid(
            "invalid_reference",
            format!("{field} must be 1 to {REFERENCE_LENGTH_MAX} visible ASCII characters"),
        ));
    }
    Ok(())
}

pub(super) fn check_amount(amount: u64) -> Result<(), ApiError> {
    if amount == 0 || amount > AMOUNT_MAX {
        return Err(ApiError::invalid(
            "invalid_amount",
            format!("amount must be 1 to {AMOUNT_MAX} minor units"),
        ));
    }
    Ok(())
}

pub(super) fn check_currency(currency: &str) -> Result<(), ApiError> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "invalid_currency",
            format!("currency `{currency}` is not a 3-letter ISO 4217 code like USD"),
        ));
    }
    Ok(())
}

/// Validates a payout destination; returns its last four characters and, for the documented
/// closed accounts, the failure it will end in.
pub(super) fn check_destination(
    destination: &DestinationInput,
) -> Result<(String, Option<PayoutFailure>), ApiError> {
    let name_length = destination.holder_name.chars().count();
    if name_length == 0 || name_length > HOLDER_NAME_LENGTH_MAX {
        return Err(ApiError::invalid(
            "invalid_holder_name",
            format!("holder_name must be 1 to {HOLDER_NAME_LENGTH_MAX} characters"),
        ));
    }
    let country = &destination.country;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "invalid_country",
            "country must be a 2-letter ISO 3166 code like DE",
        ));
    }
    let closed = Some(ACCOUNT_CLOSED);
    // The checks a bank makes before it accepts a transfer.
    match (
        &destination.iban,
        &destination.account_number,
        &destination.routing_number,
    ) {
        (Some(iban), None, None) => {
            let electronic = bank::normalized_iban(iban)
                .ok_or_else(|| ApiError::invalid("invalid_iban", "iban is not a valid IBAN"))?;
            let last4 = electronic[electronic.len().saturating_sub(4)..].to_owned();
            let fails = electronic
                .ends_with(CLOSED_IBAN_SUFFIX)
                .then_some(closed)
                .flatten();
            Ok((last4, fails))
        }
        (None, Some(account), Some(routing)) => {
            if !bank::is_account_number(account) {
                return Err(ApiError::invalid(
                    "invalid_account_number",
                    "account_number must be 4 to 17 digits",
                ));
            }
            if !bank::is_routing_number(routing) {
                return Err(ApiError::invalid(
                    "invalid_routing_number",
                    "routing_number must be 9 digits with a valid ABA checksum",
                ));
            }
            let last4 = account[account.len() - 4..].to_owned();
            let fails = (account == CLOSED_ACCOUNT_NUMBER)
                .then_some(closed)
                .flatten();
            Ok((last4, fails))
        }
        _ => Err(ApiError::invalid(
            "invalid_destination",
            "give either iban, or account_number and routing_number",
        )),
    }
}
