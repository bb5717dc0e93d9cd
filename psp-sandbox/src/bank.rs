//! The checks a bank would make on a payout destination, and the card number checksum: IBANs
//! (ISO 13616: mod-97 and the country's length, by `iban_validate`), US account numbers, and
//! ABA routing numbers (checksum 3-7-1).

/// The IBAN in electronic form (no spaces, upper case), or `None` when it is not a valid IBAN.
pub fn normalized_iban(text: &str) -> Option<String> {
    use iban::IbanLike;
    let iban: iban::Iban = text.parse().ok()?;
    Some(iban.electronic_str().to_owned())
}

/// 4 to 17 digits.
pub fn is_account_number(text: &str) -> bool {
    (4..=17).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// 9 digits with 3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) a multiple of 10.
pub fn is_routing_number(text: &str) -> bool {
    if text.len() != 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digit = |index: usize| u32::from(text.as_bytes()[index] - b'0');
    let weighted: u32 = (0..9)
        .map(|index| [3, 7, 1][index % 3] * digit(index))
        .sum();
    weighted.is_multiple_of(10)
}

/// The Luhn checksum of a card number given as ASCII digits: every second digit from the right
/// doubled (less 9 when above 9), and the sum a multiple of 10.
pub fn luhn_valid(number: &str) -> bool {
    let mut sum = 0;
    for (index, byte) in number.bytes().rev().enumerate() {
        if !byte.is_ascii_digit() {
            return false;
        }
        let digit = u32::from(byte - b'0');
        sum += match index % 2 {
            1 if digit * 2 > 9 => digit * 2 - 9,
            1 => digit * 2,
            _ => digit,
        };
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked_and_normalized() {
        assert_eq!(
            normalized_iban("DE89 3704 0044 0532 0130 00").as_deref(),
            Some("DE89370400440532013000")
        );
        assert_eq!(normalized_iban("DE89370400440532013001"), None);
        assert_eq!(normalized_iban("DE8937040044053201300"), None);
        assert_eq!(normalized_iban("hello"), None);
    }

    #[test]
    fn routing_and_account_numbers() {
        assert!(is_routing_number("110000000"));
        assert!(is_routing_number("021000021"));
        assert!(!is_routing_number("021000022"));
        assert!(!is_routing_number("12345"));
        assert!(!is_routing_number("11000000a"));
        assert!(is_account_number("000123456789"));
        assert!(!is_account_number("12"));
        assert!(!is_account_number("12345x"));
    }

    #[test]
    fn luhn_checksum() {
        assert!(luhn_valid("4242424242424242"));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("4242424242424241"));
        assert!(!luhn_valid("42424242424242x2"));
    }
}
