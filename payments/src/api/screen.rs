//! Card data never reaches tally-pay's storage or logs: request bodies are screened before
//! anything else looks at them, and a body carrying a card number or CVV is refused.

use crate::error::PayError;

/// Field names that only card data uses.
const CARD_FIELDS: &[&str] = &[
    "number",
    "card_number",
    "cardnumber",
    "pan",
    "cvc",
    "cvv",
    "cvv2",
    "cvc2",
    "security_code",
];

/// Refuses bodies with card-data fields, or (with `scan_values`) any value that looks like a card
/// number: 13 to 19 digits (spaces and dashes ignored) with a valid Luhn check digit.
pub fn reject_card_data(body: &serde_json::Value, scan_values: bool) -> Result<(), PayError> {
    if contains_card_data(body, None, scan_values) {
        return Err(PayError::invalid(
            "card_data_not_accepted",
            "card numbers and security codes must never be sent to tally-pay: tokenize the card at \
             the PSP (POST /v1/tokens there) and send the token to POST /v1/customers/{id}/cards",
        ));
    }
    Ok(())
}

fn contains_card_data(value: &serde_json::Value, key: Option<&str>, scan_values: bool) -> bool {
    match value {
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| {
            CARD_FIELDS.contains(&k.to_ascii_lowercase().as_str())
                || contains_card_data(v, Some(k), scan_values)
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .any(|v| contains_card_data(v, key, scan_values)),
        serde_json::Value::String(text) => scan_values && contains_pan(text),
        serde_json::Value::Number(n) => {
            scan_values
                && !key.is_some_and(|k| k.starts_with("amount"))
                && looks_like_pan(&n.to_string())
        }
        _ => false,
    }
}

/// True when some free-standing run of digits, spaces and dashes inside `text` looks like a card
/// number. Digits glued to letters or `_` are part of an identifier (`ba_0000...`), not a card.
pub fn contains_pan(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let in_run = |c: char| c.is_ascii_digit() || c == ' ' || c == '-';
    let glued = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut start = 0;
    while start < chars.len() {
        if !in_run(chars[start]) {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < chars.len() && in_run(chars[end]) {
            end += 1;
        }
        let run: String = chars[start..end].iter().collect();
        let leading_digit = chars[start].is_ascii_digit();
        let trailing_digit = chars[end - 1].is_ascii_digit();
        let glued_before = leading_digit && start > 0 && glued(chars.get(start - 1));
        let glued_after = trailing_digit && glued(chars.get(end));
        let free = !glued_before && !glued_after;
        if free && looks_like_pan(run.trim_matches([' ', '-'])) {
            return true;
        }
        start = end;
    }
    false
}

/// 13-19 digits, optionally grouped by spaces or dashes, passing the Luhn check.
pub fn looks_like_pan(text: &str) -> bool {
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
    {
        return false;
    }
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    // Card numbers are 13 to 19 digits and start with a major industry identifier of 2 to 6
    // (Mastercard 2-series, Amex, Visa, Mastercard, Discover/UnionPay).
    if !(13..=19).contains(&digits.len()) || !(2..=6).contains(&digits[0]) {
        return false;
    }
    crate::bank::luhn_valid(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn card_fields_and_numbers_are_refused() {
        assert!(reject_card_data(&json!({"token": "tok_1"}), true).is_ok());
        assert!(reject_card_data(&json!({"number": "x"}), true).is_err());
        assert!(reject_card_data(&json!({"card": {"CVC": "123"}}), false).is_err());
        assert!(reject_card_data(&json!({"note": "4242 4242 4242 4242"}), true).is_err());
        assert!(
            reject_card_data(&json!({"note": "card: 4000-0000-0000-0002, thanks"}), true).is_err()
        );
        assert!(reject_card_data(&json!({"note": "order 12345 of 2026"}), true).is_ok());
        assert!(reject_card_data(&json!({"id": "ba_00000000000000ff"}), true).is_ok());
        assert!(reject_card_data(&json!({"id": "x4242424242424242"}), true).is_ok());
        assert!(reject_card_data(&json!({"x": [4242424242424242u64]}), true).is_err());
        assert!(reject_card_data(&json!({"note": "4242 4242 4242 4242"}), false).is_ok());
        // Amounts are never mistaken for card numbers.
        assert!(reject_card_data(&json!({"amount": 4242424242424u64}), true).is_ok());
    }

    #[test]
    fn luhn_check() {
        assert!(looks_like_pan("4242424242424242"));
        assert!(looks_like_pan("4000-0000-0000-0002"));
        assert!(!looks_like_pan("4242424242424241"));
        assert!(!looks_like_pan("1234"));
        assert!(!looks_like_pan("abcd efgh ijkl mnop"));
    }
}
