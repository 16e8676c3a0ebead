//! grpcurl, as a platform team would use it: no proto files, only reflection.

use serde_json::Value;

use crate::support::gateway_with_sandbox;

/// Runs `grpcurl -plaintext [flags] ADDR [command]`.
async fn run_grpcurl(
    addr: std::net::SocketAddr,
    flags: &[&str],
    command: &[&str],
) -> std::process::Output {
    tokio::process::Command::new("grpcurl")
        .arg("-plaintext")
        .args(flags)
        .arg(addr.to_string())
        .args(command)
        .output()
        .await
        .expect("grpcurl is on PATH (scripts/install-dev-tools installs it)")
}

/// Runs grpcurl and returns its stdout; fails the test on a non-zero exit.
async fn grpcurl(addr: std::net::SocketAddr, flags: &[&str], command: &[&str]) -> String {
    let args = [flags, command].concat();
    let output = run_grpcurl(addr, flags, command).await;
    assert!(
        output.status.success(),
        "grpcurl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[tokio::test]
async fn grpcurl_lists_and_calls_every_service_through_reflection() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let addr = gateway.grpc_addr;

    let services = grpcurl(addr, &[], &["list"]).await;
    for service in [
        "linksfield.mp.v1.ProductService",
        "linksfield.mp.v1.OrderService",
        "linksfield.mp.v1.TrafficService",
        "linksfield.mp.v1.AlarmService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.contains(service),
            "{service} missing from:\n{services}"
        );
    }

    let described = grpcurl(
        addr,
        &[],
        &["describe", "linksfield.mp.v1.CreateOrderRequest"],
    )
    .await;
    assert!(described.contains("optional string iccid"), "{described}");

    let health = grpcurl(addr, &[], &["grpc.health.v1.Health/Check"]).await;
    assert!(health.contains("SERVING"), "{health}");

    let listed: Value = serde_json::from_str(
        &grpcurl(
            addr,
            &["-d", r#"{"goodsId": "37"}"#],
            &["linksfield.mp.v1.ProductService/ListProducts"],
        )
        .await,
    )
    .unwrap();
    assert_eq!(listed["products"][0]["productName"], "1GB/7days");
    assert_eq!(
        listed["products"][0]["orderQuantities"],
        serde_json::json!([3, 4])
    );

    let created: Value = serde_json::from_str(
        &grpcurl(
            addr,
            &["-d", r#"{"productId": "6", "activate": true}"#],
            &["linksfield.mp.v1.OrderService/CreateOrder"],
        )
        .await,
    )
    .unwrap();
    let order_code = created["orderCode"].as_str().expect("an order code");
    assert!(
        created["activationCode"]
            .as_str()
            .unwrap()
            .starts_with("LPA:1$")
    );

    let status: Value = serde_json::from_str(
        &grpcurl(
            addr,
            &["-d", &format!(r#"{{"orderCode": "{order_code}"}}"#)],
            &["linksfield.mp.v1.OrderService/GetOrderStatus"],
        )
        .await,
    )
    .unwrap();
    assert_eq!(status["packages"][0]["status"], "ORDER_STATUS_IN_USE");
    assert!(
        status["packages"][0]["actualStartTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Error details decode through reflection too (google.rpc types are registered).
    let refused = run_grpcurl(
        addr,
        &[
            "-format-error",
            "-d",
            r#"{"productId": "6", "iccid": "8943108169999589680"}"#,
        ],
        &["linksfield.mp.v1.OrderService/CreateOrder"],
    )
    .await;
    assert!(!refused.status.success());
    let error: Value = serde_json::from_slice(&refused.stderr).expect("JSON error on stderr");
    assert_eq!(error["code"], 3, "INVALID_ARGUMENT");
    let detail = |kind: &str| {
        let details = error["details"].as_array().expect("details");
        details
            .iter()
            .find(|d| d["@type"] == format!("type.googleapis.com/google.rpc.{kind}"))
            .unwrap_or_else(|| panic!("a {kind} detail in {details:?}"))
            .clone()
    };
    assert_eq!(detail("BadRequest")["fieldViolations"][0]["field"], "iccid");
    assert_eq!(detail("ErrorInfo")["reason"], "INVALID_REQUEST");
}

/// The README's Shared subscriptions session: messages typed on stdin, an
/// alarm delivered, acked, and stdin closed to end the stream.
#[tokio::test]
async fn grpcurl_consumes_a_shared_subscription_with_messages_on_stdin() {
    use std::process::Stdio;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use crate::support::{
        callback_body, eventually, http_client, list_subscriptions, post_callback,
    };

    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let mut grpcurl = tokio::process::Command::new("grpcurl")
        .args(["-plaintext", "-d", "@"])
        .arg(gateway.grpc_addr.to_string())
        .arg("linksfield.mp.v1.AlarmService/ConsumeAlarms")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("grpcurl is on PATH (scripts/install-dev-tools installs it)");
    let mut stdin = grpcurl.stdin.take().expect("piped stdin");
    let mut stdout = BufReader::new(grpcurl.stdout.take().expect("piped stdout")).lines();
    stdin
        .write_all(b"{\"subscription\": \"billing\", \"ackDeadlineSeconds\": 60}\n")
        .await
        .expect("grpcurl reads stdin");
    stdin.flush().await.expect("flush");
    let subscriptions = || list_subscriptions(&gateway);
    eventually(
        Duration::from_secs(10),
        "grpcurl joined billing",
        || async { subscriptions().await.first().map(|s| s.consumers) == Some(1) },
    )
    .await;
    let body = callback_body("ORDER_1", "84%", "from-mp");
    assert_eq!(
        post_callback(&http_client(), &gateway, "", &body).await,
        200
    );

    // grpcurl prints each response as indented JSON ending with a lone "}".
    let mut printed = String::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
            .await
            .expect("grpcurl prints the alarm in time")
            .expect("stdout readable")
            .expect("grpcurl still running");
        printed.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let delivered: Value = serde_json::from_str(&printed).expect("JSON");
    assert_eq!(delivered["deliveryAttempt"], 1, "{delivered}");
    assert_eq!(delivered["alarm"]["requestId"], "from-mp");
    let id = delivered["alarm"]["id"].as_str().expect("an id").to_owned();
    stdin
        .write_all(format!("{{\"ackIds\": [\"{id}\"]}}\n").as_bytes())
        .await
        .expect("grpcurl reads stdin");
    stdin.flush().await.expect("flush");
    eventually(Duration::from_secs(10), "the ack is applied", || async {
        subscriptions().await.first().map(|s| s.pending) == Some(0)
    })
    .await;
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), grpcurl.wait())
        .await
        .expect("closing stdin ends the stream")
        .expect("grpcurl exits");
    assert!(status.success(), "grpcurl ends with OK: {status}");
    // Acked, so nothing is handed back when the stream ends.
    assert_eq!(subscriptions().await[0].pending, 0);
}
