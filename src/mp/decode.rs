//! MP's loosely typed rows into our typed messages. A value outside the
//! documented set (an unknown status, a time in another format, a decimal
//! byte count) is left unset, its raw text kept where the message has a
//! `*_raw` field, and counted ([`super::metrics::unexpected_value`]); a bad
//! product row is skipped. Anything else unexpected is [`MpError::Malformed`],
//! never a panic; all-null rows are [`MpError::NullData`].

use std::ops::RangeInclusive;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use prost_types::Timestamp;

use super::{MpError, metrics, wire};
#[cfg(doc)]
use crate::domain::ActivationCode;
use crate::proto;

/// What `v2/activationCode` created.
#[derive(Debug, Clone)]
pub struct CreatedOrder {
    pub order_code: String,
    pub iccid: String,
    /// MP's `qrCode` as sent, empty when it sent none: once MP has created the
    /// order, an odd code must not lose it (see [`ActivationCode`] for the usual shape).
    pub activation_code: String,
}

/// What `v2/topUp` did.
#[derive(Debug, Clone)]
pub struct TopUp {
    pub order_code: String,
    /// Absent when MP sent null.
    pub renew_period: Option<u32>,
}

/// What a `google.protobuf.Timestamp` may hold: 0001-01-01 to 9999-12-31 UTC.
/// chrono reads years up to ±262142, which clients' protobuf libraries reject.
pub const TIMESTAMP_SECONDS: RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// Reads MP's wall-clock times (`2025-03-07 17:11:21`), which carry no zone.
#[derive(Debug, Clone, Copy)]
pub struct MpClock {
    pub zone: FixedOffset,
}

impl MpClock {
    pub fn timestamp(&self, field: &str, raw: Option<&str>) -> Result<Option<Timestamp>, MpError> {
        let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let parsed = NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S")
            .ok()
            .and_then(|naive| self.zone.from_local_datetime(&naive).single())
            .or_else(|| DateTime::parse_from_rfc3339(raw).ok())
            .filter(|t| TIMESTAMP_SECONDS.contains(&t.timestamp()))
            .ok_or_else(|| malformed(field, raw))?;
        Ok(Some(Timestamp {
            seconds: parsed.timestamp(),
            nanos: 0,
        }))
    }

    /// [`Self::timestamp`], but a time it cannot read is unset and returned
    /// as the raw text (counted and logged) instead of failing the call.
    pub fn lenient(&self, field: &'static str, raw: Option<&str>) -> (Option<Timestamp>, String) {
        match self.timestamp(field, raw) {
            Ok(time) => (time, String::new()),
            Err(_) => {
                let raw = raw.unwrap_or_default();
                metrics::unexpected_value(field, raw);
                (None, raw.to_owned())
            }
        }
    }
}

/// Null data, before the client says which record was looked for.
fn null_data() -> MpError {
    MpError::NullData("the requested record".into())
}

fn malformed(field: &str, raw: &str) -> MpError {
    MpError::Malformed(format!("{field} = {raw:?}"))
}

fn parse_num<T: std::str::FromStr>(field: &str, raw: Option<&str>) -> Result<Option<T>, MpError> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| malformed(field, s)))
        .transpose()
}

/// A volume in MB: a finite, non-negative number (Rust would also read "NaN"
/// or "inf"); `None` when MP sent null.
fn megabytes(field: &str, raw: Option<&str>) -> Result<Option<f64>, MpError> {
    match parse_num::<f64>(field, raw)? {
        None => Ok(None),
        Some(mb) if mb.is_finite() && mb >= 0.0 => Ok(Some(mb)),
        Some(_) => Err(malformed(field, raw.unwrap_or_default())),
    }
}

fn required<T>(field: &str, value: Option<T>) -> Result<T, MpError> {
    value.ok_or_else(|| MpError::Malformed(format!("{field} is missing")))
}

/// `"3,4"` → `[3, 4]`.
pub fn order_quantities(raw: Option<&str>) -> Result<Vec<u32>, MpError> {
    raw.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| malformed("orderQuantity", s)))
        .collect()
}

