//! Fixtures for the model's tests: a model with fixed faults and fees, a fixed "now", cards.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{ChargeInput, FeeSchedule, Model};
use crate::cards::CardInput;
use crate::faults::Faults;

pub fn fees() -> FeeSchedule {
    FeeSchedule {
        percent: Decimal::new(29, 1),
        fixed: 30,
    }
}

pub fn model() -> Model {
    let faults = Faults {
        seed: Some(7),
        ..Faults::default()
    };
    Model::new(faults, fees())
}

pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_741_305_600, 0).unwrap() // 2025-03-07T00:00:00Z
}

pub fn token(model: &mut Model, number: &str) -> String {
    let input = CardInput {
        number: number.to_owned(),
        exp_month: 12,
        exp_year: 2040,
        cvc: "123".to_owned(),
    };
    model.tokenize(&input, now()).unwrap().token
}

pub fn charge_input(reference: &str, token: &str, amount: u64) -> ChargeInput {
    ChargeInput {
        reference: reference.to_owned(),
        card_token: token.to_owned(),
        amount,
        currency: "USD".to_owned(),
        description: String::new(),
        capture: true,
    }
}
