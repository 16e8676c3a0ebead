//! Requests become domain values once, here: each `TryFrom<&proto::…Request>`
//! checks every field and reports all that are wrong together, so a bad
//! request is INVALID_ARGUMENT before MP is called. Handlers take the result
//! through [`super::parse`].

use std::collections::HashSet;
use std::time::Duration;

use crate::alarms::AlarmId;
use crate::domain::{CallbackUrl, FieldViolation, Iccid, OrderCode, Price, RequestId};
use crate::mp::{Call, NewOrder, SwitchButton};
use crate::proto::{
    CreateOrderRequest, GetDailyTrafficRequest, GetOrderByRequestIdRequest, GetOrderStatusRequest,
    GetProductRequest, GetTrafficRequest, ListProductsRequest, RegisterCallbackRequest,
    SubscribeAlarmsRequest, SwitchAction, SwitchOrderRequest, TopUpOrderRequest,
};

/// The request id every request carries, parsed (generated when empty).
pub(crate) trait Identified {
    fn request_id(&self) -> &RequestId;

    /// The MP call this request makes, within the caller's deadline.
    fn call(&self, deadline: Option<Duration>) -> Call<'_> {
        Call {
            request_id: self.request_id(),
            deadline,
        }
    }
}

/// The caller's raw `request_id` (every request message has one).
pub(crate) trait RawRequestId {
    fn raw_request_id(&self) -> &str;
}

macro_rules! raw_request_id {
    ($($request:ty),*) => {$(
        impl RawRequestId for $request {
            fn raw_request_id(&self) -> &str {
                &self.request_id
            }
        }
    )*};
}
pub(super) use raw_request_id;

raw_request_id!(
    ListProductsRequest,
    GetProductRequest,
    CreateOrderRequest,
    TopUpOrderRequest,
    GetOrderStatusRequest,
    GetOrderByRequestIdRequest,
    SwitchOrderRequest,
    GetTrafficRequest,
    GetDailyTrafficRequest,
    RegisterCallbackRequest,
    SubscribeAlarmsRequest
);

/// The violations found while one request's fields are checked.
#[derive(Default)]
pub(super) struct Checks(Vec<FieldViolation>);

impl Checks {
    /// The field's value, or `None` with its violation noted.
    pub(super) fn field<T>(&mut self, checked: Result<T, FieldViolation>) -> Option<T> {
        checked.map_err(|violation| self.0.push(violation)).ok()
    }

    pub(super) fn request_id(&mut self, raw: &str) -> Option<RequestId> {
        self.field(RequestId::parse_or_generate(raw))
    }

    /// What was noted; called once some field had no value.
    pub(super) fn violations(self) -> Vec<FieldViolation> {
        self.0
    }
}

fn required_id(field: &'static str, value: u64) -> Result<u64, FieldViolation> {
    if value == 0 {
        Err(FieldViolation::new(field, "is required"))
    } else {
        Ok(value)
    }
}

/// ListProducts: nothing to check but its id (the filters take any value).
pub(crate) struct ProductListQuery {
    pub request_id: RequestId,
}

impl TryFrom<&ListProductsRequest> for ProductListQuery {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &ListProductsRequest) -> Result<Self, Self::Error> {
        let mut checks = Checks::default();
        match checks.request_id(&req.request_id) {
            Some(request_id) => Ok(Self { request_id }),
            None => Err(checks.violations()),
        }
    }
}

/// GetProduct.
pub(crate) struct ProductQuery {
    pub request_id: RequestId,
    pub product_id: u64,
}

impl TryFrom<&GetProductRequest> for ProductQuery {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &GetProductRequest) -> Result<Self, Self::Error> {
        let mut checks = Checks::default();
        let request_id = checks.request_id(&req.request_id);
        let product_id = checks.field(required_id("product_id", req.product_id));
        match (request_id, product_id) {
            (Some(request_id), Some(product_id)) => Ok(Self {
                request_id,
                product_id,
            }),
            _ => Err(checks.violations()),
        }
    }
}