/// The rows of `v2/productList`; a row that cannot be read is skipped
/// (counted and logged), unless no row can be read at all.
pub fn products(rows: Option<Vec<wire::ProductRow>>) -> Result<Vec<proto::Product>, MpError> {
    let rows: Vec<_> = rows
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row.product_id.is_some() || row.goods_id.is_some())
        .collect();
    let total = rows.len();
    let mut last_error = None;
    let products: Vec<_> = rows
        .into_iter()
        .filter_map(|row| match product(row) {
            Ok(product) => Some(product),
            Err(error) => {
                metrics::unexpected_value("productList", &error.to_string());
                last_error = Some(error);
                None
            }
        })
        .collect();
    match last_error {
        Some(error) if products.is_empty() && total > 0 => Err(error),
        _ => Ok(products),
    }
}

pub fn product(row: wire::ProductRow) -> Result<proto::Product, MpError> {
    Ok(proto::Product {
        goods_id: parse_num("goodsId", row.goods_id.as_deref())?,
        goods_name: row.goods_name.unwrap_or_default(),
        product_id: required(
            "productId",
            parse_num("productId", row.product_id.as_deref())?,
        )?,
        product_name: row.product_name.unwrap_or_default(),
        order_quantities: order_quantities(row.order_quantity.as_deref())?,
        sim_group_code: row.sim_group_code.unwrap_or_default(),
        sim_group_name: row.sim_group_name.unwrap_or_default(),
        cover_country: row.cover_country.unwrap_or_default(),
        cover_country_name: row.cover_country_name.unwrap_or_default(),
    })
}

/// MP's `"0".."3"`; anything else is UNSPECIFIED with the raw text (counted
/// and logged), so a status MP adds later does not fail the call.
pub fn order_status(raw: Option<&str>) -> (proto::OrderStatus, String) {
    use proto::OrderStatus::*;
    match raw.map(str::trim) {
        None | Some("") => (Unspecified, String::new()),
        Some("0") => (NotEnabled, String::new()),
        Some("1") => (InUse, String::new()),
        Some("2") => (Suspended, String::new()),
        Some("3") => (Finished, String::new()),
        Some(other) => {
            metrics::unexpected_value("status", other);
            (Unspecified, other.to_owned())
        }
    }
}

/// A day's bytes: a whole number, else unset (counted and logged).
fn daily_bytes(raw: Option<&str>) -> Option<u64> {
    parse_num("useFlow", raw).unwrap_or_else(|_| {
        metrics::unexpected_value("useFlow", raw.unwrap_or_default());
        None
    })
}

/// Fails with [`MpError::NullData`] when MP sent no row with any field set.
pub fn non_null_rows<T>(
    rows: Option<Vec<T>>,
    is_null: impl Fn(&T) -> bool,
) -> Result<Vec<T>, MpError> {
    let rows: Vec<T> = rows
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !is_null(r))
        .collect();
    if rows.is_empty() {
        Err(null_data())
    } else {
        Ok(rows)
    }
}

impl wire::OrderStatusRow {
    pub fn is_null(&self) -> bool {
        self.eid.is_none()
            && self.package_code.is_none()
            && self.status.is_none()
            && self.actual_start_time.is_none()
            && self.planned_end_time.is_none()
    }
}

impl wire::TrafficRow {
    pub fn is_null(&self) -> bool {
        self.eid.is_none()
            && self.package_code.is_none()
            && self.package_flow.is_none()
            && self.package_used_flow.is_none()
            && self.actual_start_time.is_none()
            && self.planned_end_time.is_none()
            && self.cycle.is_none()
    }
}

pub fn order_package(
    row: wire::OrderStatusRow,
    clock: MpClock,
) -> Result<proto::OrderPackage, MpError> {
    let (status, status_raw) = order_status(row.status.as_deref());
    let (actual_start_time, actual_start_time_raw) =
        clock.lenient("actualStartTime", row.actual_start_time.as_deref());
    let (planned_end_time, planned_end_time_raw) =
        clock.lenient("plannedEndTime", row.planned_end_time.as_deref());
    Ok(proto::OrderPackage {
        eid: row.eid.unwrap_or_default(),
        package_code: row.package_code.unwrap_or_default(),
        status: status as i32,
        actual_start_time,
        planned_end_time,
        status_raw,
        actual_start_time_raw,
        planned_end_time_raw,
    })
}

