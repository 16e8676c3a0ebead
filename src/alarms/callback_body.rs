//! MP's alarm callback body (mp-api-v2.md section 4.5.2) into an [`AlarmReport`].
//! MP documents the fields but not the encoding, so JSON and form bodies are both read.

use serde::Deserialize;

use super::AlarmReport;
use crate::mp::wire::loose_string;

/// Why a callback body was refused (answered 400; nothing is published).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallbackBodyError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("packageUsedRate {0:?} is not a percentage like \"84%\" (at most {MAX_PERCENT}%)")]
    BadRate(String),
    /// A field too long or with characters MP never sends (control
    /// characters, bidi overrides, ...): it would only cost memory and log space.
    #[error("{field} must be {rule}")]
    BadField {
        field: &'static str,
        rule: &'static str,
    },
}

/// The highest `packageUsedRate` taken: MP reports past 100 % for an
/// overused package, never orders of magnitude past it.
const MAX_PERCENT: u32 = 1000;

/// What MP's values look like, field by field (mp-api-v2.md 4.5.2 and its examples).
struct FieldRule {
    field: &'static str,
    rule: &'static str,
    max_len: usize,
    allowed: fn(u8) -> bool,
}

const EID: FieldRule = FieldRule {
    field: "eid",
    rule: "1 to 32 digits",
    max_len: 32,
    allowed: |b| b.is_ascii_digit(),
};
const PACKAGE_CODE: FieldRule = FieldRule {
    field: "packageCode",
    rule: "1 to 64 letters, digits, '_' or '-'",
    max_len: 64,
    allowed: is_code_byte,
};
const ORDER_CODE: FieldRule = FieldRule {
    field: "orderCode",
    rule: "1 to 64 letters, digits, '_' or '-'",
    max_len: 64,
    allowed: is_code_byte,
};
const REQUEST_ID: FieldRule = FieldRule {
    field: "requestId",
    rule: "at most 128 letters, digits, '_', '-', '.' or ':'",
    max_len: 128,
    allowed: |b| is_code_byte(b) || b == b'.' || b == b':',
};

