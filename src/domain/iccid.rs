use std::fmt;

use super::FieldViolation;

/// An eSIM's ICCID: 18 to 22 digits whose last digit is a valid Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iccid(String);

impl Iccid {
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let violation = |why: &str| FieldViolation::new("iccid", why);
        if !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(violation("must contain digits only"));
        }
        if !(18..=22).contains(&raw.len()) {
            return Err(violation(&format!(
                "must be 18 to 22 digits long, got {}",
                raw.len()
            )));
        }
        if !luhn_valid(raw) {
            return Err(violation("has a wrong check digit (Luhn)"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Luhn check digit that completes `payload` (ASCII digits).
pub fn luhn_check_digit(payload: &str) -> u8 {
    // Doubling starts at the rightmost payload digit, since the check digit follows it.
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            // Callers pass ASCII digits; anything else must not panic.
            let d = u32::from(b.wrapping_sub(b'0') % 10);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn luhn_valid(digits: &str) -> bool {
    let (payload, check) = digits.split_at(digits.len() - 1);
    luhn_check_digit(payload) == check.as_bytes()[0] - b'0'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp_documented_iccid_is_valid() {
        // From the MP document's activationCode example.
        assert!(Iccid::parse("8943108169999589689").is_ok());
    }

    #[test]
    fn a_wrong_check_digit_is_rejected() {
        let err = Iccid::parse("8943108169999589680").unwrap_err();
        assert_eq!(err.field, "iccid");
        assert!(err.description.contains("Luhn"));
    }

    #[test]
    fn lengths_outside_18_to_22_are_rejected() {
        assert!(Iccid::parse("89431081699995896").is_err()); // 17
        assert!(Iccid::parse("89431081699995896891234").is_err()); // 23
    }

    #[test]
    fn non_digits_are_rejected() {
        assert!(Iccid::parse("894310816999958968a").is_err());
        assert!(Iccid::parse("").is_err());
    }

    #[test]
    fn check_digit_completes_a_payload() {
        let payload = "894310816999958968";
        let full = format!("{payload}{}", luhn_check_digit(payload));
        assert_eq!(full, "8943108169999589689");
    }
}