pub fn package_traffic(
    row: wire::TrafficRow,
    clock: MpClock,
) -> Result<proto::PackageTraffic, MpError> {
    let (actual_start_time, actual_start_time_raw) =
        clock.lenient("actualStartTime", row.actual_start_time.as_deref());
    let (planned_end_time, planned_end_time_raw) =
        clock.lenient("plannedEndTime", row.planned_end_time.as_deref());
    Ok(proto::PackageTraffic {
        eid: row.eid.unwrap_or_default(),
        package_code: row.package_code.unwrap_or_default(),
        total_mb: megabytes("packageFlow", row.package_flow.as_deref())?,
        used_mb: megabytes("packageUsedFlow", row.package_used_flow.as_deref())?,
        cycle: parse_num("cycle", row.cycle.as_deref())?,
        actual_start_time,
        planned_end_time,
        actual_start_time_raw,
        planned_end_time_raw,
    })
}

pub fn daily_traffic(
    data: Option<wire::DailyTrafficData>,
    clock: MpClock,
) -> Result<proto::GetDailyTrafficResponse, MpError> {
    let data = data.ok_or_else(null_data)?;
    let days = data
        .daily_traffic
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.flow_use_time.is_some() || d.use_flow.is_some())
        .map(|d| {
            let date = required("flowUseTime", d.flow_use_time)?;
            chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .map_err(|_| malformed("flowUseTime", &date))?;
            Ok(proto::DailyUsage {
                used_bytes: daily_bytes(d.use_flow.as_deref()),
                date: date.trim().to_owned(),
            })
        })
        .collect::<Result<Vec<_>, MpError>>()?;
    if data.package_code.is_none()
        && data.actual_start_time.is_none()
        && data.planned_end_time.is_none()
        && days.is_empty()
    {
        return Err(null_data());
    }
    Ok(proto::GetDailyTrafficResponse {
        package_code: data.package_code.unwrap_or_default(),
        actual_start_time: clock.timestamp("actualStartTime", data.actual_start_time.as_deref())?,
        planned_end_time: clock.timestamp("plannedEndTime", data.planned_end_time.as_deref())?,
        days,
        request_id: String::new(),
    })
}

pub fn created_order(data: Option<wire::ActivationData>) -> Result<CreatedOrder, MpError> {
    let data = data.ok_or_else(null_data)?;
    if data.order_code.is_none() && data.iccid.is_none() && data.qr_code.is_none() {
        return Err(null_data());
    }
    Ok(CreatedOrder {
        order_code: required("orderCode", data.order_code)?,
        iccid: required("iccid", data.iccid)?,
        activation_code: data.qr_code.unwrap_or_default(),
    })
}

