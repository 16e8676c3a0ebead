use super::FieldViolation;

/// A retail price: a non-negative decimal such as `12` or `12.50`, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price(String);

impl Price {
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(fraction) {
            return Err(FieldViolation::new(
                "price",
                format!("must be a non-negative decimal like \"12.50\", got {raw:?}"),
            ));
        }
        if whole.len() > 15 || fraction.len() > 6 {
            return Err(FieldViolation::new(
                "price",
                "must have at most 15 integer and 6 fraction digits",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The decimal as written, a valid JSON number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_accepted_as_written() {
        for ok in ["0", "12", "12.50", "0.01"] {
            assert_eq!(Price::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn negative_and_malformed_prices_are_rejected() {
        for bad in ["", "-1", "1.", ".5", "1e3", "12,50", " 1", "NaN", "1.2.3"] {
            assert!(Price::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
