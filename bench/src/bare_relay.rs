//! The ceilings of the alarm relay: the least any relay of MP callbacks to
//! `SubscribeAlarms` streams can do on this machine.
//!
//! - **bare**: an axum `POST /mp/alarm-callback` parses the JSON into the
//!   proto `Alarm`, sends it to a `tokio::sync::broadcast` channel and answers
//!   200; `SubscribeAlarms` streams that channel. No Redis, no filters, no
//!   resume, no dedup. Two such replicas know nothing of each other.
//! - **Redis bare**: the same, but the handler XADDs the encoded alarm to a
//!   Redis Stream (MAXLEN ~) before the 200, and one reader per replica (its
//!   own connection, XREAD BLOCK from the last id) feeds the broadcast, so an
//!   alarm posted to either replica reaches the subscribers of both.
//!
//! Both end a stream whose subscriber falls more than the buffer behind,
//! like the gateway, with RESOURCE_EXHAUSTED (but offer no replay).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::Stream;
use mp_gateway::proto::alarm_service_server::{AlarmService, AlarmServiceServer};
use mp_gateway::proto::{
    Alarm, RegisterCallbackRequest, RegisterCallbackResponse, SubscribeAlarmsRequest,
    SubscribeAlarmsResponse,
};
use prost::Message;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Status};

use crate::BenchError;

/// Alarms a subscriber may fall behind (the gateway's default `ALARM_SUBSCRIBER_BUFFER`).
pub const BUFFER: usize = 1024;
/// MAXLEN ~ of the stream (the gateway's default `ALARM_RETENTION`).
const RETENTION: usize = 100_000;
const READ_BLOCK: Duration = Duration::from_secs(2);
const ENVELOPE: &str = r#"{"code":200,"msg":"Success","data":null}"#;

/// Where a Redis-backed bare relay keeps its log.
#[derive(Clone)]
pub struct RedisLog {
    pub client: redis::Client,
    pub key: String,
}

/// One running replica of a ceiling.
pub struct BareReplica {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for BareReplica {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Relay {
    live: broadcast::Sender<Arc<Alarm>>,
    next_id: AtomicU64,
    /// The stream to XADD to, when Redis-backed.
    log: Option<(MultiplexedConnection, String)>,
}

/// Starts one replica; `log` makes it Redis-backed.
pub async fn start(log: Option<RedisLog>) -> Result<BareReplica, BenchError> {
    let start_error =
        |what: &str, e: &dyn std::fmt::Display| BenchError::Start(format!("{what}: {e}"));
    let (live, _) = broadcast::channel(BUFFER);
    let mut tasks = Vec::new();
    let log = match log {
        None => None,
        Some(log) => {
            let conn = log
                .client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| start_error("Redis", &e))?;
            tasks.push(tokio::spawn(read_forever(
                log.client.clone(),
                log.key.clone(),
                live.clone(),
            )));
            Some((conn, log.key))
        }
    };
    let relay = Arc::new(Relay {
        live: live.clone(),
        next_id: AtomicU64::new(1),
        log,
    });
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let http_listener = TcpListener::bind(loopback)
        .await
        .map_err(|e| start_error("bind", &e))?;
    let grpc_listener = TcpListener::bind(loopback)
        .await
        .map_err(|e| start_error("bind", &e))?;
    let http = http_listener
        .local_addr()
        .map_err(|e| start_error("bind", &e))?;
    let grpc = grpc_listener
        .local_addr()
        .map_err(|e| start_error("bind", &e))?;
    let router = axum::Router::new()
        .route(mp_gateway::alarms::callback::PATH, post(receive))
        .with_state(relay);
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(http_listener, router).await;
    }));
    let incoming = TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
    let server = Server::builder()
        .add_service(AlarmServiceServer::new(BareAlarms { live }))
        .serve_with_incoming(incoming);
    tasks.push(tokio::spawn(async move {
        let _ = server.await;
    }));
    Ok(BareReplica { http, grpc, tasks })
}

/// MP's callback body (mp-api-v2.md 4.5.2), as strings.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Callback {
    eid: String,
    package_code: String,
    order_code: String,
    package_used_rate: String,
    #[serde(default)]
    request_id: String,
}

impl Callback {
    fn into_alarm(self) -> Alarm {
        Alarm {
            id: String::new(),
            used_percent: self
                .package_used_rate
                .trim_end_matches('%')
                .parse()
                .unwrap_or(0),
            eid: self.eid,
            package_code: self.package_code,
            order_code: self.order_code,
            used_rate: self.package_used_rate,
            received_at: Some(SystemTime::now().into()),
            request_id: self.request_id,
        }
    }
}

