use std::fmt;

use super::FieldViolation;

/// The id that ties a gRPC call to its MP call (MP's `requestId`); at most 500 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId {
    value: String,
    /// Made up by the gateway: no caller can send it again.
    generated: bool,
}

impl RequestId {
    pub const MAX_BYTES: usize = 500;

    /// Takes the caller's id, or generates one (a UUID v4) when it is empty.
    pub fn parse_or_generate(raw: &str) -> Result<Self, FieldViolation> {
        if raw.is_empty() {
            return Ok(Self {
                value: uuid::Uuid::new_v4().to_string(),
                generated: true,
            });
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(FieldViolation::new(
                "request_id",
                format!(
                    "must be at most {} bytes, got {}",
                    Self::MAX_BYTES,
                    raw.len()
                ),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldViolation::new(
                "request_id",
                "must not contain control characters",
            ));
        }
        Ok(Self {
            value: raw.to_owned(),
            generated: false,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// True when the caller sent no id and the gateway made one up.
    pub fn was_generated(&self) -> bool {
        self.generated
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_id_is_generated() {
        let a = RequestId::parse_or_generate("").unwrap();
        let b = RequestId::parse_or_generate("").unwrap();
        assert_eq!(a.as_str().len(), 36);
        assert_ne!(a, b);
        assert!(a.was_generated());
        assert!(
            !RequestId::parse_or_generate("mine")
                .unwrap()
                .was_generated()
        );
    }

    #[test]
    fn an_id_of_500_bytes_is_kept_and_501_rejected() {
        let ok = "x".repeat(500);
        assert_eq!(RequestId::parse_or_generate(&ok).unwrap().as_str(), ok);
        assert!(RequestId::parse_or_generate(&"x".repeat(501)).is_err());
    }

    #[test]
    fn control_characters_are_rejected() {
        assert!(RequestId::parse_or_generate("a\nb").is_err());
    }
}
