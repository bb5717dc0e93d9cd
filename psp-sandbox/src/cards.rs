//! Card validation and the test cards. The card number is looked at once, when a card is
//! tokenized, and then dropped: what is kept is its outcome, brand, last four digits and
//! expiry.
//!
//! Test cards (any future expiry, any 3-4 digit CVC):
//!
//! | number | outcome |
//! |---|---|
//! | 4242424242424242, 5555555555554444 | succeeds |
//! | 4000000000000002 | declined `card_declined` |
//! | 4000000000009995 | declined `insufficient_funds` |
//! | 4000000000000069 | declined `expired_card` |
//! | 4000000000000127 | declined `incorrect_cvc` |
//! | 4000000000000119 | `processing_error` (retryable) once per charge reference, then succeeds |
//! | 4000056655665556, 5200828282828210 | succeeds (debit) |
//! | 4000000000000259 | succeeds, then the card holder disputes it in full (`fraudulent`) as soon as it is captured |
//! | 4000000000003220 | requires 3-D Secure: the charge is `requires_action` until the challenge page (`model/three_ds.rs`) is completed (then it succeeds, or is authorized) or failed or abandoned (then it fails, `authentication_failed`) |
//!
//! The processing error creates no charge: the retry with the same reference succeeds. Any
//! other number that passes the Luhn check succeeds too.

use serde::Deserialize;

use crate::bank::luhn_valid;
use crate::error::ApiError;
use crate::wire::CardDetails;

/// The body of `POST /v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardInput {
    /// Digits; spaces are ignored.
    pub number: String,
    pub exp_month: u32,
    /// Four digits.
    pub exp_year: u32,
    pub cvc: String,
}

impl std::fmt::Debug for CardInput {
    /// The number and the CVC are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardInput")
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish_non_exhaustive()
    }
}

/// What charging a card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    Succeeds,
    Declined {
        code: &'static str,
        message: &'static str,
    },
    /// A retryable processing error on the first attempt for each charge reference.
    ProcessingError,
    /// Succeeds; its capture opens a dispute of the whole amount.
    Disputed,
    /// Strong customer authentication: the charge waits for a 3-D Secure challenge.
    RequiresAuthentication,
}

/// A tokenized card, as the sandbox keeps it: no number, no CVC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub details: CardDetails,
    pub outcome: CardOutcome,
}

/// Validates a card; `token` names it. `today` is (year, month): the card must not have expired
/// before it (a card is valid to the end of its expiry month).
pub fn tokenize(input: &CardInput, token: String, today: (u32, u32)) -> Result<Card, ApiError> {
    let number: String = input.number.chars().filter(|c| *c != ' ').collect();
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "invalid_number",
            "the card number must be 12 to 19 digits",
        ));
    }
    if !luhn_valid(&number) {
        return Err(ApiError::invalid(
            "incorrect_number",
            "the card number fails the Luhn check",
        ));
    }
    if !(1..=12).contains(&input.exp_month) {
        return Err(ApiError::invalid(
            "invalid_expiry_month",
            "exp_month must be 1 to 12",
        ));
    }
    if !(1000..=9999).contains(&input.exp_year) || (input.exp_year, input.exp_month) < today {
        return Err(ApiError::invalid(
            "invalid_expiry_year",
            "the card has expired (exp_year is four digits)",
        ));
    }
    if !(3..=4).contains(&input.cvc.len()) || !input.cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "invalid_cvc",
            "cvc must be 3 or 4 digits",
        ));
    }
    let details = CardDetails {
        token,
        brand: brand(&number).to_owned(),
        last4: number[number.len() - 4..].to_owned(),
        exp_month: input.exp_month,
        exp_year: input.exp_year,
        funding: funding(&number).to_owned(),
    };
    Ok(Card {
        details,
        outcome: outcome(&number),
    })
}

