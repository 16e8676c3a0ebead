//! MP's JSON, exactly as it comes over the wire: an envelope around loosely
//! typed data (numbers as strings, `null` anywhere). Turning it into typed
//! values happens in [`super::decode`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// Every MP answer: `{"code":200,"msg":"...","data":...,"requestId":...}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    #[serde(deserialize_with = "loose_i64")]
    pub code: i64,
    #[serde(default, deserialize_with = "loose_string")]
    pub msg: Option<String>,
    #[serde(default = "Option::default")]
    pub data: Option<T>,
}

/// A field MP may send as a string, a number, a bool or null; kept as text.
pub type Loose = Option<String>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductRow {
    #[serde(default, deserialize_with = "loose_string")]
    pub goods_id: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub goods_name: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub product_id: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub order_quantity: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub product_name: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub sim_group_code: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub sim_group_name: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub cover_country: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub cover_country_name: Loose,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatusRow {
    #[serde(default, deserialize_with = "loose_string")]
    pub eid: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub package_code: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub status: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub actual_start_time: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub planned_end_time: Loose,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRow {
    #[serde(default, deserialize_with = "loose_string")]
    pub eid: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub package_code: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub package_flow: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub package_used_flow: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub actual_start_time: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub planned_end_time: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub cycle: Loose,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailyTrafficData {
    #[serde(default, deserialize_with = "loose_string")]
    pub package_code: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub actual_start_time: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub planned_end_time: Loose,
    #[serde(default)]
    pub daily_traffic: Option<Vec<DailyTrafficRow>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailyTrafficRow {
    #[serde(default, deserialize_with = "loose_string")]
    pub flow_use_time: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub use_flow: Loose,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationData {
    #[serde(default, deserialize_with = "loose_string")]
    pub iccid: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub qr_code: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub order_code: Loose,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopUpData {
    #[serde(default, deserialize_with = "loose_string")]
    pub renew_period: Loose,
    #[serde(default, deserialize_with = "loose_string")]
    pub order_code: Loose,
}

/// Body of `POST v2/activationCode`; absent options are not sent.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationCodeBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goods_id: Option<u64>,
    pub product_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_quantity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iccid: Option<&'a str>,
    /// A JSON number written exactly as the caller gave it (no float rounding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activate_flag: Option<&'static str>,
    pub request_id: &'a str,
}

/// Body of `POST v2/topUp`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopUpBody<'a> {
    pub order_code: &'a str,
    pub request_id: &'a str,
}

/// Body of `POST switchOrder`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchOrderBody<'a> {
    pub order_code: &'a str,
    pub switch_button: &'static str,
    pub request_id: &'a str,
}

/// Body of `POST saveAlarmCallbackInterface`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveCallbackBody<'a> {
    pub reseller_code: &'a str,
    pub http_method: &'static str,
    pub http_url: &'a str,
    pub request_id: &'a str,
}

/// Accepts `"x"`, `12`, `1.5`, `true` or `null`; objects and arrays are errors.
pub fn loose_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "expected a scalar, got {other}"
        ))),
    }
}

fn loose_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let text = loose_string(d)?.ok_or_else(|| serde::de::Error::custom("code is null"))?;
    text.trim()
        .parse()
        .map_err(|_| serde::de::Error::custom(format!("code is not an integer: {text:?}")))
}