/// CreateOrder: the order as MP gets it.
pub(crate) struct OrderRequest {
    pub request_id: RequestId,
    pub order: NewOrder,
    pub include_qr_png: bool,
}

impl TryFrom<&CreateOrderRequest> for OrderRequest {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &CreateOrderRequest) -> Result<Self, Self::Error> {
        let mut checks = Checks::default();
        let request_id = checks.request_id(&req.request_id);
        let product_id = checks.field(required_id("product_id", req.product_id));
        let iccid = checks.field(req.iccid.as_deref().map(Iccid::parse).transpose());
        let price = checks.field(req.price.as_deref().map(Price::parse).transpose());
        match (request_id, product_id, iccid, price) {
            (Some(request_id), Some(product_id), Some(iccid), Some(price)) => Ok(Self {
                request_id,
                order: NewOrder {
                    product_id,
                    goods_id: req.goods_id,
                    order_quantity: req.order_quantity,
                    iccid,
                    price,
                    activate: req.activate,
                },
                include_qr_png: req.include_qr_png,
            }),
            _ => Err(checks.violations()),
        }
    }
}

/// A request about one order, named by its code (TopUpOrder, GetOrderStatus,
/// GetTraffic, GetDailyTraffic).
#[derive(Clone)]
pub(crate) struct OrderQuery {
    pub request_id: RequestId,
    pub order_code: OrderCode,
}

macro_rules! order_query_from {
    ($($request:ty),*) => {$(
        impl TryFrom<&$request> for OrderQuery {
            type Error = Vec<FieldViolation>;

            fn try_from(req: &$request) -> Result<Self, Self::Error> {
                let mut checks = Checks::default();
                let request_id = checks.request_id(&req.request_id);
                let order_code = checks.field(OrderCode::parse(&req.order_code));
                match (request_id, order_code) {
                    (Some(request_id), Some(order_code)) => Ok(Self { request_id, order_code }),
                    _ => Err(checks.violations()),
                }
            }
        }
    )*};
}

order_query_from!(
    TopUpOrderRequest,
    GetOrderStatusRequest,
    GetTrafficRequest,
    GetDailyTrafficRequest
);

/// GetOrderByRequestId: the id of an earlier call, so it is required, never generated.
pub(crate) struct RequestIdLookup {
    pub request_id: RequestId,
}

impl TryFrom<&GetOrderByRequestIdRequest> for RequestIdLookup {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &GetOrderByRequestIdRequest) -> Result<Self, Self::Error> {
        let required = if req.request_id.is_empty() {
            Err(FieldViolation::new(
                "request_id",
                "is required: the request_id the CreateOrder or TopUpOrder was sent with",
            ))
        } else {
            RequestId::parse_or_generate(&req.request_id)
        };
        let mut checks = Checks::default();
        match checks.field(required) {
            Some(request_id) => Ok(Self { request_id }),
            None => Err(checks.violations()),
        }
    }
}

/// SwitchOrder.
pub(crate) struct SwitchRequest {
    pub request_id: RequestId,
    pub order_code: OrderCode,
    pub button: SwitchButton,
}

impl TryFrom<&SwitchOrderRequest> for SwitchRequest {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &SwitchOrderRequest) -> Result<Self, Self::Error> {
        let mut checks = Checks::default();
        let request_id = checks.request_id(&req.request_id);
        let order_code = checks.field(OrderCode::parse(&req.order_code));
        let button = checks.field(switch_button(req.action));
        match (request_id, order_code, button) {
            (Some(request_id), Some(order_code), Some(button)) => Ok(Self {
                request_id,
                order_code,
                button,
            }),
            _ => Err(checks.violations()),
        }
    }
}

fn switch_button(action: i32) -> Result<SwitchButton, FieldViolation> {
    match SwitchAction::try_from(action) {
        Ok(SwitchAction::On) => Ok(SwitchButton::On),
        Ok(SwitchAction::Suspend) => Ok(SwitchButton::Suspend),
        Ok(SwitchAction::Restart) => Ok(SwitchButton::Restart),
        Ok(SwitchAction::Off) => Ok(SwitchButton::Off),
        Ok(SwitchAction::Unspecified) | Err(_) => Err(FieldViolation::new(
            "action",
            "must be one of SWITCH_ACTION_ON, SWITCH_ACTION_SUSPEND, SWITCH_ACTION_RESTART, SWITCH_ACTION_OFF",
        )),
    }
}

