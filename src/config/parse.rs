//! Parsing helpers: each names its variable when a value is wrong.

use std::str::FromStr;

use url::Url;

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

pub(super) fn error(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.into(),
    }
}

/// Parses an optional setting with `FromStr`, naming the variable on failure.
pub(super) fn parse_or<T: FromStr>(
    variable: &'static str,
    raw: Option<&str>,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match raw.map(str::trim) {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| error(variable, format!("cannot parse {raw:?}: {e}"))),
    }
}

/// `parse_or` for counts and durations where 0 would disable the thing.
pub(super) fn parse_positive<T: FromStr + PartialEq + Default>(
    variable: &'static str,
    raw: Option<&str>,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let value = parse_or(variable, raw, default)?;
    if value == T::default() {
        return Err(error(variable, "must be greater than 0"));
    }
    Ok(value)
}

/// An absolute http(s) URL with a host.
pub(super) fn http_url(
    variable: &'static str,
    raw: &str,
    example: &str,
) -> Result<Url, ConfigError> {
    Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| {
            error(
                variable,
                format!("{raw:?} is not an absolute http(s) URL{example}"),
            )
        })
}

pub(super) fn non_empty(raw: Option<&String>) -> Option<&str> {
    raw.map(|s| s.trim()).filter(|s| !s.is_empty())
}
