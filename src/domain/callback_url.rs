use url::Url;

use super::FieldViolation;

/// An absolute http(s) URL that MP can POST alarms to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(Url);

impl CallbackUrl {
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let violation = |why: String| FieldViolation::new("http_url", why);
        let url = Url::parse(raw).map_err(|e| violation(format!("is not an absolute URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(violation(format!(
                "must be http or https, got {}",
                url.scheme()
            )));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_http_urls_are_accepted() {
        let url = CallbackUrl::parse("https://gw.example.com/mp/alarm-callback?token=x").unwrap();
        assert_eq!(
            url.as_str(),
            "https://gw.example.com/mp/alarm-callback?token=x"
        );
    }

    #[test]
    fn relative_and_non_http_urls_are_rejected() {
        for bad in ["/mp/alarm-callback", "ftp://x.example/", "mailto:a@b.c", ""] {
            assert!(
                CallbackUrl::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
