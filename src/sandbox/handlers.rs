//! MP's eight endpoints. Each reads its input (query or JSON body), applies
//! the rules in `orders`/`catalogue`, and answers in MP's envelope.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::catalogue::{self, PRODUCTS, Product};
use super::errors::BusinessError;
use super::ids::Iccid;
use super::orders::{NewOrder, Order, Switch};
use super::recording::RequestId;
use super::state::{Shared, lock};
use super::wire::{
    self, ActivationData, ActivationRequest, CallbackRequest, DailyTrafficView, DailyUse,
    OrderStatusView, ProductView, SwitchRequest, TopUpData, TopUpRequest, TrafficView,
    mp_megabytes, mp_time,
};
use crate::mp::signing::parse_query;

type SharedState = State<Arc<Shared>>;
type Id = Extension<RequestId>;

/// `GET queryOrderStatus`
pub(crate) async fn query_order_status(
    State(shared): SharedState,
    Extension(RequestId(id)): Id,
    RawQuery(query): RawQuery,
) -> Response {
    query_order(&shared, id, query, |order, _| {
        vec![order.map_or_else(OrderStatusView::default, |order| status_view(&order))]
    })
}

/// `GET queryTraffic`
pub(crate) async fn query_traffic(
    State(shared): SharedState,
    Extension(RequestId(id)): Id,
    RawQuery(query): RawQuery,
) -> Response {
    query_order(&shared, id, query, |order, _| {
        vec![order.map_or_else(TrafficView::default, |order| traffic_view(&order))]
    })
}

/// `GET v2/queryHistoryDailyTraffic`
pub(crate) async fn query_daily_traffic(
    State(shared): SharedState,
    Extension(RequestId(id)): Id,
    RawQuery(query): RawQuery,
) -> Response {
    query_order(&shared, id, query, |order, now| {
        order.map_or_else(DailyTrafficView::null, |order| daily_view(&order, now))
    })
}

/// The three order queries: `orderCode` from the query string, the order as
/// of now (`None` when unknown: MP answers null data), shown by `view`.
fn query_order<T: Serialize>(
    shared: &Shared,
    request_id: Option<String>,
    query: Option<String>,
    view: impl FnOnce(Option<Order>, DateTime<Utc>) -> T,
) -> Response {
    let result = order_code_in(query.as_deref()).map(|code| {
        let now = Utc::now();
        let order = lock(&shared.orders).get(&code, now);
        view(order, now)
    });
    wire::reply(request_id, result)
}

/// `GET v2/productList`
pub(crate) async fn product_list(Extension(RequestId(id)): Id) -> Response {
    let products: Vec<ProductView> = PRODUCTS.iter().map(product_view).collect();
    wire::ok(id, products)
}

/// `POST v2/activationCode`
pub(crate) async fn activation_code(
    State(shared): SharedState,
    Extension(RequestId(id)): Id,
    body: Bytes,
) -> Response {
    with_body(id, &body, |request| activate(&shared, request))
}

/// `POST switchOrder`
pub(crate) async fn switch_order(
    State(shared): SharedState,
    Extension(RequestId(id)): Id,
    body: Bytes,
) -> Response {
    with_body(id, &body, |request: SwitchRequest| {
        let code = required(request.order_code, "orderCode")?;
        let button = Switch::parse(&required(request.switch_button, "switchButton")?)?;
        lock(&shared.orders).switch(&code, button, Utc::now())
    })
}

/// `POST v2/topUp`
pub(crate) async fn top_up(
    State(shared): SharedState,
    Extension(RequestId(id)): Id,
    body: Bytes,
) -> Response {
    with_body(id, &body, |request: TopUpRequest| {
        let order_code = required(request.order_code, "orderCode")?;
        let renew_period = lock(&shared.orders).top_up(&order_code, Utc::now())?;
        Ok(TopUpData {
            renew_period,
            order_code,
        })
    })
}

/// `POST saveAlarmCallbackInterface`
pub(crate) async fn save_callback(
    State(shared): SharedState,
    Extension(RequestId(id)): Id,
    body: Bytes,
) -> Response {
    with_body(id, &body, |request: CallbackRequest| {
        let reseller = required(request.reseller_code, "resellerCode")?;
        if reseller != shared.config.access_key {
            return Err(BusinessError::ResellerMismatch);
        }
        if required(request.http_method, "httpMethod")? != "POST" {
            return Err(BusinessError::CallbackMethod);
        }
        let url = required(request.http_url, "httpUrl")?;
        if !is_absolute_http_url(&url) {
            return Err(BusinessError::CallbackUrl);
        }
        *lock(&shared.callback_url) = Some(url.clone());
        Ok(url)
    })
}

/// Parses a POST body and answers with what `handle` makes of it; a body
/// that is not the expected JSON is an HTTP 400.
fn with_body<'a, T, R>(
    id: Option<String>,
    body: &'a [u8],
    handle: impl FnOnce(T) -> Result<R, BusinessError>,
) -> Response
where
    T: Deserialize<'a>,
    R: serde::Serialize,
{
    match wire::parse_body(body) {
        Ok(request) => wire::reply(id, handle(request)),
        Err(msg) => wire::bad_request(id, msg),
    }
}

