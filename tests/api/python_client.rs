//! The Python quickstart (`examples/python/`), with stubs generated from `proto/`
//! by grpcio-tools, against the real gateway in sandbox mode: what a Python team
//! runs on its first day, including the wait for a real usage alarm.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use mp_gateway::config::Upstream;
use tokio::process::Command;

use crate::support::{TestGateway, gateway};

const TOKEN: &str = "python-quickstart-token";
/// The sandbox's 20 MB/s takes product 5's 1 GB past 53 % after about 27 s.
const ALARM_TIMEOUT_SECS: u64 = 45;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with the fix (not a silent pass) when Python or the pinned packages are missing.
async fn require_python_grpc() {
    let python = python();
    let checked = Command::new(&python)
        .args(["-c", "import grpc, grpc_tools, grpc_status"])
        .output()
        .await;
    match checked {
        Err(error) => panic!("cannot run {python} ({error}): run scripts/install-dev-tools"),
        Ok(output) if !output.status.success() => panic!(
            "{python} lacks grpcio, grpcio-tools or grpcio-status ({}): run scripts/install-dev-tools",
            String::from_utf8_lossy(&output.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or_default()
        ),
        Ok(_) => {}
    }
}

/// A folder of generated stubs, removed when dropped.
struct Stubs(PathBuf);

impl Drop for Stubs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `examples/python/generate.sh` into a folder of this test's own (tests run in parallel).
async fn generate_stubs() -> Stubs {
    require_python_grpc().await;
    let stubs = Stubs(std::env::temp_dir().join(format!("mpgw-py-stubs-{}", uuid::Uuid::new_v4())));
    let output = Command::new("bash")
        .arg(repo().join("examples/python/generate.sh"))
        .arg(&stubs.0)
        .env("PYTHON", python())
        .output()
        .await
        .expect("bash runs");
    assert!(
        output.status.success(),
        "examples/python/generate.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stubs
}

/// The gateway as `mp-gateway --sandbox` runs it (embedded simulator; the default
/// callback URL is its own HTTP port), on ephemeral ports, with a bearer token.
async fn sandbox_gateway() -> TestGateway {
    gateway()
        .with(|config| config.upstream = Upstream::Sandbox)
        .grpc_auth_tokens(&[TOKEN])
        .start_against("http://127.0.0.1:9")
        .await
}

/// Runs the quickstart; kills it if it outlives `limit`.
async fn quickstart(
    stubs: &Stubs,
    gateway: &TestGateway,
    args: &[&str],
    limit: Duration,
) -> Output {
    let child = Command::new(python())
        .arg(repo().join("examples/python/quickstart.py"))
        .arg("--target")
        .arg(gateway.grpc_addr.to_string())
        .arg("--stubs")
        .arg(&stubs.0)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(limit, child)
        .await
        .unwrap_or_else(|_| panic!("quickstart.py {args:?} still running after {limit:?}"))
        .expect("python runs")
}

fn show(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn python_quickstart_orders_idempotently_and_receives_the_orders_first_alarm() {
    let stubs = generate_stubs().await;
    let gateway = sandbox_gateway().await;
    let started = Instant::now();

    let output = quickstart(
        &stubs,
        &gateway,
        &[
            "--token",
            TOKEN,
            "--request-id",
            "python-test-order-1",
            "--wait-for-alarm",
            "--alarm-timeout",
            &ALARM_TIMEOUT_SECS.to_string(),
        ],
        Duration::from_secs(ALARM_TIMEOUT_SECS + 30),
    )
    .await;
    let shown = show(&output);
    assert!(output.status.success(), "quickstart failed:\n{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(stdout.contains("ListProducts: 3 products"), "{shown}");
    assert!(stdout.contains("product 5: Test QR product"), "{shown}");
    let order_code = stdout
        .lines()
        .find_map(|line| line.strip_prefix("CreateOrder: order "))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no CreateOrder line:\n{shown}"));
    assert!(order_code.starts_with("ORDER_"), "{shown}");
    assert!(
        stdout.contains("(request_id python-test-order-1)"),
        "{shown}"
    );
    assert!(stdout.contains("activation code LPA:1$"), "{shown}");
    assert!(
        stdout.contains(&format!("CreateOrder retry: same order {order_code}")),
        "{shown}"
    );
    assert!(stdout.contains("ORDER_STATUS_IN_USE"), "{shown}");
    assert!(
        stdout.contains(&format!(
            "RegisterCallback: MP posts alarms to http://127.0.0.1:{}/mp/alarm-callback",
            gateway.http_addr.port()
        )),
        "sandbox mode's default callback URL is the gateway's own endpoint:\n{shown}"
    );
    let alarm = stdout
        .lines()
        .find(|line| line.starts_with("alarm "))
        .unwrap_or_else(|| panic!("no alarm line:\n{shown}"));
    assert!(
        alarm.contains(&format!("order {order_code} ")) && alarm.contains("at 53%"),
        "{alarm}"
    );
    assert!(stdout.trim_end().ends_with("done"), "{shown}");
    eprintln!("quickstart with alarm took {:?}", started.elapsed());

    gateway.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn python_quickstart_prints_the_status_code_and_details_and_exits_non_zero() {
    let stubs = generate_stubs().await;
    let gateway = sandbox_gateway().await;
    let limit = Duration::from_secs(30);

    let unauthenticated = quickstart(
        &stubs,
        &gateway,
        &["--token", "wrong", "--no-wait-for-alarm"],
        limit,
    )
    .await;
    let shown = show(&unauthenticated);
    assert_eq!(unauthenticated.status.code(), Some(1), "{shown}");
    let stderr = String::from_utf8_lossy(&unauthenticated.stderr);
    assert!(
        stderr.contains("error: ListProducts failed: UNAUTHENTICATED: "),
        "{shown}"
    );

    // A request_id over MP's 500 bytes: INVALID_ARGUMENT with a BadRequest detail.
    let long_id = "x".repeat(501);
    let invalid = quickstart(
        &stubs,
        &gateway,
        &[
            "--token",
            TOKEN,
            "--request-id",
            &long_id,
            "--no-wait-for-alarm",
        ],
        limit,
    )
    .await;
    let shown = show(&invalid);
    assert_eq!(invalid.status.code(), Some(1), "{shown}");
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        stderr.contains("error: CreateOrder failed: INVALID_ARGUMENT: "),
        "{shown}"
    );
    assert!(stderr.contains("  bad field request_id: "), "{shown}");

    // The happy path without the alarm wait ends right after RegisterCallback.
    let quick = quickstart(
        &stubs,
        &gateway,
        &["--token", TOKEN, "--no-wait-for-alarm"],
        limit,
    )
    .await;
    let shown = show(&quick);
    assert!(quick.status.success(), "{shown}");
    let stdout = String::from_utf8_lossy(&quick.stdout);
    assert!(
        stdout.contains("RegisterCallback: MP posts alarms to"),
        "{shown}"
    );
    assert!(!stdout.contains("SubscribeAlarms"), "{shown}");
    assert!(
        stdout.contains("done (not waiting for an alarm)"),
        "{shown}"
    );

    gateway.stop().await.expect("clean shutdown");
}

/// The README's Clients section shows `examples/rust_client.rs` (compiled by
/// `cargo build --examples`) as it is, and the Python commands this file runs.
#[test]
fn readme_shows_the_client_examples_as_they_are() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let rust = std::fs::read_to_string(repo().join("examples/rust_client.rs"))
        .expect("examples/rust_client.rs");
    assert!(
        readme.contains(&format!("```rust\n{rust}```")),
        "README.md's Rust client differs from examples/rust_client.rs: copy the file into the Clients section"
    );
    for command in [
        "examples/python/generate.sh",
        "python3 examples/python/quickstart.py",
    ] {
        assert!(readme.contains(command), "README.md lacks `{command}`");
    }
}

/// Runs `examples/python/consumer.py` on `subscription` until it has acked `count`.
fn consumer(stubs: &Stubs, gateway: &TestGateway, count: usize) -> tokio::process::Child {
    Command::new(python())
        .arg(repo().join("examples/python/consumer.py"))
        .args(["--target", &gateway.grpc_addr.to_string()])
        .arg("--stubs")
        .arg(&stubs.0)
        .args(["--token", TOKEN, "--subscription", "billing"])
        .args(["--count", &count.to_string()])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs")
}

#[tokio::test]
async fn two_python_consumers_share_a_subscription_each_alarm_acked_once() {
    use crate::support::{callback_body, eventually, http_client, post_callback, with_token};
    use mp_gateway::proto::ListSubscriptionsRequest;

    let stubs = generate_stubs().await;
    let gateway = sandbox_gateway().await;
    let consumers = [consumer(&stubs, &gateway, 2), consumer(&stubs, &gateway, 2)];
    eventually(Duration::from_secs(20), "both consumers joined", || async {
        let listed = gateway
            .alarms()
            .list_subscriptions(with_token(ListSubscriptionsRequest::default(), Some(TOKEN)))
            .await
            .expect("ListSubscriptions answers")
            .into_inner();
        listed.subscriptions.first().map(|s| s.consumers) == Some(2)
    })
    .await;
    let client = http_client();
    for i in 0..4 {
        let body = callback_body("ORDER_1", "53%", &format!("py-{i}"));
        assert_eq!(post_callback(&client, &gateway, "", &body).await, 200);
    }
    let mut ids = Vec::new();
    for consumer in consumers {
        let output = tokio::time::timeout(Duration::from_secs(30), consumer.wait_with_output())
            .await
            .expect("each consumer acks its 2 alarms and exits")
            .expect("python runs");
        let shown = show(&output);
        assert!(output.status.success(), "consumer.py failed:\n{shown}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mine: Vec<String> = stdout
            .lines()
            .filter_map(|line| line.strip_prefix("alarm "))
            .filter_map(|rest| rest.split(':').next())
            .map(str::to_owned)
            .collect();
        assert_eq!(mine.len(), 2, "{shown}");
        assert!(
            stdout.contains("acked 2 alarm(s) of subscription billing"),
            "{shown}"
        );
        ids.extend(mine);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each alarm handled by one consumer: {ids:?}");
}
