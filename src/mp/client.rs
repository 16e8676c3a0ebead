//! The HTTP client for MP: builds, signs and sends each call, then reads
//! MP's envelope. One method per MP endpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::value::RawValue;
use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::Empty;
use url::Url;

use super::admission::{Admission, MAX_ADMISSION_WAIT, MpLimits};
use super::decode::{self, CreatedOrder, MpClock, TopUp};
use super::metrics::{self, CallRecord};
use super::retry::{self, Retries};
use super::signing::{self, SigningInput};
use super::{MpError, wire};
use crate::domain::{CallbackUrl, Iccid, OrderCode, Price, RequestId};
use crate::proto;

/// MP's REST endpoints, by the names MP's document gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ProductList,
    ActivationCode,
    TopUp,
    QueryOrderStatus,
    SwitchOrder,
    QueryTraffic,
    QueryHistoryDailyTraffic,
    SaveAlarmCallbackInterface,
}

impl Endpoint {
    /// The path below the MP host.
    pub fn path(self) -> &'static str {
        match self {
            Self::ProductList => "/mp-api/api/esim/v2/productList",
            Self::ActivationCode => "/mp-api/api/esim/v2/activationCode",
            Self::TopUp => "/mp-api/api/esim/v2/topUp",
            Self::QueryOrderStatus => "/mp-api/api/esim/queryOrderStatus",
            Self::SwitchOrder => "/mp-api/api/esim/switchOrder",
            Self::QueryTraffic => "/mp-api/api/esim/queryTraffic",
            Self::QueryHistoryDailyTraffic => "/mp-api/api/esim/v2/queryHistoryDailyTraffic",
            Self::SaveAlarmCallbackInterface => "/mp-api/api/esim/saveAlarmCallbackInterface",
        }
    }

    /// The path without the common prefix, e.g. `v2/topUp`; used in logs and metrics.
    pub fn name(self) -> &'static str {
        self.path().trim_start_matches("/mp-api/api/esim/")
    }
}

/// How to reach and authenticate with MP.
#[derive(Debug, Clone)]
pub struct MpClientConfig {
    pub base_url: Url,
    pub access_key: String,
    pub secret_key: SecretString,
    /// Upper bound of one call; a caller's shorter deadline wins.
    pub timeout: Duration,
    pub clock: MpClock,
    /// `MP_MAX_CONCURRENCY` and `MP_RATE_LIMIT_PER_SEC`.
    pub limits: MpLimits,
}

/// One gRPC call's view of an MP call: its request id and how long the caller waits.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub request_id: &'a RequestId,
    /// What is left of the caller's deadline, if it set one.
    pub deadline: Option<Duration>,
}

impl Call<'_> {
    /// How long the MP call may take (see [`upstream_timeout`]).
    pub(crate) fn upstream_timeout(&self, configured: Duration) -> Duration {
        upstream_timeout(configured, self.deadline)
    }
}

/// How long one MP request may take: the configured bound, or less when the
/// caller's deadline (`remaining` of it) is nearer. A margin is kept so the
/// gateway can still answer DEADLINE_EXCEEDED itself before the caller's
/// deadline passes.
fn upstream_timeout(configured: Duration, remaining: Option<Duration>) -> Duration {
    match remaining {
        None => configured,
        Some(remaining) => {
            let margin = (remaining / 5).min(Duration::from_millis(250));
            (remaining - margin).min(configured)
        }
    }
}

/// A new order, as validated from a CreateOrder request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub product_id: u64,
    pub goods_id: Option<u64>,
    pub order_quantity: Option<u32>,
    pub iccid: Option<Iccid>,
    pub price: Option<Price>,
    pub activate: Option<bool>,
}

/// MP's `switchButton` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchButton {
    On,
    Suspend,
    Restart,
    Off,
}

impl SwitchButton {
    fn as_str(self) -> &'static str {
        match self {
            Self::On => "ON",
            Self::Suspend => "SUSPEND",
            Self::Restart => "RESTART",
            Self::Off => "OFF",
        }
    }
}

/// A cheap-to-clone client for MP's REST API. Clones share the limits on
/// MP calls and the retry budget.
#[derive(Debug, Clone)]
pub struct MpClient {
    http: reqwest::Client,
    config: MpClientConfig,
    admission: Arc<Admission>,
    retries: Arc<Retries>,
}

/// One MP request, ready to be sent (and, for a GET, sent again).
struct Prepared {
    method: Method,
    url: Url,
    signature: String,
    body: Option<Bytes>,
}