fn activate(shared: &Shared, request: ActivationRequest) -> Result<ActivationData, BusinessError> {
    let product_id = request
        .product_id
        .ok_or(BusinessError::Missing("productId"))?;
    let (product, quantity) =
        catalogue::resolve(product_id, request.goods_id, request.order_quantity)?;
    let iccid = non_empty(request.iccid)
        .map(|raw| Iccid::parse(&raw))
        .transpose()?;
    check_price(request.price.as_ref())?;
    let activate = activate_flag(request.activate_flag.as_deref())?;
    let spec = NewOrder {
        product,
        quantity,
        iccid,
        activate,
    };
    let order = lock(&shared.orders).create(spec, Utc::now())?;
    Ok(ActivationData {
        iccid: order.iccid.as_str().to_owned(),
        qr_code: order.qr_code,
        order_code: order.order_code,
    })
}

/// `price`, if sent, is a non-negative decimal (a JSON number or a string).
fn check_price(price: Option<&serde_json::Value>) -> Result<(), BusinessError> {
    let valid = match price {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|p| p >= 0.0),
        Some(serde_json::Value::String(text)) => is_decimal(text),
        Some(_) => false,
    };
    valid.then_some(()).ok_or(BusinessError::InvalidPrice)
}

/// Digits with at most one decimal point between digits: `12`, `9.99`.
fn is_decimal(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

/// `activateFlag`: "yes" starts the order now; "no" or nothing leaves it
/// not enabled.
fn activate_flag(flag: Option<&str>) -> Result<bool, BusinessError> {
    match flag.map(str::trim) {
        None | Some("") => Ok(false),
        Some(flag) if flag.eq_ignore_ascii_case("yes") => Ok(true),
        Some(flag) if flag.eq_ignore_ascii_case("no") => Ok(false),
        Some(_) => Err(BusinessError::InvalidActivateFlag),
    }
}

fn is_absolute_http_url(raw: &str) -> bool {
    url::Url::parse(raw)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

fn order_code_in(query: Option<&str>) -> Result<String, BusinessError> {
    let order_code = parse_query(query.unwrap_or(""))
        .into_iter()
        .find_map(|(key, value)| (key == "orderCode").then_some(value));
    required(order_code, "orderCode")
}

fn required(value: Option<String>, name: &'static str) -> Result<String, BusinessError> {
    non_empty(value).ok_or(BusinessError::Missing(name))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn product_view(product: &Product) -> ProductView {
    ProductView {
        goods_id: product.goods_id,
        goods_name: product.goods_name,
        product_id: product.product_id,
        order_quantity: product.order_quantity(),
        product_name: product.product_name,
        sim_group_code: product.sim_group_code,
        sim_group_name: product.sim_group_name,
        cover_country: product.cover_country,
        cover_country_name: product.cover_country_name,
    }
}

fn status_view(order: &Order) -> OrderStatusView {
    OrderStatusView {
        eid: Some(order.eid.clone()),
        package_code: Some(order.package_code.clone()),
        status: Some(order.status.code()),
        actual_start_time: order.actual_start.map(mp_time),
        planned_end_time: order.planned_end().map(mp_time),
    }
}

fn traffic_view(order: &Order) -> TrafficView {
    TrafficView {
        eid: Some(order.eid.clone()),
        package_code: Some(order.package_code.clone()),
        package_flow: Some(mp_megabytes(order.total_mb())),
        package_used_flow: Some(mp_megabytes(order.used_mb())),
        actual_start_time: order.actual_start.map(mp_time),
        planned_end_time: order.planned_end().map(mp_time),
        cycle: Some(order.cycles.to_string()),
    }
}

fn daily_view(order: &Order, now: DateTime<Utc>) -> DailyTrafficView {
    let daily_traffic = order
        .daily_bytes(now)
        .into_iter()
        .map(|(day, bytes)| DailyUse {
            flow_use_time: Some(day.format("%Y-%m-%d").to_string()),
            use_flow: Some(bytes.to_string()),
        })
        .collect();
    DailyTrafficView {
        package_code: Some(order.package_code.clone()),
        actual_start_time: order.actual_start.map(mp_time),
        planned_end_time: order.planned_end().map(mp_time),
        daily_traffic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_non_negative_decimals() {
        use serde_json::json;
        for ok in [
            json!(0),
            json!(9.99),
            json!("12"),
            json!("0.50"),
            json!(null),
        ] {
            assert!(check_price(Some(&ok)).is_ok(), "{ok}");
        }
        for bad in [
            json!(-1),
            json!("-1"),
            json!("1."),
            json!(".5"),
            json!("abc"),
            json!([]),
        ] {
            assert!(check_price(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn activate_flag_is_yes_or_no() {
        assert_eq!(activate_flag(Some("yes")), Ok(true));
        assert_eq!(activate_flag(Some("no")), Ok(false));
        assert_eq!(activate_flag(None), Ok(false));
        assert!(activate_flag(Some("maybe")).is_err());
    }

    #[test]
    fn callback_urls_must_be_absolute_http() {
        assert!(is_absolute_http_url("http://127.0.0.1:8080/alarms?token=x"));
        assert!(is_absolute_http_url("https://example.com/cb"));
        assert!(!is_absolute_http_url("/relative"));
        assert!(!is_absolute_http_url("ftp://example.com/cb"));
        assert!(!is_absolute_http_url("mailto:a@b.c"));
    }
}
