//! Start, probes and shutdown, in process and as the real binary.

use std::process::Stdio;
use std::time::Duration;

use mp_gateway::proto::GetOrderStatusRequest;
use mp_gateway::sandbox::Fault;
use tokio::time::timeout;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::support::{
    free_port, gateway_binary, gateway_with_sandbox, http_client, loopback, padded_callback_body,
    sandbox_binary, sigterm_and_wait, subscriber_that_never_reads, wait_until_ready,
};

async fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    mp_gateway::tls::install_crypto_provider();
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn health_probes_answer_while_serving() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    assert_eq!(http_status(gateway.http_addr, "/healthz").await, 200);
    assert_eq!(http_status(gateway.http_addr, "/readyz").await, 200);
    let mut health = HealthClient::new(gateway.channel.clone());
    for service in ["", "linksfield.mp.v1.OrderService"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "{service:?}");
    }
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_and_lets_in_flight_calls_finish() {
    const WAIT: Duration = Duration::from_secs(10);
    let (mut gateway, sandbox) = gateway_with_sandbox().await;
    let mut health = HealthClient::new(gateway.channel.clone());
    let mut watch = timeout(
        WAIT,
        health.watch(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("the health watch starts in time")
    .unwrap()
    .into_inner();
    assert_eq!(
        timeout(WAIT, watch.message())
            .await
            .expect("the first health status in time")
            .unwrap()
            .unwrap()
            .status(),
        ServingStatus::Serving
    );

    sandbox.set_fault(Some(Fault::Delay(Duration::from_millis(600))));
    let mut orders = gateway.orders();
    let in_flight = tokio::spawn(async move {
        orders
            .get_order_status(GetOrderStatusRequest {
                order_code: "ORDER_1".into(),
                ..Default::default()
            })
            .await
    });
    // The sandbox counts the call before it applies the delay.
    crate::support::eventually(Duration::from_secs(5), "the call reached MP", || async {
        sandbox.calls("queryOrderStatus") == 1
    })
    .await;
    let stopping = gateway.begin_stop();

    let next = timeout(WAIT, watch.message())
        .await
        .expect("the health status changes in time")
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);
    // The in-flight call reached MP and gets MP's answer (unknown order → NOT_FOUND), not a cut.
    let answer = timeout(WAIT, in_flight)
        .await
        .expect("the in-flight call ends in time")
        .unwrap()
        .unwrap_err();
    assert_eq!(answer.code(), tonic::Code::NotFound);
    timeout(WAIT, stopping)
        .await
        .expect("the gateway stops in time")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_binary_in_sandbox_mode_serves_and_exits_cleanly_on_sigterm() {
    let (grpc, http) = (free_port(), free_port());
    let mut child = sandbox_binary(grpc, http)
        .env("SHUTDOWN_GRACE_SECS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    wait_until_ready(&mut child, loopback(http), Duration::from_secs(20)).await;
    // Well past the grace period (3 s).
    let exit = sigterm_and_wait(child, Duration::from_secs(10)).await;
    assert!(exit.success(), "exit status {exit}");
}

/// A subscriber whose client stopped reading cannot be sent its status, so
/// its connection never closes by itself; the gateway must not wait out the
/// grace period (30 s here) for it.
#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_hold_sigterm_for_the_grace_period() {
    let (grpc, http) = (free_port(), free_port());
    let mut child = sandbox_binary(grpc, http)
        .env("SHUTDOWN_GRACE_SECS", "30")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    wait_until_ready(&mut child, loopback(http), Duration::from_secs(20)).await;
    let stuck = subscriber_that_never_reads(loopback(grpc)).await;
    let client = http_client();
    // Enough to fill the 64 KiB window, well short of the lag limit (1024).
    for i in 0..400 {
        let status = client
            .post(format!("http://{}/mp/alarm-callback", loopback(http)))
            .json(&padded_callback_body(i))
            .send()
            .await
            .expect("callback endpoint answers")
            .status();
        assert_eq!(status, 200);
    }
    // About 1 s: the time a reading subscriber gets to receive its status.
    let exit = sigterm_and_wait(child, Duration::from_secs(3)).await;
    assert!(exit.success(), "exit status {exit}");
    drop(stuck);
}

#[test]
fn a_missing_setting_stops_the_binary_with_one_line_naming_it() {
    let output = gateway_binary()
        .env_remove("MP_BASE_URL")
        .env_remove("MP_SANDBOX")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("MP_BASE_URL"), "{stderr}");
}

/// An empty `GRPC_AUTH_TOKENS=` (say, a Secret whose key went missing) once
/// switched auth off with a warning; now it stops the start.
#[test]
fn an_auth_token_setting_left_empty_stops_the_binary() {
    for variable in ["GRPC_AUTH_TOKENS", "CALLBACK_TOKEN"] {
        let output = sandbox_binary(0, 0)
            .env(variable, "")
            .output()
            .expect("binary runs");
        assert_eq!(output.status.code(), Some(64), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{stderr}");
    }
}

#[test]
fn a_malformed_setting_is_named_and_no_secret_is_echoed() {
    let output = gateway_binary()
        .env("MP_BASE_URL", "https://mp.example")
        .env("MP_ACCESS_KEY", "SG1")
        .env("MP_SECRET_KEY", "super-secret-value")
        .env("GRPC_ADDR", "not-an-address")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GRPC_ADDR"), "{stderr}");
    assert!(!stderr.contains("super-secret-value"));
}

/// `REDIS_URL`, `REDIS_SENTINELS` and `REDIS_CLUSTER_NODES` are three ways to
/// name Redis: two of them at once is a configuration error, not a choice.
#[test]
fn two_ways_to_name_redis_stop_the_binary_with_one_line_naming_them() {
    let output = sandbox_binary(0, 0)
        .env("REDIS_URL", "redis://127.0.0.1:6379")
        .env("REDIS_CLUSTER_NODES", "127.0.0.1:7000")
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for variable in ["REDIS_URL", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES"] {
        assert!(stderr.contains(variable), "{stderr}");
    }
}
