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

/// Fields that carry bank account numbers, which may pass a Luhn check: their values are not
/// scanned on the bank-account route (every other field there is, `holder_name` included).
const BANK_NUMBER_FIELDS: &[&str] = &["iban", "account_number", "routing_number"];

/// Which values to scan for card numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Every key and value.
    Everything,
    /// Every key and value except the values of [`BANK_NUMBER_FIELDS`].
    ExceptBankNumbers,
}

/// Refuses bodies with card-data fields, or any key or value that holds a card number: 13 to 19
/// digits (any Unicode decimal digits, e.g. full-width) with a valid Luhn check digit, in one
/// piece or grouped by spaces of any kind, dashes, dots or slashes.
pub fn reject_card_data(body: &serde_json::Value, scan: Scan) -> Result<(), PayError> {
    if contains_card_data(body, None, scan) {
        return Err(PayError::invalid(
            "card_data_not_accepted",
            "card numbers and security codes must never be sent to tally-pay: tokenize the card at \
             the PSP (POST /v1/tokens there) and send the token to POST /v1/customers/{id}/cards",
        ));
    }
    Ok(())
}

fn contains_card_data(value: &serde_json::Value, key: Option<&str>, scan: Scan) -> bool {
    match value {
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| {
            CARD_FIELDS.contains(&k.to_ascii_lowercase().as_str())
                || contains_pan(k)
                || contains_card_data(v, Some(k), scan)
        }),
        serde_json::Value::Array(items) => items.iter().any(|v| contains_card_data(v, key, scan)),
        serde_json::Value::String(text) => {
            let exempt = scan == Scan::ExceptBankNumbers
                && key.is_some_and(|k| BANK_NUMBER_FIELDS.contains(&k));
            !exempt && contains_pan(text)
        }
        serde_json::Value::Number(n) => {
            !key.is_some_and(|k| k.starts_with("amount")) && looks_like_pan(&n.to_string())
        }
        _ => false,
    }
}

/// The value of a Unicode decimal digit (ASCII, full-width, Arabic-Indic, Devanagari, ...).
fn digit_value(c: char) -> Option<u32> {
    /// The zero of every run of ten decimal digits (Unicode category Nd) in common scripts.
    const ZEROS: &[u32] = &[
        0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66,
        0x0CE6, 0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946,
        0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0,
        0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x11066, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC,
        0x1D7F6, 0x1E950, 0x1FBF0,
    ];
    let code = u32::from(c);
    ZEROS
        .iter()
        .find(|zero| (**zero..**zero + 10).contains(&code))
        .map(|zero| code - zero)
}

/// Characters that may group the digits of a card number.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.' | '/' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{00AD}' | '\u{200B}'..='\u{200D}'
                | '\u{2060}' | '\u{FEFF}' | '\u{FF0D}' | '\u{FF0E}' | '\u{FF0F}' | '\u{30FB}'
        )
}

/// True when some free-standing run of digits and separators inside `text` holds a card
/// number. Digits glued to letters or `_` are part of an identifier (`ba_0000...`), not a card.
pub fn contains_pan(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let in_run = |c: char| digit_value(c).is_some() || is_separator(c);
    let glued = |c: Option<&char>| {
        c.is_some_and(|c| (c.is_alphanumeric() && digit_value(*c).is_none()) || *c == '_')
    };
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
        let run = &chars[start..end];
        let glued_before =
            digit_value(run[0]).is_some() && start > 0 && glued(chars.get(start - 1));
        let glued_after = digit_value(run[run.len() - 1]).is_some() && glued(chars.get(end));
        if !glued_before && !glued_after && run_holds_pan(run) {
            return true;
        }
        start = end;
    }
    false
}

/// Whether consecutive digit groups of a run (split at separators) spell a card number.
fn run_holds_pan(run: &[char]) -> bool {
    let groups: Vec<Vec<u32>> = run
        .split(|c| is_separator(*c))
        .filter(|g| !g.is_empty())
        .map(|g| g.iter().filter_map(|c| digit_value(*c)).collect())
        .collect();
    (0..groups.len()).any(|first| {
        let mut digits = Vec::new();
        groups[first..].iter().any(|group| {
            digits.extend_from_slice(group);
            digits.len() <= 19 && is_pan(&digits)
        })
    })
}

/// 13-19 digits (ASCII, optionally grouped by spaces or dashes) passing the Luhn check.
pub fn looks_like_pan(text: &str) -> bool {
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
    {
        return false;
    }
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    is_pan(&digits)
}

fn is_pan(digits: &[u32]) -> bool {
    // Card numbers are 13 to 19 digits and start with a major industry identifier of 2 to 6
    // (Mastercard 2-series, Amex, Visa, Mastercard, Discover/UnionPay).
    (13..=19).contains(&digits.len())
        && (2..=6).contains(&digits[0])
        && crate::domain::bank::luhn_valid(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn card_fields_and_numbers_are_refused() {
        let all = Scan::Everything;
        let bank = Scan::ExceptBankNumbers;
        assert!(reject_card_data(&json!({"token": "tok_1"}), all).is_ok());
        assert!(reject_card_data(&json!({"number": "x"}), all).is_err());
        assert!(reject_card_data(&json!({"card": {"CVC": "123"}}), bank).is_err());
        assert!(reject_card_data(&json!({"note": "4242 4242 4242 4242"}), all).is_err());
        assert!(
            reject_card_data(&json!({"note": "card: 4000-0000-0000-0002, thanks"}), all).is_err()
        );
        assert!(reject_card_data(&json!({"note": "order 12345 of 2026"}), all).is_ok());
        assert!(reject_card_data(&json!({"id": "ba_00000000000000ff"}), all).is_ok());
        assert!(reject_card_data(&json!({"id": "x4242424242424242"}), all).is_ok());
        assert!(reject_card_data(&json!({"x": [4242424242424242u64]}), all).is_err());
        assert!(reject_card_data(&json!({"iban": "4242 4242 4242 4242"}), bank).is_ok());
        assert!(reject_card_data(&json!({"holder_name": "4242 4242 4242 4242"}), bank).is_err());
        assert!(reject_card_data(&json!({"4242424242424242": 1}), all).is_err());
        // Amounts are never mistaken for card numbers.
        assert!(reject_card_data(&json!({"amount": 4242424242424u64}), all).is_ok());
    }

    #[test]
    fn unicode_digits_and_any_separator_are_seen_through() {
        for text in [
            "4242.4242.4242.4242",
            "4242/4242/4242/4242",
            "4242\u{00A0}4242\u{00A0}4242\u{00A0}4242",
            "4242\u{202F}4242\u{2007}4242\u{3000}4242",
            "４２４２４２４２４２４２４２４２",
            "４２４２－４２４２－４２４２－４２４２",
            "4242\u{2013}4242\u{2014}4242\u{2212}4242",
            "4242\u{200B}424242424242",
            "\u{0664}\u{0662}\u{0664}\u{0662}424242424242",
            "card 4242 4242 4242 4242 exp 12/34",
            "ref 2026 4242 4242 4242 4242",
        ] {
            assert!(contains_pan(text), "{text:?} passed the screen");
        }
        for text in [
            "order 12345 of 2026",
            "2026-01-02",
            "call 555.123.4567",
            "ba_4242424242424242",
        ] {
            assert!(!contains_pan(text), "{text:?} was refused");
        }
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