/// RegisterCallback; `http_url` is `None` when the caller leaves it to the gateway's default.
pub(crate) struct CallbackRegistration {
    pub request_id: RequestId,
    pub reseller_code: String,
    pub http_url: Option<CallbackUrl>,
}

impl TryFrom<&RegisterCallbackRequest> for CallbackRegistration {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &RegisterCallbackRequest) -> Result<Self, Self::Error> {
        let mut checks = Checks::default();
        let request_id = checks.request_id(&req.request_id);
        let reseller_code = checks.field(reseller_code(&req.reseller_code));
        let http_url = checks.field(match req.http_url.as_str() {
            "" => Ok(None),
            url => CallbackUrl::parse(url).map(Some),
        });
        match (request_id, reseller_code, http_url) {
            (Some(request_id), Some(reseller_code), Some(http_url)) => Ok(Self {
                request_id,
                reseller_code: reseller_code.to_owned(),
                http_url,
            }),
            _ => Err(checks.violations()),
        }
    }
}

/// Empty is allowed: the MP client then sends its access key, MP's partner code.
fn reseller_code(raw: &str) -> Result<&str, FieldViolation> {
    let violation = |why: &str| FieldViolation::new("reseller_code", why);
    if raw.len() > 64 || !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(violation(
            "must be up to 64 letters and digits, e.g. SG00000010",
        ));
    }
    Ok(raw)
}

/// SubscribeAlarms: where to start, and which alarms the stream wants.
pub(crate) struct AlarmSubscription {
    pub request_id: RequestId,
    pub resume_after: Option<AlarmId>,
    /// Empty: every order.
    pub order_codes: HashSet<String>,
    pub min_used_percent: u32,
}

impl TryFrom<&SubscribeAlarmsRequest> for AlarmSubscription {
    type Error = Vec<FieldViolation>;

    fn try_from(req: &SubscribeAlarmsRequest) -> Result<Self, Self::Error> {
        let mut checks = Checks::default();
        let request_id = checks.request_id(&req.request_id);
        let resume_after = checks.field(match req.resume_after.as_str() {
            "" => Ok(None),
            raw => raw
                .parse::<AlarmId>()
                .map(Some)
                .map_err(|e| FieldViolation::new("resume_after", e.to_string())),
        });
        let order_codes = checks.field(
            req.order_codes
                .iter()
                .map(|code| {
                    OrderCode::parse(code)
                        .map(|code| code.as_str().to_owned())
                        .map_err(|v| {
                            FieldViolation::new(
                                "order_codes",
                                format!("{:?} {}", v.field, v.description),
                            )
                        })
                })
                .collect::<Result<HashSet<_>, _>>(),
        );
        let min_used_percent = checks.field(if req.min_used_percent > 100 {
            Err(FieldViolation::new(
                "min_used_percent",
                "must be at most 100",
            ))
        } else {
            Ok(req.min_used_percent)
        });
        match (request_id, resume_after, order_codes, min_used_percent) {
            (Some(request_id), Some(resume_after), Some(order_codes), Some(min_used_percent)) => {
                Ok(Self {
                    request_id,
                    resume_after,
                    order_codes,
                    min_used_percent,
                })
            }
            _ => Err(checks.violations()),
        }
    }
}

macro_rules! identified {
    ($($checked:ty),*) => {$(
        impl Identified for $checked {
            fn request_id(&self) -> &RequestId {
                &self.request_id
            }
        }
    )*};
}
pub(super) use identified;

identified!(
    ProductListQuery,
    ProductQuery,
    OrderRequest,
    OrderQuery,
    RequestIdLookup,
    SwitchRequest,
    CallbackRegistration,
    AlarmSubscription
);