/// The test cards that are declined: number, decline code, message.
const DECLINED_CARDS: [(&str, &str, &str); 4] = [
    (
        "4000000000000002",
        "card_declined",
        "Your card was declined.",
    ),
    (
        "4000000000009995",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    ("4000000000000069", "expired_card", "Your card has expired."),
    (
        "4000000000000127",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
];
const PROCESSING_ERROR_CARD: &str = "4000000000000119";
/// Succeeds, then is disputed at capture.
const DISPUTED_CARD: &str = "4000000000000259";
const THREE_DS_CARD: &str = "4000000000003220";

fn outcome(number: &str) -> CardOutcome {
    if number == PROCESSING_ERROR_CARD {
        return CardOutcome::ProcessingError;
    }
    if number == DISPUTED_CARD {
        return CardOutcome::Disputed;
    }
    if number == THREE_DS_CARD {
        return CardOutcome::RequiresAuthentication;
    }
    match DECLINED_CARDS.iter().find(|(card, _, _)| *card == number) {
        Some((_, code, message)) => CardOutcome::Declined { code, message },
        None => CardOutcome::Succeeds,
    }
}

impl CardOutcome {
    /// A stable name, for the saved state: `succeeds`, `processing_error` or the decline code.
    pub fn name(&self) -> &'static str {
        match self {
            CardOutcome::Succeeds => "succeeds",
            CardOutcome::ProcessingError => "processing_error",
            CardOutcome::Disputed => "disputed",
            CardOutcome::RequiresAuthentication => "requires_authentication",
            CardOutcome::Declined { code, .. } => code,
        }
    }

    /// The outcome a [`CardOutcome::name`] stands for.
    pub fn from_name(name: &str) -> Option<CardOutcome> {
        match name {
            "succeeds" => Some(CardOutcome::Succeeds),
            "processing_error" => Some(CardOutcome::ProcessingError),
            "disputed" => Some(CardOutcome::Disputed),
            "requires_authentication" => Some(CardOutcome::RequiresAuthentication),
            _ => DECLINED_CARDS
                .iter()
                .find(|(_, code, _)| *code == name)
                .map(|(_, code, message)| CardOutcome::Declined { code, message }),
        }
    }
}

fn brand(number: &str) -> &'static str {
    let prefix = |digits: usize| number[..digits].parse::<u32>().unwrap_or(0);
    match (prefix(1), prefix(2), prefix(4)) {
        (4, _, _) => "visa",
        (_, 51..=55, _) | (_, _, 2221..=2720) => "mastercard",
        (_, 34 | 37, _) => "amex",
        (_, 65, _) | (_, _, 6011) => "discover",
        _ => "unknown",
    }
}

fn funding(number: &str) -> &'static str {
    match number {
        "4000056655665556" | "5200828282828210" => "debit",
        _ => "credit",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: (u32, u32) = (2025, 6);

    fn input(number: &str, exp_month: u32, exp_year: u32, cvc: &str) -> CardInput {
        CardInput {
            number: number.to_owned(),
            exp_month,
            exp_year,
            cvc: cvc.to_owned(),
        }
    }

    fn card(number: &str) -> Result<Card, ApiError> {
        tokenize(&input(number, 12, 2030, "123"), "tok_1".to_owned(), TODAY)
    }

    #[test]
    fn test_cards_have_their_outcomes() {
        let visa = card("4242 4242 4242 4242").unwrap();
        assert_eq!(visa.outcome, CardOutcome::Succeeds);
        assert_eq!(visa.details.brand, "visa");
        assert_eq!(visa.details.last4, "4242");
        assert_eq!(visa.details.funding, "credit");
        assert_eq!(
            card("5555555555554444").unwrap().details.brand,
            "mastercard"
        );
        assert_eq!(card("5200828282828210").unwrap().details.funding, "debit");
        assert_eq!(card("378282246310005").unwrap().details.brand, "amex");
        assert_eq!(card("6011111111111117").unwrap().details.brand, "discover");
        let code = |number| match card(number).unwrap().outcome {
            CardOutcome::Declined { code, .. } => code,
            other => panic!("{number}: {other:?}"),
        };
        assert_eq!(code("4000000000000002"), "card_declined");
        assert_eq!(code("4000000000009995"), "insufficient_funds");
        assert_eq!(code("4000000000000069"), "expired_card");
        assert_eq!(code("4000000000000127"), "incorrect_cvc");
        assert_eq!(
            card("4000000000000119").unwrap().outcome,
            CardOutcome::ProcessingError
        );
        let disputed = card("4000000000000259").unwrap().outcome;
        assert_eq!(disputed, CardOutcome::Disputed);
        assert_eq!(CardOutcome::from_name(disputed.name()), Some(disputed));
        let three_ds = card("4000 0000 0000 3220").unwrap().outcome;
        assert_eq!(three_ds, CardOutcome::RequiresAuthentication);
        assert_eq!(CardOutcome::from_name(three_ds.name()), Some(three_ds));
    }

    #[test]
    fn invalid_cards_are_rejected() {
        let code = |input: CardInput| {
            tokenize(&input, "tok_1".to_owned(), TODAY)
                .unwrap_err()
                .code
        };
        assert_eq!(
            code(input("4242424242424241", 12, 2030, "123")),
            "incorrect_number"
        );
        assert_eq!(code(input("4242", 12, 2030, "123")), "invalid_number");
        assert_eq!(
            code(input("4242x24242424242", 12, 2030, "123")),
            "invalid_number"
        );
        assert_eq!(
            code(input("4242424242424242", 13, 2030, "123")),
            "invalid_expiry_month"
        );
        assert_eq!(
            code(input("4242424242424242", 0, 2030, "123")),
            "invalid_expiry_month"
        );
        assert_eq!(
            code(input("4242424242424242", 5, 2025, "123")),
            "invalid_expiry_year"
        );
        assert_eq!(
            code(input("4242424242424242", 12, 30, "123")),
            "invalid_expiry_year"
        );
        assert_eq!(
            code(input("4242424242424242", 12, 2030, "12")),
            "invalid_cvc"
        );
        assert_eq!(
            code(input("4242424242424242", 12, 2030, "12a")),
            "invalid_cvc"
        );
        assert!(tokenize(
            &input("4242424242424242", 6, 2025, "1234"),
            "t".into(),
            TODAY
        )
        .is_ok());
    }
}
