use std::fmt;

use super::FieldViolation;

/// MP's order code (e.g. `ORDER_1726522312360550400`): required, printable, at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderCode(String);

impl OrderCode {
    const MAX_BYTES: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let violation = |why: &str| FieldViolation::new("order_code", why);
        let code = raw.trim();
        if code.is_empty() {
            return Err(violation("is required"));
        }
        if code.len() > Self::MAX_BYTES {
            return Err(violation("must be at most 64 bytes"));
        }
        if !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(violation("may contain only letters, digits, '_' and '-'"));
        }
        Ok(Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp_order_codes_parse() {
        let code = OrderCode::parse(" ORDER_1726522312360550400 ").unwrap();
        assert_eq!(code.as_str(), "ORDER_1726522312360550400");
    }

    #[test]
    fn empty_and_odd_codes_are_rejected() {
        assert!(OrderCode::parse("").is_err());
        assert!(OrderCode::parse("   ").is_err());
        assert!(OrderCode::parse("ORDER_1&x=1").is_err());
        assert!(OrderCode::parse(&"A".repeat(65)).is_err());
    }
}
