//! MP's JSON on the wire: the envelope, the request bodies and the answer
//! shapes, spelled as mp-api-v2.md spells them (camelCase, numbers as strings,
//! times as `yyyy-MM-dd HH:mm:ss` in UTC+08:00).

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::errors::BusinessError;

/// MP reports local times in China Standard Time.
pub(crate) const MP_OFFSET: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// A time as MP writes it.
pub(crate) fn mp_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&MP_OFFSET)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// MB as MP writes them: a string with two decimals.
pub(crate) fn mp_megabytes(mb: f64) -> String {
    format!("{mb:.2}")
}

/// The envelope around every answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    code: i64,
    msg: String,
    data: T,
    request_id: Option<String>,
}

/// A successful answer carrying `data`.
pub(crate) fn ok<T: Serialize>(request_id: Option<String>, data: T) -> Response {
    envelope(StatusCode::OK, 200, "Success".to_owned(), data, request_id)
}

/// A business error: HTTP 200, MP's `code` and `msg`, no data.
pub(crate) fn business(request_id: Option<String>, code: i64, msg: String) -> Response {
    envelope(StatusCode::OK, code, msg, (), request_id)
}

/// Either answer, from a handler's result.
pub(crate) fn reply<T: Serialize>(
    request_id: Option<String>,
    result: Result<T, BusinessError>,
) -> Response {
    match result {
        Ok(data) => ok(request_id, data),
        Err(error) => business(request_id, error.code(), error.to_string()),
    }
}

/// A body that is not the JSON the endpoint takes (what MP's Spring backend
/// does with unreadable input: HTTP 400).
pub(crate) fn bad_request(request_id: Option<String>, msg: String) -> Response {
    envelope(StatusCode::BAD_REQUEST, 400, msg, (), request_id)
}

/// APISIX's answer to a request whose HMAC does not check out.
pub(crate) fn unauthorized() -> Response {
    let body = serde_json::json!({ "message": "client request can't be validated" });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// A non-JSON page, as a misbehaving proxy in front of MP would send.
pub(crate) fn html(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn envelope<T: Serialize>(
    status: StatusCode,
    code: i64,
    msg: String,
    data: T,
    request_id: Option<String>,
) -> Response {
    let body = Envelope {
        code,
        msg,
        data,
        request_id,
    };
    (status, Json(body)).into_response()
}

/// Reads a POST body as `T`, or says why not.
pub(crate) fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))
}

/// Accepts an integer as a JSON number or a numeric string, as MP's Java
/// backend does.
fn loose_int<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Int(i64),
        Text(String),
    }
    match Option::<Loose>::deserialize(de)? {
        None => Ok(None),
        Some(Loose::Int(n)) => Ok(Some(n)),
        Some(Loose::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected an integer, got {text:?}"))),
    }
}

/// Body of `v2/activationCode`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActivationRequest {
    #[serde(default, deserialize_with = "loose_int")]
    pub goods_id: Option<i64>,
    #[serde(default, deserialize_with = "loose_int")]
    pub product_id: Option<i64>,
    #[serde(default, deserialize_with = "loose_int")]
    pub order_quantity: Option<i64>,
    pub iccid: Option<String>,
    /// A number or a string; checked by the handler.
    pub price: Option<serde_json::Value>,
    pub activate_flag: Option<String>,
}

/// Body of `switchOrder`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SwitchRequest {
    pub order_code: Option<String>,
    pub switch_button: Option<String>,
}

/// Body of `v2/topUp`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TopUpRequest {
    pub order_code: Option<String>,
}

/// Body of `saveAlarmCallbackInterface`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallbackRequest {
    pub reseller_code: Option<String>,
    pub http_method: Option<String>,
    pub http_url: Option<String>,
}

/// One element of `v2/productList`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProductView {
    pub goods_id: i64,
    pub goods_name: &'static str,
    pub product_id: i64,
    pub order_quantity: String,
    pub product_name: &'static str,
    pub sim_group_code: &'static str,
    pub sim_group_name: &'static str,
    pub cover_country: &'static str,
    pub cover_country_name: &'static str,
}

/// `data` of `v2/activationCode`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActivationData {
    pub iccid: String,
    pub qr_code: String,
    pub order_code: String,
}

/// `data` of `v2/topUp`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TopUpData {
    pub renew_period: u32,
    pub order_code: String,
}

/// One element of `queryOrderStatus`; all `None` is MP's "null data".
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderStatusView {
    pub eid: Option<String>,
    pub package_code: Option<String>,
    pub status: Option<&'static str>,
    pub actual_start_time: Option<String>,
    pub planned_end_time: Option<String>,
}

/// One element of `queryTraffic`; all `None` is MP's "null data".
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TrafficView {
    pub eid: Option<String>,
    pub package_code: Option<String>,
    pub package_flow: Option<String>,
    pub package_used_flow: Option<String>,
    pub actual_start_time: Option<String>,
    pub planned_end_time: Option<String>,
    pub cycle: Option<String>,
}

/// `data` of `v2/queryHistoryDailyTraffic`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DailyTrafficView {
    pub package_code: Option<String>,
    pub actual_start_time: Option<String>,
    pub planned_end_time: Option<String>,
    pub daily_traffic: Vec<DailyUse>,
}

impl DailyTrafficView {
    /// MP's "null data": nulls, and one daily element of nulls.
    pub fn null() -> DailyTrafficView {
        DailyTrafficView {
            package_code: None,
            actual_start_time: None,
            planned_end_time: None,
            daily_traffic: vec![DailyUse::default()],
        }
    }
}

/// One day of `dailyTraffic`: the UTC+8 date and the bytes used that day.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DailyUse {
    pub flow_use_time: Option<String>,
    pub use_flow: Option<String>,
}

/// The body MP POSTs to the registered callback URL (mp-api-v2.md 4.5.2).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AlarmCallback {
    pub eid: String,
    pub package_code: String,
    pub order_code: String,
    /// `"53%"`, `"84%"` or `"100%"`.
    pub package_used_rate: String,
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_written_in_utc_plus_8() {
        let at = Utc.with_ymd_and_hms(2025, 3, 7, 9, 11, 21).unwrap();
        assert_eq!(mp_time(at), "2025-03-07 17:11:21");
    }

    #[test]
    fn integers_may_come_as_numbers_or_numeric_strings() {
        let body: ActivationRequest =
            serde_json::from_str(r#"{"productId":"6","goodsId":37,"orderQuantity":null}"#).unwrap();
        assert_eq!(
            (body.product_id, body.goods_id, body.order_quantity),
            (Some(6), Some(37), None)
        );
        assert!(parse_body::<ActivationRequest>(br#"{"productId":"six"}"#).is_err());
        assert!(parse_body::<ActivationRequest>(b"<html>").is_err());
    }
}
