//! Bank account validation and masking: IBAN (ISO 13616, mod-97 and per-country length, by
//! `iban_validate`) or a US account number with an ABA routing number (checksum 3-7-1).

/// Why a bank account was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    #[error("iban is not valid: {0}")]
    Iban(String),
    #[error("routing_number must be 9 digits with a valid ABA checksum")]
    Routing,
    #[error("account_number must be 4 to 17 digits")]
    AccountNumber,
    #[error("give either `iban`, or `account_number` with `routing_number` (US)")]
    Shape,
    #[error("holder_name must be 1 to 140 characters")]
    HolderName,
}

/// The normalized IBAN (no spaces, upper case) and its country.
pub fn validate_iban(text: &str) -> Result<(String, String), BankError> {
    use iban::IbanLike;
    let iban: iban::Iban = text
        .parse()
        .map_err(|e: iban::ParseIbanError| BankError::Iban(e.to_string()))?;
    let electronic = iban.electronic_str().to_string();
    Ok((electronic.clone(), iban.country_code().to_string()))
}

/// ABA routing number checksum: 3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) = 0 mod 10.
pub fn validate_routing(text: &str) -> Result<(), BankError> {
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 9 || text.len() != 9 {
        return Err(BankError::Routing);
    }
    let sum = 3 * (digits[0] + digits[3] + digits[6])
        + 7 * (digits[1] + digits[4] + digits[7])
        + (digits[2] + digits[5] + digits[8]);
    if sum.is_multiple_of(10) {
        Ok(())
    } else {
        Err(BankError::Routing)
    }
}

pub fn validate_account_number(text: &str) -> Result<(), BankError> {
    if (4..=17).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(BankError::AccountNumber)
    }
}

/// The Luhn checksum of card numbers: double every second digit from the right; the sum of the
/// digits must be a multiple of 10. `digits` are values 0..=9.
pub fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, digit)| match (index % 2 == 1, digit * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => *digit,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `****` and the last four characters.
pub fn mask(number: &str) -> String {
    let tail: String = number
        .chars()
        .skip(number.chars().count().saturating_sub(4))
        .collect();
    format!("****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked_and_normalized() {
        let (iban, country) = validate_iban("DE89 3704 0044 0532 0130 00").unwrap();
        assert_eq!(iban, "DE89370400440532013000");
        assert_eq!(country, "DE");
        assert!(validate_iban("DE89370400440532013001").is_err(), "checksum");
        assert!(validate_iban("DE8937040044053201300").is_err(), "length");
        assert!(validate_iban("hello").is_err());
    }

    #[test]
    fn routing_numbers_use_the_aba_checksum() {
        assert_eq!(validate_routing("110000000"), Ok(()));
        assert_eq!(validate_routing("021000021"), Ok(()));
        assert_eq!(validate_routing("021000022"), Err(BankError::Routing));
        assert_eq!(validate_routing("12345"), Err(BankError::Routing));
        assert_eq!(validate_routing("11000000a"), Err(BankError::Routing));
    }

    #[test]
    fn luhn_checksum() {
        let digits = |s: &str| s.chars().filter_map(|c| c.to_digit(10)).collect::<Vec<_>>();
        assert!(luhn_valid(&digits("4242424242424242")));
        assert!(luhn_valid(&digits("79927398713")));
        assert!(!luhn_valid(&digits("4242424242424241")));
    }

    #[test]
    fn account_numbers_and_masks() {
        assert_eq!(validate_account_number("000123456789"), Ok(()));
        assert!(validate_account_number("12").is_err());
        assert!(validate_account_number("12345x").is_err());
        assert_eq!(mask("000123456789"), "****6789");
        assert_eq!(mask("12"), "****12");
    }
}
