//! The real binary's log: JSON lines, one `rpc finished` line per gRPC call
//! (method, code, latency, request id), and never a secret, whatever the
//! calls and callbacks it served.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use mp_gateway::proto::order_service_client::OrderServiceClient;
use mp_gateway::proto::product_service_client::ProductServiceClient;
use mp_gateway::proto::{CreateOrderRequest, GetOrderStatusRequest, ListProductsRequest};
use serde_json::Value;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{
    callback_body, free_port, http_client, loopback, metric, sandbox_binary, sigterm_and_wait,
    wait_until_ready, with_token,
};

const MP_SECRET_KEY: &str = "mp-secret-key-never-logged";
const MP_ACCESS_KEY: &str = "mp-access-key-never-logged";
const CALLBACK_TOKEN: &str = "callback-token-never-logged";
const GRPC_TOKEN: &str = "grpc-token-never-logged";
const OTHER_GRPC_TOKEN: &str = "second-grpc-token-never-logged";
const REDIS_PASSWORD: &str = "pw-secret";
const SECRETS: &[&str] = &[
    MP_SECRET_KEY,
    MP_ACCESS_KEY,
    CALLBACK_TOKEN,
    GRPC_TOKEN,
    OTHER_GRPC_TOKEN,
    REDIS_PASSWORD,
];

/// The binary in sandbox mode with every secret set, logging JSON (our
/// crate at DEBUG, so the quieter lines are checked too) into `log`.
fn start_gateway(grpc: u16, http: u16, log: &std::path::Path) -> Child {
    sandbox_binary(grpc, http)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info,mp_gateway=debug")
        .env("SHUTDOWN_GRACE_SECS", "3")
        .env("MP_SECRET_KEY", MP_SECRET_KEY)
        .env("MP_ACCESS_KEY", MP_ACCESS_KEY)
        .env("CALLBACK_TOKEN", CALLBACK_TOKEN)
        .env(
            "GRPC_AUTH_TOKENS",
            format!("{GRPC_TOKEN},{OTHER_GRPC_TOKEN}"),
        )
        .env(
            "REDIS_URL",
            format!("redis://:{REDIS_PASSWORD}@127.0.0.1:6379"),
        )
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::from(
            std::fs::File::create(log).expect("log file can be created"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(log.with_extension("stderr")).expect("stderr file"),
        ))
        .spawn()
        .expect("binary starts")
}

/// One gRPC call the test made, and what its log line must say.
struct Made {
    method: &'static str,
    code: Code,
    /// `None` when the call never reached a handler (refused by auth).
    request_id: Option<String>,
}

/// Makes calls of every kind: allowed and refused, OK and failing.
async fn make_calls(channel: Channel) -> Vec<Made> {
    let mut made = Vec::new();
    let id = |what: &str| format!("logs-{what}-{}", uuid::Uuid::new_v4().simple());
    let mut products = ProductServiceClient::new(channel.clone());
    let mut orders = OrderServiceClient::new(channel.clone());

    let list_id = id("list");
    let list = ListProductsRequest {
        request_id: list_id.clone(),
        ..Default::default()
    };
    let answer = products
        .list_products(with_token(list.clone(), Some(GRPC_TOKEN)))
        .await;
    made.push(Made {
        method: "linksfield.mp.v1.ProductService/ListProducts",
        code: answer
            .as_ref()
            .map_or_else(tonic::Status::code, |_| Code::Ok),
        request_id: Some(list_id),
    });
    for token in [None, Some("not-a-token")] {
        let refused = products
            .list_products(with_token(list.clone(), token))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        made.push(Made {
            method: "linksfield.mp.v1.ProductService/ListProducts",
            code: Code::Unauthenticated,
            request_id: None,
        });
    }

    for (what, order_code, code) in [
        ("unknown", "ORDER_NOBODY_KNOWS", Code::NotFound),
        ("invalid", "", Code::InvalidArgument),
    ] {
        let request_id = id(what);
        let request = GetOrderStatusRequest {
            order_code: order_code.into(),
            request_id: request_id.clone(),
        };
        let failed = orders
            .get_order_status(with_token(request, Some(OTHER_GRPC_TOKEN)))
            .await
            .unwrap_err();
        assert_eq!(failed.code(), code, "{failed:?}");
        made.push(Made {
            method: "linksfield.mp.v1.OrderService/GetOrderStatus",
            code,
            request_id: Some(request_id),
        });
    }

    // Its idempotency record needs Redis, which refuses the password: any
    // answer will do, the line must name it.
    let order_id = id("order");
    let order = CreateOrderRequest {
        product_id: 5,
        request_id: order_id.clone(),
        ..Default::default()
    };
    let answer = orders
        .create_order(with_token(order, Some(GRPC_TOKEN)))
        .await;
    made.push(Made {
        method: "linksfield.mp.v1.OrderService/CreateOrder",
        code: answer
            .as_ref()
            .map_or_else(tonic::Status::code, |_| Code::Ok),
        request_id: Some(order_id),
    });

    let mut health = HealthClient::new(channel);
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers without a token");
    made.push(Made {
        method: "grpc.health.v1.Health/Check",
        code: Code::Ok,
        request_id: None,
    });
    made
}