pub fn top_up(data: Option<wire::TopUpData>) -> Result<TopUp, MpError> {
    let data = data.ok_or_else(null_data)?;
    if data.order_code.is_none() && data.renew_period.is_none() {
        return Err(null_data());
    }
    Ok(TopUp {
        renew_period: parse_num("renewPeriod", data.renew_period.as_deref())?,
        order_code: required("orderCode", data.order_code)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> MpClock {
        MpClock {
            zone: FixedOffset::east_opt(8 * 3600).unwrap(),
        }
    }

    #[test]
    fn mp_times_are_read_in_the_configured_zone() {
        let ts = clock()
            .timestamp("t", Some("2025-03-07 17:11:21"))
            .unwrap()
            .unwrap();
        // 17:11:21 at +08:00 is 09:11:21 UTC.
        assert_eq!(ts.seconds, 1_741_338_681);
        assert_eq!(clock().timestamp("t", None).unwrap(), None);
        assert!(clock().timestamp("t", Some("yesterday")).is_err());
    }

    #[test]
    fn times_a_protobuf_timestamp_cannot_hold_are_malformed_not_a_panic() {
        for raw in [
            // Parses, but moving it to UTC leaves chrono's calendar.
            "-262143-01-01 00:00:00",
            // Valid for chrono, far past the 9999-12-31 that protobuf allows.
            "+262142-12-31 23:59:59",
            // 0001-01-01 07:59:59 at +08:00 is still year 0 in UTC.
            "0001-01-01 07:59:59",
        ] {
            let got = clock().timestamp("t", Some(raw));
            assert!(matches!(got, Err(MpError::Malformed(_))), "{raw}: {got:?}");
        }
        let last = clock().timestamp("t", Some("9999-12-31 23:59:59"));
        assert_eq!(last.unwrap().unwrap().seconds, 253_402_300_799 - 8 * 3600);
        let first = clock().timestamp("t", Some("0001-01-01 08:00:00"));
        assert_eq!(first.unwrap().unwrap().seconds, -62_135_596_800);
    }

    #[test]
    fn deeply_nested_data_is_an_error_not_a_stack_overflow() {
        let body = format!(
            r#"{{"code":200,"data":{}{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert!(serde_json::from_str::<wire::Envelope<serde_json::Value>>(&body).is_err());
        let body = format!(
            r#"{{"code":200,"data":[{{"eid":{}1{}}}]}}"#,
            r#"{"a":"#.repeat(3000),
            "}".repeat(3000)
        );
        assert!(serde_json::from_str::<wire::Envelope<Vec<wire::OrderStatusRow>>>(&body).is_err());
    }

    #[test]
    fn traffic_volumes_must_be_finite_and_not_negative() {
        assert_eq!(megabytes("f", Some("1024.50")).unwrap(), Some(1024.5));
        assert_eq!(megabytes("f", None).unwrap(), None);
        for bad in ["NaN", "inf", "-inf", "-1", "1e400"] {
            assert!(megabytes("f", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_quantities_are_split() {
        assert_eq!(order_quantities(Some("3,4")).unwrap(), vec![3, 4]);
        assert_eq!(order_quantities(Some("1")).unwrap(), vec![1]);
        assert_eq!(order_quantities(None).unwrap(), Vec::<u32>::new());
        assert!(order_quantities(Some("3,x")).is_err());
    }

    #[test]
    fn unknown_status_is_unspecified_with_the_raw_text() {
        assert_eq!(
            order_status(Some("7")),
            (proto::OrderStatus::Unspecified, "7".to_owned())
        );
        assert_eq!(
            order_status(Some("1")),
            (proto::OrderStatus::InUse, String::new())
        );
        assert_eq!(
            order_status(None),
            (proto::OrderStatus::Unspecified, String::new())
        );
    }

    #[test]
    fn a_time_in_another_format_is_unset_with_the_raw_text() {
        assert_eq!(
            clock().lenient("t", Some("07/03/2025")),
            (None, "07/03/2025".to_owned())
        );
        assert_eq!(clock().lenient("t", None), (None, String::new()));
        assert!(
            clock()
                .lenient("t", Some("2025-03-07 17:11:21"))
                .0
                .is_some()
        );
    }

    #[test]
    fn a_decimal_daily_byte_count_is_unset_not_an_error() {
        assert_eq!(daily_bytes(Some("1200.5")), None);
        assert_eq!(daily_bytes(Some("1200")), Some(1200));
        assert_eq!(daily_bytes(None), None);
    }

    #[test]
    fn a_malformed_product_row_is_skipped_unless_every_row_is() {
        let body = r#"[{"goodsId":37,"productId":6,"orderQuantity":"3,4"},{"goodsId":37,"productId":"x"},{"goodsId":35,"productId":7}]"#;
        let rows: Vec<wire::ProductRow> = serde_json::from_str(body).unwrap();
        let ids: Vec<u64> = products(Some(rows))
            .unwrap()
            .iter()
            .map(|p| p.product_id)
            .collect();
        assert_eq!(ids, vec![6, 7]);
        let rows: Vec<wire::ProductRow> = serde_json::from_str(r#"[{"productId":"x"}]"#).unwrap();
        assert!(matches!(products(Some(rows)), Err(MpError::Malformed(_))));
        assert!(products(None).unwrap().is_empty());
    }

    #[test]
    fn documented_null_data_is_recognised() {
        let body = r#"{"code":200,"msg":"Success","data":[{"eid":null,"packageCode":null,"status":null,"actualStartTime":null,"plannedEndTime":null}],"requestId":null}"#;
        let env: wire::Envelope<Vec<wire::OrderStatusRow>> = serde_json::from_str(body).unwrap();
        assert!(matches!(
            non_null_rows(env.data, wire::OrderStatusRow::is_null),
            Err(MpError::NullData(_))
        ));
    }

    #[test]
    fn documented_daily_traffic_parses() {
        let body = r#"{"code":200,"msg":"Success","data":{"packageCode":"LP14230831004073","actualStartTime":"2025-03-07 17:11:21","plannedEndTime":"2025-03-13 23:59:59","dailyTraffic":[{"flowUseTime":"2025-03-07","useFlow":"120000"}]},"requestId":null}"#;
        let env: wire::Envelope<wire::DailyTrafficData> = serde_json::from_str(body).unwrap();
        let daily = daily_traffic(env.data, clock()).unwrap();
        assert_eq!(daily.package_code, "LP14230831004073");
        assert_eq!(daily.days[0].date, "2025-03-07");
        assert_eq!(daily.days[0].used_bytes, Some(120_000));
    }

    #[test]
    fn documented_daily_traffic_null_data_is_recognised() {
        let body = r#"{"code":200,"msg":"Success","data":{"packageCode":null,"actualStartTime":null,"plannedEndTime":null,"dailyTraffic":[{"flowUseTime":null,"useFlow":null}]},"requestId":null}"#;
        let env: wire::Envelope<wire::DailyTrafficData> = serde_json::from_str(body).unwrap();
        assert!(matches!(
            daily_traffic(env.data, clock()),
            Err(MpError::NullData(_))
        ));
    }

    #[test]
    fn documented_product_list_parses() {
        let body = r#"{"code":200,"msg":"Success","data":[{"goodsId":37,"goodsName":"CHINA_Test","productId":6,"orderQuantity":"3,4","productName":"1GB/7days","simGroupCode":"SIMGROUP1706570409388478464","simGroupName":"eSIMGO test group 0926","coverCountry":"460","coverCountryName":"China"}],"requestId":null}"#;
        let env: wire::Envelope<Vec<wire::ProductRow>> = serde_json::from_str(body).unwrap();
        let p = product(env.data.unwrap().pop().unwrap()).unwrap();
        assert_eq!((p.goods_id, p.product_id), (Some(37), 6));
        assert_eq!(p.order_quantities, vec![3, 4]);
    }

    #[test]
    fn documented_traffic_with_nulls_and_string_cycle_parses() {
        let body = r#"{"code":200,"msg":"Success","data":[{"eid":null,"packageCode":"LP14230831004073","packageFlow":null,"packageUsedFlow":null,"actualStartTime":null,"plannedEndTime":null,"cycle":"1"}],"requestId":null}"#;
        let env: wire::Envelope<Vec<wire::TrafficRow>> = serde_json::from_str(body).unwrap();
        let rows = non_null_rows(env.data, wire::TrafficRow::is_null).unwrap();
        let t = package_traffic(rows.into_iter().next().unwrap(), clock()).unwrap();
        assert_eq!(t.cycle, Some(1));
        assert_eq!((t.total_mb, t.used_mb), (None, None));
    }

    #[test]
    fn documented_activation_answer_parses() {
        let body = r#"{"code":200,"msg":null,"data":{"iccid":"8943108169999589689","qrCode":"LPA:1$rsp-0001.linksfield.net$FJW99-WC5AS-CBYC9-WFTOZ","orderCode":"ORDER_1726522312360550400"},"requestId":null}"#;
        let env: wire::Envelope<wire::ActivationData> = serde_json::from_str(body).unwrap();
        let order = created_order(env.data).unwrap();
        assert_eq!(order.order_code, "ORDER_1726522312360550400");
        assert_eq!(
            order.activation_code,
            "LPA:1$rsp-0001.linksfield.net$FJW99-WC5AS-CBYC9-WFTOZ"
        );
    }

    #[test]
    fn an_activation_answer_with_an_odd_or_missing_qr_code_still_names_the_order() {
        for (qr, want) in [
            (r#""SOMETHING-ELSE""#, "SOMETHING-ELSE"),
            ("null", ""),
            (r#""""#, ""),
        ] {
            let body = format!(
                r#"{{"code":200,"data":{{"iccid":"8943108169999589689","qrCode":{qr},"orderCode":"ORDER_1"}}}}"#
            );
            let env: wire::Envelope<wire::ActivationData> = serde_json::from_str(&body).unwrap();
            let order = created_order(env.data).unwrap();
            assert_eq!(order.order_code, "ORDER_1");
            assert_eq!(order.activation_code, want);
        }
    }
}
