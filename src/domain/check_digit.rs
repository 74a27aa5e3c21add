//! The modulus-10, weights 2-1 check digit shared by insurer numbers and facility codes.

/// Check digit over `body` (ASCII digits only): from the rightmost digit, multiply
/// alternately by 2, 1, 2, ...; add the digits of each product; the check is
/// `(10 - sum mod 10) mod 10`. `None` when `body` is empty or not all digits.
pub fn oqs_check_digit(body: &str) -> Option<u8> {
    if body.is_empty() {
        return None;
    }
    let mut sum = 0u32;
    for (i, c) in body.bytes().rev().enumerate() {
        let d = u32::from(c.checked_sub(b'0').filter(|d| *d <= 9)?);
        let p = if i % 2 == 0 { d * 2 } else { d };
        sum += p / 10 + p % 10;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_from_the_domain() {
        assert_eq!(oqs_check_digit("3312001"), Some(5));
        assert_eq!(oqs_check_digit("0113001"), Some(2));
        assert_eq!(oqs_check_digit("0613048"), Some(8));
        assert_eq!(oqs_check_digit("011011371"), Some(9));
        assert_eq!(oqs_check_digit("341071236"), Some(2));
    }

    #[test]
    fn rejects_non_digits_and_empty() {
        assert_eq!(oqs_check_digit(""), None);
        assert_eq!(oqs_check_digit("12a4"), None);
        assert_eq!(oqs_check_digit("１２"), None);
    }
}