/// A callback with the right token and one with a wrong token.
async fn post_callbacks(http: SocketAddr) {
    let client = http_client();
    let body = callback_body("ORDER_LOGS", "53%", &uuid::Uuid::new_v4().to_string());
    for token in [CALLBACK_TOKEN, "wrong-token"] {
        client
            .post(format!("http://{http}/mp/alarm-callback?token={token}"))
            .json(&body)
            .send()
            .await
            .expect("the callback endpoint answers");
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[tokio::test]
async fn the_log_is_json_with_one_line_per_rpc_and_no_secret() {
    let (grpc, http) = (free_port(), free_port());
    let log = std::env::temp_dir().join(format!("mp-gateway-logs-{}.log", uuid::Uuid::new_v4()));
    let mut child = start_gateway(grpc, http, &log);
    let http_addr = loopback(http);
    wait_until_ready(&mut child, http_addr, Duration::from_secs(20)).await;
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .expect("valid URI")
        .connect()
        .await
        .expect("gRPC port accepts");
    let made = make_calls(channel).await;
    post_callbacks(http_addr).await;
    let exit = sigterm_and_wait(child, Duration::from_secs(15)).await;

    let stdout = std::fs::read_to_string(&log).expect("log file");
    let stderr = std::fs::read_to_string(log.with_extension("stderr")).expect("stderr file");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(log.with_extension("stderr"));
    assert!(exit.success(), "exit status {exit}:\n{stderr}");
    for secret in SECRETS {
        assert!(
            !stdout.contains(secret),
            "stdout shows {secret:?}:\n{stdout}"
        );
        assert!(
            !stderr.contains(secret),
            "stderr shows {secret:?}:\n{stderr}"
        );
    }
    let lines = json_lines(&stdout);
    assert!(
        lines.iter().any(|l| l["message"] == "stopped"),
        "the log runs to the end:\n{stdout}"
    );
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "rpc finished")
        .collect();
    assert_eq!(finished.len(), made.len(), "{finished:#?}");
    for call in &made {
        let code = mp_gateway::api::observe::code_name(call.code);
        let matching: Vec<&&Value> = finished
            .iter()
            .filter(|l| {
                l["method"] == call.method
                    && l["code"] == code
                    && l["request_id"].as_str() == call.request_id.as_deref()
            })
            .collect();
        let expected = made
            .iter()
            .filter(|m| {
                m.method == call.method && m.code == call.code && m.request_id == call.request_id
            })
            .count();
        assert_eq!(
            matching.len(),
            expected,
            "{} {code} {:?} in {finished:#?}",
            call.method,
            call.request_id
        );
        for line in matching {
            assert!(line["latency_ms"].as_f64().is_some(), "{line}");
        }
    }
}

/// The binary at the default `RUST_LOG` (`info`), `ACCESS_LOG` as given; makes
/// an OK call, a refused one (INVALID_ARGUMENT) and a failed one (UNAVAILABLE:
/// Redis refuses the password), stops, and returns the `rpc finished` lines.
async fn rpc_lines_with_access_log(access_log: Option<&str>) -> Vec<Value> {
    let (grpc, http) = (free_port(), free_port());
    let log = std::env::temp_dir().join(format!("mp-gateway-access-{}.log", uuid::Uuid::new_v4()));
    let mut command = sandbox_binary(grpc, http);
    command
        .env_remove("RUST_LOG")
        .env_remove("ACCESS_LOG")
        .env("LOG_FORMAT", "json")
        .env(
            "REDIS_URL",
            format!("redis://:{REDIS_PASSWORD}@127.0.0.1:6379"),
        )
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log file")));
    if let Some(value) = access_log {
        command.env("ACCESS_LOG", value);
    }
    let mut child = command.spawn().expect("binary starts");
    wait_until_ready(&mut child, loopback(http), Duration::from_secs(20)).await;
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .expect("valid URI")
        .connect()
        .await
        .expect("gRPC port accepts");
    let mut products = ProductServiceClient::new(channel.clone());
    let mut orders = OrderServiceClient::new(channel);
    products
        .list_products(ListProductsRequest::default())
        .await
        .expect("OK");
    let refused = orders
        .get_order_status(GetOrderStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let failed = orders
        .create_order(CreateOrderRequest {
            product_id: 5,
            request_id: "access-log-unavailable".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    let exit = sigterm_and_wait(child, Duration::from_secs(15)).await;
    assert!(exit.success());
    let stdout = std::fs::read_to_string(&log).expect("log file");
    let _ = std::fs::remove_file(&log);
    json_lines(&stdout)
        .into_iter()
        .filter(|l| l["message"] == "rpc finished")
        .collect()
}

#[tokio::test]
async fn without_the_access_log_only_failed_calls_are_logged_and_with_it_every_call() {
    let quiet = rpc_lines_with_access_log(None).await;
    assert_eq!(quiet.len(), 1, "only the failed call: {quiet:#?}");
    assert_eq!(quiet[0]["level"], "WARN");
    assert_eq!(quiet[0]["code"], "UNAVAILABLE");

    let every = rpc_lines_with_access_log(Some("on")).await;
    let levels: Vec<(&str, &str)> = every
        .iter()
        .map(|l| (l["code"].as_str().unwrap(), l["level"].as_str().unwrap()))
        .collect();
    assert_eq!(
        levels,
        [
            ("OK", "INFO"),
            ("INVALID_ARGUMENT", "INFO"),
            ("UNAVAILABLE", "WARN")
        ]
    );
}

/// A client retrying with a wrong token must not flood the log: refusals are
/// counted, and said at WARN at most once per interval with how many.
#[tokio::test]
async fn refused_tokens_are_counted_and_warned_about_at_most_once_per_interval() {
    let (grpc, http) = (free_port(), free_port());
    let log = std::env::temp_dir().join(format!("mp-gateway-auth-{}.log", uuid::Uuid::new_v4()));
    let mut child = start_gateway(grpc, http, &log);
    let http_addr = loopback(http);
    wait_until_ready(&mut child, http_addr, Duration::from_secs(20)).await;
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .expect("valid URI")
        .connect()
        .await
        .expect("gRPC port accepts");
    let mut products = ProductServiceClient::new(channel);
    for _ in 0..200 {
        let refused = products
            .list_products(with_token(
                ListProductsRequest::default(),
                Some("not-a-token"),
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    let client = http_client();
    for _ in 0..200 {
        let refused = client
            .post(format!("http://{http_addr}/mp/alarm-callback?token=wrong"))
            .json(&callback_body("ORDER_1", "53%", "wrong-token"))
            .send()
            .await
            .expect("the callback endpoint answers");
        assert_eq!(refused.status().as_u16(), 401);
    }
    let counted = metric(
        http_addr,
        "mp_gateway_grpc_auth_refused_total",
        &["reason=\"invalid_token\""],
    )
    .await;
    let exit = sigterm_and_wait(child, Duration::from_secs(15)).await;

    let stdout = std::fs::read_to_string(&log).expect("log file");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(log.with_extension("stderr"));
    assert!(exit.success(), "exit status {exit}");
    assert_eq!(counted, 200.0);
    let warnings: Vec<Value> = json_lines(&stdout)
        .into_iter()
        .filter(|l| l["level"] == "WARN" && l["target"] == "mp_gateway::api::auth")
        .collect();
    assert!(
        (1..=2).contains(&warnings.len()),
        "{} WARN lines about refused tokens: {warnings:#?}",
        warnings.len()
    );
    assert!(
        warnings[0]["refused"].as_u64().is_some(),
        "{:#?}",
        warnings[0]
    );
    let callback_warnings = json_lines(&stdout)
        .into_iter()
        .filter(|l| l["level"] == "WARN" && l["target"] == "mp_gateway::alarms::callback")
        .count();
    assert!(
        (1..=2).contains(&callback_warnings),
        "{callback_warnings} WARN lines for 200 callbacks with a wrong token"
    );
}