fn is_code_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl FieldRule {
    fn check(&self, value: String) -> Result<String, CallbackBodyError> {
        if value.len() <= self.max_len && value.bytes().all(self.allowed) {
            Ok(value)
        } else {
            Err(CallbackBodyError::BadField {
                field: self.field,
                rule: self.rule,
            })
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallbackBody {
    #[serde(default, deserialize_with = "loose_string")]
    eid: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    package_code: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    order_code: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    package_used_rate: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    request_id: Option<String>,
}

/// Parses a callback body. `received_at_millis` is when the gateway got it.
pub fn parse_callback(
    body: &[u8],
    received_at_millis: i64,
) -> Result<AlarmReport, CallbackBodyError> {
    let fields = if body.trim_ascii_start().starts_with(b"{") {
        serde_json::from_slice::<CallbackBody>(body)
            .map_err(|e| CallbackBodyError::Json(e.to_string()))?
    } else {
        from_form(body)
    };
    let required = |value: Option<String>, name: &'static str| {
        value
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or(CallbackBodyError::Missing(name))
    };
    let used_rate = required(fields.package_used_rate, "packageUsedRate")?;
    Ok(AlarmReport {
        used_percent: parse_used_percent(&used_rate)?,
        eid: EID.check(required(fields.eid, "eid")?)?,
        package_code: PACKAGE_CODE.check(required(fields.package_code, "packageCode")?)?,
        order_code: ORDER_CODE.check(required(fields.order_code, "orderCode")?)?,
        used_rate,
        request_id: fields
            .request_id
            .filter(|r| !r.is_empty())
            .map(|r| REQUEST_ID.check(r))
            .transpose()?,
        received_at_millis,
    })
}

fn from_form(body: &[u8]) -> CallbackBody {
    let mut fields = CallbackBody::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        let slot = match key.as_ref() {
            "eid" => &mut fields.eid,
            "packageCode" => &mut fields.package_code,
            "orderCode" => &mut fields.order_code,
            "packageUsedRate" => &mut fields.package_used_rate,
            "requestId" => &mut fields.request_id,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    fields
}

/// `"84%"` → 84; `"84.6%"` → 84 (the threshold crossed); `"84"` is accepted too.
pub fn parse_used_percent(raw: &str) -> Result<u32, CallbackBodyError> {
    let bad = || CallbackBodyError::BadRate(raw.to_owned());
    let number = raw.trim().trim_end_matches('%').trim();
    let whole = number.split_once('.').map_or(number, |(whole, fraction)| {
        if fraction.bytes().all(|b| b.is_ascii_digit()) {
            whole
        } else {
            "x"
        }
    });
    if raw.len() > 16
        || whole.is_empty()
        || whole.len() > 4
        || !whole.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    whole
        .parse()
        .ok()
        .filter(|percent| *percent <= MAX_PERCENT)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENTED: &str = r#"{"eid":"89049032000001000000128255728753","packageCode":"LP14230831004073","orderCode":"ORDER_1726522312360550400","packageUsedRate":"84%","requestId":"202309251611-1683713932415610880"}"#;

    #[test]
    fn the_documented_body_parses() {
        let report = parse_callback(DOCUMENTED.as_bytes(), 7).unwrap();
        assert_eq!(report.used_percent, 84);
        assert_eq!(report.used_rate, "84%");
        assert_eq!(report.order_code, "ORDER_1726522312360550400");
        assert_eq!(
            report.request_id.as_deref(),
            Some("202309251611-1683713932415610880")
        );
        assert_eq!(report.received_at_millis, 7);
    }

    #[test]
    fn a_form_body_parses_too() {
        let body = b"eid=8904&packageCode=LP1&orderCode=ORDER_1&packageUsedRate=53%25";
        let report = parse_callback(body, 0).unwrap();
        assert_eq!(report.used_percent, 53);
        assert_eq!(report.request_id, None);
    }

    #[test]
    fn missing_fields_and_bad_rates_are_named() {
        let no_order = r#"{"eid":"1","packageCode":"LP1","packageUsedRate":"53%"}"#;
        assert_eq!(
            parse_callback(no_order.as_bytes(), 0),
            Err(CallbackBodyError::Missing("orderCode"))
        );
        let bad_rate =
            r#"{"eid":"1","packageCode":"LP1","orderCode":"O","packageUsedRate":"lots"}"#;
        assert!(matches!(
            parse_callback(bad_rate.as_bytes(), 0),
            Err(CallbackBodyError::BadRate(_))
        ));
        assert!(matches!(
            parse_callback(b"{not json", 0),
            Err(CallbackBodyError::Json(_))
        ));
    }

    #[test]
    fn rates_are_read_leniently_but_strictly_numeric() {
        assert_eq!(parse_used_percent("100%"), Ok(100));
        assert_eq!(parse_used_percent(" 53 % "), Ok(53));
        assert_eq!(parse_used_percent("84.6%"), Ok(84));
        assert_eq!(parse_used_percent("84"), Ok(84));
        assert_eq!(parse_used_percent("1000%"), Ok(1000));
        for bad in [
            "",
            "%",
            "-5%",
            "84.x%",
            "1e3%",
            "99999%",
            "1001%",
            "84.00000000000000%",
        ] {
            assert!(parse_used_percent(bad).is_err(), "{bad:?}");
        }
    }

    fn with(field: &str, value: &str) -> String {
        let mut body: serde_json::Value = serde_json::from_str(DOCUMENTED).unwrap();
        body[field] = value.into();
        body.to_string()
    }

    #[test]
    fn fields_longer_or_stranger_than_mps_are_refused_by_name() {
        let long = "7".repeat(60_000);
        let cases = [
            ("eid", long.as_str()),
            ("eid", "8904903200000100000012825572875a"),
            ("orderCode", "ORDER_\u{202e}1"),
            ("orderCode", "ORDER 1"),
            ("packageCode", &"L".repeat(65)),
            ("requestId", &"r".repeat(129)),
            ("requestId", "line\nbreak"),
        ];
        for (field, value) in cases {
            let refused = parse_callback(with(field, value).as_bytes(), 0);
            assert!(
                matches!(refused, Err(CallbackBodyError::BadField { field: f, .. }) if f == field),
                "{field}={value:.40?}: {refused:?}"
            );
        }
        for (field, value) in [
            ("requestId", "b0c3c7e4-6a8e-4e4f-9f4e-2b2d1b1a9c1d"),
            ("requestId", &"r".repeat(128)),
            ("orderCode", "ORDER_1726522312360550400"),
        ] {
            assert!(
                parse_callback(with(field, value).as_bytes(), 0).is_ok(),
                "{field}"
            );
        }
    }
}
