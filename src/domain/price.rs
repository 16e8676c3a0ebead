use serde_json::value::RawValue;

use super::FieldViolation;

/// A retail price: a non-negative decimal such as `12` or `12.50`, kept as
/// written and, by construction, a valid JSON number for MP's body.
#[derive(Debug, Clone)]
pub struct Price(Box<RawValue>);

impl Price {
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let malformed = || {
            FieldViolation::new(
                "price",
                format!("must be a non-negative decimal like \"12.50\", got {raw:?}"),
            )
        };
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(fraction) {
            return Err(malformed());
        }
        if whole.len() > 1 && whole.starts_with('0') {
            return Err(FieldViolation::new(
                "price",
                format!("must not start with a 0 (write 7, not 007), got {raw:?}"),
            ));
        }
        if whole.len() > 15 || fraction.len() > 6 {
            return Err(FieldViolation::new(
                "price",
                "must have at most 15 integer and 6 fraction digits",
            ));
        }
        RawValue::from_string(raw.to_owned())
            .map(Self)
            .map_err(|_| malformed())
    }

    /// The decimal as written.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The decimal as the JSON number MP's body carries.
    pub fn as_json(&self) -> &RawValue {
        &self.0
    }
}

impl PartialEq for Price {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Price {}

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
        for bad in [
            "", "-1", "1.", ".5", "1e3", "12,50", " 1", "NaN", "1.2.3", "007", "00.5",
        ] {
            assert!(Price::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