async fn receive(State(relay): State<Arc<Relay>>, body: Bytes) -> Response {
    let Ok(callback) = serde_json::from_slice::<Callback>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed callback").into_response();
    };
    let mut alarm = callback.into_alarm();
    match &relay.log {
        None => {
            alarm.id = relay.next_id.fetch_add(1, Ordering::Relaxed).to_string();
            // No receivers is fine: nobody subscribed right now.
            let _ = relay.live.send(Arc::new(alarm));
        }
        Some((conn, key)) => {
            let added: redis::RedisResult<String> = redis::cmd("XADD")
                .arg(key)
                .arg("MAXLEN")
                .arg("~")
                .arg(RETENTION)
                .arg("*")
                .arg("a")
                .arg(alarm.encode_to_vec())
                .query_async(&mut conn.clone())
                .await;
            if added.is_err() {
                return (StatusCode::SERVICE_UNAVAILABLE, "not stored").into_response();
            }
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        ENVELOPE,
    )
        .into_response()
}

/// The replica's reader: XREAD BLOCK from the last id seen (from `$` at
/// first), broadcast each entry; reconnects after an error.
async fn read_forever(client: redis::Client, key: String, live: broadcast::Sender<Arc<Alarm>>) {
    let mut position = "$".to_owned();
    loop {
        if let Err(error) = read(&client, &key, &live, &mut position).await {
            eprintln!("  (bare relay reader: {error}; reconnecting)");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn read(
    client: &redis::Client,
    key: &str,
    live: &broadcast::Sender<Arc<Alarm>>,
    position: &mut String,
) -> redis::RedisResult<()> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(READ_BLOCK + Duration::from_secs(3)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    loop {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("COUNT")
            .arg(1000)
            .arg("STREAMS")
            .arg(key)
            .arg(position.as_str())
            .query_async(&mut conn)
            .await?;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            let alarm = entry
                .get::<Vec<u8>>("a")
                .and_then(|bytes| Alarm::decode(bytes.as_slice()).ok());
            if let Some(mut alarm) = alarm {
                alarm.id = entry.id.clone();
                let _ = live.send(Arc::new(alarm));
            }
            *position = entry.id;
        }
    }
}

struct BareAlarms {
    live: broadcast::Sender<Arc<Alarm>>,
}

type AlarmStream = Pin<Box<dyn Stream<Item = Result<SubscribeAlarmsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AlarmService for BareAlarms {
    async fn register_callback(
        &self,
        _request: Request<RegisterCallbackRequest>,
    ) -> Result<tonic::Response<RegisterCallbackResponse>, Status> {
        Err(Status::unimplemented("the bare relay only streams"))
    }

    type SubscribeAlarmsStream = AlarmStream;

    async fn subscribe_alarms(
        &self,
        _request: Request<SubscribeAlarmsRequest>,
    ) -> Result<tonic::Response<Self::SubscribeAlarmsStream>, Status> {
        let live = self.live.subscribe();
        let stream = futures::stream::unfold(Some(live), |live| async move {
            let mut live = live?;
            match live.recv().await {
                Ok(alarm) => {
                    let response = SubscribeAlarmsResponse {
                        alarm: Some(Alarm::clone(&alarm)),
                    };
                    Some((Ok(response), Some(live)))
                }
                Err(broadcast::error::RecvError::Lagged(_)) => Some((
                    Err(Status::resource_exhausted("fell behind the buffer")),
                    None,
                )),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    // The bare relay measures fan-out only; shared subscriptions are not part of it.
    type ConsumeAlarmsStream = Pin<
        Box<dyn Stream<Item = Result<mp_gateway::proto::ConsumeAlarmsResponse, Status>> + Send>,
    >;

    async fn consume_alarms(
        &self,
        _request: Request<tonic::Streaming<mp_gateway::proto::ConsumeAlarmsRequest>>,
    ) -> Result<tonic::Response<Self::ConsumeAlarmsStream>, Status> {
        Err(Status::unimplemented("the bare relay only fans out"))
    }

    async fn list_subscriptions(
        &self,
        _request: Request<mp_gateway::proto::ListSubscriptionsRequest>,
    ) -> Result<tonic::Response<mp_gateway::proto::ListSubscriptionsResponse>, Status> {
        Err(Status::unimplemented("the bare relay only fans out"))
    }

    async fn delete_subscription(
        &self,
        _request: Request<mp_gateway::proto::DeleteSubscriptionRequest>,
    ) -> Result<tonic::Response<mp_gateway::proto::DeleteSubscriptionResponse>, Status> {
        Err(Status::unimplemented("the bare relay only fans out"))
    }
}