impl MpClient {
    pub fn new(config: MpClientConfig) -> Result<Self, MpError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| MpError::NotSent(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            admission: Arc::new(Admission::new(config.limits)),
            retries: Arc::default(),
            config,
        })
    }

    /// GET retries made since the client was built (by every clone).
    pub fn retries(&self) -> u64 {
        self.retries.made()
    }

    pub async fn product_list(&self, call: Call<'_>) -> Result<Vec<proto::Product>, MpError> {
        self.observed(Endpoint::ProductList, async {
            let env: wire::Envelope<Vec<wire::ProductRow>> =
                self.get(Endpoint::ProductList, &[], call).await?;
            decode::products(env.data)
        })
        .await
    }

    pub async fn create_order(
        &self,
        order: &NewOrder,
        call: Call<'_>,
    ) -> Result<CreatedOrder, MpError> {
        self.observed(Endpoint::ActivationCode, async {
            let body = wire::ActivationCodeBody {
                goods_id: order.goods_id,
                product_id: order.product_id,
                order_quantity: order.order_quantity,
                iccid: order.iccid.as_ref().map(Iccid::as_str),
                price: order.price.as_ref().map(Price::as_json),
                activate_flag: order.activate.map(|yes| if yes { "yes" } else { "no" }),
                request_id: call.request_id.as_str(),
            };
            let env = self.post(Endpoint::ActivationCode, &body, call).await?;
            decode::created_order(env.data)
        })
        .await
    }

    pub async fn top_up(&self, order_code: &OrderCode, call: Call<'_>) -> Result<TopUp, MpError> {
        self.observed(Endpoint::TopUp, async {
            let body = wire::TopUpBody {
                order_code: order_code.as_str(),
                request_id: call.request_id.as_str(),
            };
            let env = self.post(Endpoint::TopUp, &body, call).await?;
            decode::top_up(env.data).map_err(about_order(order_code))
        })
        .await
    }

    pub async fn switch_order(
        &self,
        order_code: &OrderCode,
        button: SwitchButton,
        call: Call<'_>,
    ) -> Result<(), MpError> {
        self.observed(Endpoint::SwitchOrder, async {
            let body = wire::SwitchOrderBody {
                order_code: order_code.as_str(),
                switch_button: button.as_str(),
                request_id: call.request_id.as_str(),
            };
            let _: wire::Envelope<serde_json::Value> =
                self.post(Endpoint::SwitchOrder, &body, call).await?;
            Ok(())
        })
        .await
    }

    pub async fn order_status(
        &self,
        order_code: &OrderCode,
        call: Call<'_>,
    ) -> Result<Vec<proto::OrderPackage>, MpError> {
        let clock = self.config.clock;
        self.query_order(Endpoint::QueryOrderStatus, order_code, call, |data| {
            decode::non_null_rows(data, wire::OrderStatusRow::is_null)?
                .into_iter()
                .map(|row| decode::order_package(row, clock))
                .collect()
        })
        .await
    }

    pub async fn traffic(
        &self,
        order_code: &OrderCode,
        call: Call<'_>,
    ) -> Result<Vec<proto::PackageTraffic>, MpError> {
        let clock = self.config.clock;
        self.query_order(Endpoint::QueryTraffic, order_code, call, |data| {
            decode::non_null_rows(data, wire::TrafficRow::is_null)?
                .into_iter()
                .map(|row| decode::package_traffic(row, clock))
                .collect()
        })
        .await
    }

    pub async fn daily_traffic(
        &self,
        order_code: &OrderCode,
        call: Call<'_>,
    ) -> Result<proto::GetDailyTrafficResponse, MpError> {
        let clock = self.config.clock;
        self.query_order(
            Endpoint::QueryHistoryDailyTraffic,
            order_code,
            call,
            |data: Option<wire::DailyTrafficData>| decode::daily_traffic(data, clock),
        )
        .await
    }

    /// The GET queries about one order: `orderCode` in the query, MP's data
    /// decoded by `decode`, and MP's null data reported as about that order.
    async fn query_order<D: DeserializeOwned, T>(
        &self,
        endpoint: Endpoint,
        order_code: &OrderCode,
        call: Call<'_>,
        decode: impl FnOnce(Option<D>) -> Result<T, MpError>,
    ) -> Result<T, MpError> {
        self.observed(endpoint, async {
            let env: wire::Envelope<D> = self
                .get(endpoint, &[("orderCode", order_code.as_str())], call)
                .await?;
            decode(env.data).map_err(about_order(order_code))
        })
        .await
    }

    /// Registers `url` as the reseller's alarm callback; returns the URL MP stored.
    /// An empty `reseller_code` means ours: the access key is MP's partner code.
    pub async fn save_alarm_callback(
        &self,
        reseller_code: &str,
        url: &CallbackUrl,
        call: Call<'_>,
    ) -> Result<String, MpError> {
        self.observed(Endpoint::SaveAlarmCallbackInterface, async {
            let reseller_code = if reseller_code.is_empty() {
                self.config.access_key.as_str()
            } else {
                reseller_code
            };
            let body = wire::SaveCallbackBody {
                reseller_code,
                http_method: "POST",
                http_url: url.as_str(),
                request_id: call.request_id.as_str(),
            };
            let env: wire::Envelope<serde_json::Value> = self
                .post(Endpoint::SaveAlarmCallbackInterface, &body, call)
                .await?;
            Ok(match env.data {
                Some(serde_json::Value::String(stored)) => stored,
                _ => url.as_str().to_owned(),
            })
        })
        .await
    }

    /// Runs one MP call in an `mp call` span, counting and timing it by outcome.
    async fn observed<T>(
        &self,
        endpoint: Endpoint,
        call: impl Future<Output = Result<T, MpError>>,
    ) -> Result<T, MpError> {
        let span = if crate::trace_context::exported() {
            tracing::info_span!(
                "mp call",
                otel.name = format!("MP {}", endpoint.name()),
                otel.kind = "internal",
                otel.status_code = Empty,
                endpoint = endpoint.name(),
                outcome = Empty,
            )
        } else {
            tracing::info_span!("mp call", endpoint = endpoint.name(), outcome = Empty)
        };
        let mut record = CallRecord::start(endpoint, span.clone());
        let result = call.instrument(span).await;
        record.finish(metrics::outcome(&result));
        result
    }

    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        params: &[(&str, &str)],
        call: Call<'_>,
    ) -> Result<wire::Envelope<T>, MpError> {
        let mut query = params.to_vec();
        query.push(("requestId", call.request_id.as_str()));
        self.send(endpoint, Method::GET, &query, None, call).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        body: &B,
        call: Call<'_>,
    ) -> Result<wire::Envelope<T>, MpError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| MpError::Malformed(format!("cannot encode request: {e}")))?;
        self.send(endpoint, Method::POST, &[], Some(body.into()), call)
            .await
    }

    /// Sends one call: a POST once, a GET up to [`retry::MAX_RETRIES`] more
    /// times when it failed in a way a retry can cure, the budget allows and
    /// the caller's deadline leaves time. Every attempt first passes the
    /// limits on MP calls.
    async fn send<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        method: Method,
        query: &[(&str, &str)],
        body: Option<Bytes>,
        call: Call<'_>,
    ) -> Result<wire::Envelope<T>, MpError> {
        // A deadline too far to represent is no deadline.
        let deadline = call.deadline.and_then(|d| Instant::now().checked_add(d));
        let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let request = self.prepare(endpoint, method, query, body);
        self.retries.deposit();
        let mut retries_made = 0;
        let mut previous: Option<MpError> = None;
        loop {
            let attempt = if crate::trace_context::exported() {
                tracing::info_span!(
                    "mp attempt",
                    otel.kind = "client",
                    endpoint = endpoint.name(),
                    attempt = retries_made + 1,
                    http.response.status_code = Empty,
                )
            } else {
                tracing::info_span!("mp attempt", attempt = retries_made + 1)
            };
            let result = self
                .attempt(&request, remaining())
                .instrument(attempt)
                .await;
            let error = match (result, previous.take()) {
                (Ok(envelope), _) => return Ok(envelope),
                // A retry the limits refuse reports MP's failure, not the gateway's limit.
                (Err(MpError::Overloaded { .. }), Some(previous)) => return Err(previous),
                (Err(error), _) => error,
            };
            if request.method != Method::GET
                || retries_made == retry::MAX_RETRIES
                || !retry::is_retryable(&error, self.config.timeout)
            {
                return Err(error);
            }
            let jitter = rand::random_range(0.0..1.0);
            let Some(pause) = retry::backoff(retries_made, jitter, remaining()) else {
                return Err(error);
            };
            if !self.retries.withdraw() {
                tracing::debug!(endpoint = endpoint.name(), %error, "retry budget spent; not retrying");
                return Err(error);
            }
            retries_made += 1;
            metrics::count_retry(endpoint);
            tracing::debug!(
                endpoint = endpoint.name(),
                retry = retries_made,
                ?pause,
                %error,
                "retrying an MP GET"
            );
            tokio::time::sleep(pause).await;
            previous = Some(error);
        }
    }

    /// Builds the URL and signs the request (MP's signature has no date, so
    /// it holds for every attempt).
    fn prepare(
        &self,
        endpoint: Endpoint,
        method: Method,
        query: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Prepared {
        let canonical_query = signing::canonical_query(query.iter().copied());
        let mut url = self.config.base_url.clone();
        let path = format!("{}{}", url.path().trim_end_matches('/'), endpoint.path());
        url.set_path(&path);
        url.set_query(
            Some(&canonical_query)
                .filter(|q| !q.is_empty())
                .map(String::as_str),
        );
        let signature = SigningInput {
            method: method.as_str(),
            path: &path,
            canonical_query: &canonical_query,
            access_key: &self.config.access_key,
            date: None,
            signed_headers: signing::MP_SIGNED_HEADER_VALUES,
        }
        .signature(self.config.secret_key.expose_secret().as_bytes());
        Prepared {
            method,
            url,
            signature,
            body,
        }
    }

    /// One attempt: passes the limits, then sends and reads MP's envelope.
    async fn attempt<T: DeserializeOwned>(
        &self,
        request: &Prepared,
        remaining: Option<Duration>,
    ) -> Result<wire::Envelope<T>, MpError> {
        let wait = remaining.map_or(MAX_ADMISSION_WAIT, |r| r.min(MAX_ADMISSION_WAIT));
        let admitted = Instant::now();
        let _permit = self.admission.admit(wait).await?;
        let remaining = remaining.map(|r| r.saturating_sub(admitted.elapsed()));
        let timeout = upstream_timeout(self.config.timeout, remaining);
        let mut http = self
            .http
            .request(request.method.clone(), request.url.clone())
            .timeout(timeout)
            .header("X-HMAC-ACCESS-KEY", &self.config.access_key)
            .header("X-HMAC-ALGORITHM", signing::ALGORITHM)
            .header("X-HMAC-SIGNED-HEADERS", signing::SIGNED_HEADERS)
            .header("X-HMAC-SIGNATURE", &request.signature)
            .header("Accept-Language", signing::ACCEPT_LANGUAGE)
            .header("Content-Type", signing::CONTENT_TYPE);
        // W3C trace context, so MP's side of the call joins the caller's trace.
        let mut trace_headers = http::HeaderMap::new();
        crate::trace_context::inject(&mut trace_headers);
        http = http.headers(trace_headers);
        if let Some(body) = &request.body {
            http = http.body(body.clone());
        }
        let transport = |e: reqwest::Error| {
            if e.is_connect() {
                MpError::NotSent(error_chain(&e))
            } else if e.is_timeout() {
                MpError::Timeout(timeout)
            } else {
                MpError::Unreachable(error_chain(&e))
            }
        };
        let response = http.send().await.map_err(transport)?;
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(MpError::AuthFailed);
        }
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            let (upstream_code, msg) = error_body(&body);
            return Err(MpError::HttpStatus {
                status: status.as_u16(),
                upstream_code,
                msg,
            });
        }
        let bytes = response.bytes().await.map_err(transport)?;
        let malformed = |e: serde_json::Error| {
            MpError::Malformed(format!("{e}; body starts {:?}", snippet(&bytes)))
        };
        // The envelope first: a refusal keeps MP's message whatever `data` holds ("", {}, []).
        let envelope: wire::Envelope<Box<RawValue>> =
            serde_json::from_slice(&bytes).map_err(malformed)?;
        if envelope.code != 200 {
            return Err(MpError::Business {
                code: envelope.code,
                msg: envelope.msg.unwrap_or_default(),
            });
        }
        let data = envelope
            .data
            .map(|raw| serde_json::from_str::<T>(raw.get()))
            .transpose()
            .map_err(malformed)?;
        Ok(wire::Envelope {
            code: envelope.code,
            msg: envelope.msg,
            data,
        })
    }
}

/// Names the order in a null-data error, so the caller reads which one MP does not know.
/// MP's null data, said of the order asked about.
fn about_order(order_code: &OrderCode) -> impl FnOnce(MpError) -> MpError + '_ {
    move |error| match error {
        MpError::NullData(_) => MpError::NullData(format!("order {order_code}")),
        other => other,
    }
}

/// reqwest's top-level message hides the cause ("error sending request"); keep the chain.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an HTTP error's body says: MP's envelope `code` and `msg`, or its text.
fn error_body(body: &[u8]) -> (Option<i64>, Option<String>) {
    const MAX_CHARS: usize = 200;
    if let Ok(envelope) = serde_json::from_slice::<wire::Envelope<IgnoredAny>>(body) {
        let msg = envelope.msg.filter(|m| !m.trim().is_empty());
        return (Some(envelope.code), msg);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let msg = (!text.is_empty()).then(|| text.chars().take(MAX_CHARS).collect());
    (None, msg)
}

fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}
