//! The embedded MP simulator ("sandbox"): MP's eight endpoints served over
//! real HTTP on a loopback port, with MP's HMAC auth, orders whose traffic
//! grows over time, alarm callbacks and injectable faults. The gateway's real
//! HTTP client talks to it exactly as it would to MP.

mod alarms;
mod auth;
mod catalogue;
mod errors;
mod faults;
mod handlers;
mod ids;
mod orders;
mod recording;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;

use state::{InjectedFault, Shared, lock};

/// Where MP's endpoints live; endpoint names are relative to it.
pub const PATH_PREFIX: &str = "/mp-api/api/esim/";

/// MP's endpoints, by the names [`Sandbox::calls`] takes.
pub const ENDPOINTS: [&str; 8] = [
    "queryOrderStatus",
    "queryTraffic",
    "switchOrder",
    "saveAlarmCallbackInterface",
    "v2/productList",
    "v2/activationCode",
    "v2/topUp",
    "v2/queryHistoryDailyTraffic",
];

/// How long [`Sandbox::shutdown`] lets open requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the sandbox authenticates callers and simulates usage.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The reseller's access key (`X-HMAC-ACCESS-KEY`, also the `resellerCode`).
    pub access_key: String,
    /// The HMAC secret requests must be signed with.
    pub secret_key: SecretString,
    /// How fast an in-use order consumes data.
    pub traffic_mb_per_sec: f64,
}

impl SandboxConfig {
    /// Usage grows at this many MB per second unless told otherwise.
    pub const DEFAULT_TRAFFIC_MB_PER_SEC: f64 = 10.0;

    /// A config with the default traffic rate.
    pub fn new(access_key: impl Into<String>, secret_key: SecretString) -> SandboxConfig {
        SandboxConfig {
            access_key: access_key.into(),
            secret_key,
            traffic_mb_per_sec: Self::DEFAULT_TRAFFIC_MB_PER_SEC,
        }
    }
}

/// A way for MP to misbehave, applied after auth to every request until
/// cleared ([`Sandbox::set_fault`]) or to the next few ([`Sandbox::set_fault_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this HTTP status with a short text body.
    HttpStatus(u16),
    /// Answer 200 with an HTML page instead of JSON.
    NotJson,
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Answer the envelope with this `code` and `msg`.
    BusinessError { code: i64, msg: String },
}

/// A running sandbox. Clones share it; it stops on [`Sandbox::shutdown`] or
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    /// Dropping it (with the last handle) also stops the tasks.
    stop: watch::Sender<bool>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free one) and serves in spawned tasks;
    /// the port accepts connections as soon as this returns.
    pub async fn start(addr: SocketAddr, config: SandboxConfig) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, alarms::client()?));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(alarms::run(shared.clone(), stopped.clone()));
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop_requested(stopped))
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "sandbox server failed");
            }
        });
        tracing::info!(%local_addr, "MP sandbox listening");
        let inner = Inner {
            shared,
            local_addr,
            stop,
            server: Mutex::new(Some(server)),
        };
        Ok(Sandbox {
            inner: Arc::new(inner),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// `http://IP:PORT`, without a trailing slash: what the gateway uses as
    /// MP's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.local_addr)
    }

    /// Every HTTP request received, rejected ones included.
    pub fn total_requests(&self) -> u64 {
        self.inner.shared.stats.total_requests()
    }

    /// Authenticated requests to `endpoint` (e.g. `"v2/productList"`),
    /// including those then answered by a [`Fault`].
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.inner.shared.stats.calls(endpoint)
    }

    /// The `requestId` of the last authenticated call to `endpoint`; `None`
    /// if there was none or it carried none.
    pub fn last_request_id(&self, endpoint: &str) -> Option<String> {
        self.inner.shared.stats.last_request_id(endpoint)
    }

    /// The value of header `name` on the last authenticated call to
    /// `endpoint`; `None` if there was no such call or header (or it is not text).
    pub fn last_header(&self, endpoint: &str, name: &str) -> Option<String> {
        self.inner.shared.stats.last_header(endpoint, name)
    }

    /// Sets (or with `None` clears) the fault every following request gets.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *lock(&self.inner.shared.fault) = fault.map(|fault| InjectedFault {
            fault,
            remaining: None,
        });
    }

    /// Gives the next `requests` authenticated requests this fault, then
    /// answers normally again (a transient failure). 0 clears any fault.
    pub fn set_fault_for(&self, requests: u64, fault: Fault) {
        *lock(&self.inner.shared.fault) = (requests > 0).then_some(InjectedFault {
            fault,
            remaining: Some(requests),
        });
    }

    /// The most requests (of any kind) the sandbox was serving at once.
    pub fn max_in_flight(&self) -> u64 {
        self.inner.shared.stats.max_in_flight()
    }

    /// The URL saved by `saveAlarmCallbackInterface`.
    pub fn callback_url(&self) -> Option<String> {
        lock(&self.inner.shared.callback_url).clone()
    }

    /// Alarm callbacks the receiver acknowledged with a 2xx.
    pub fn alarms_delivered(&self) -> u64 {
        self.inner.shared.stats.alarms_delivered()
    }

    /// Stops accepting, lets open requests finish (for a bounded time), and
    /// stops the alarm task. Other clones see a closed port afterwards.
    pub async fn shutdown(self) {
        let _ = self.inner.stop.send(true);
        let server = lock(&self.inner.server).take();
        if let Some(server) = server {
            let abort = server.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

/// Resolves on an explicit stop, or when every handle is gone.
async fn stop_requested(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// MP's routes behind, outermost first: request counting, HMAC auth,
/// per-endpoint recording, fault injection.
fn router(shared: Arc<Shared>) -> Router {
    let path = |endpoint: &str| format!("{PATH_PREFIX}{endpoint}");
    let layers = ServiceBuilder::new()
        .layer(from_fn_with_state(shared.clone(), recording::count_request))
        .layer(from_fn_with_state(shared.clone(), auth::require_signature))
        .layer(from_fn_with_state(shared.clone(), recording::record_call))
        .layer(from_fn_with_state(shared.clone(), faults::inject));
    Router::new()
        .route(&path("queryOrderStatus"), get(handlers::query_order_status))
        .route(&path("queryTraffic"), get(handlers::query_traffic))
        .route(&path("switchOrder"), post(handlers::switch_order))
        .route(
            &path("saveAlarmCallbackInterface"),
            post(handlers::save_callback),
        )
        .route(&path("v2/productList"), get(handlers::product_list))
        .route(&path("v2/activationCode"), post(handlers::activation_code))
        .route(&path("v2/topUp"), post(handlers::top_up))
        .route(
            &path("v2/queryHistoryDailyTraffic"),
            get(handlers::query_daily_traffic),
        )
        .layer(layers)
        .with_state(shared)
}
