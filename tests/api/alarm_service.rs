//! AlarmService: registering the callback URL at MP, and subscription requests.

use crate::support::{ACCESS_KEY, gateway, gateway_with_sandbox, violated_fields};
use mp_gateway::domain::CallbackUrl;
use mp_gateway::proto::{RegisterCallbackRequest, SubscribeAlarmsRequest};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn register_callback_stores_the_given_url_at_mp() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let reply = gateway
        .alarms()
        .register_callback(RegisterCallbackRequest {
            reseller_code: ACCESS_KEY.into(),
            http_url: "https://gw.example.com/mp/alarm-callback".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.http_url, "https://gw.example.com/mp/alarm-callback");
    assert_eq!(
        sandbox.callback_url().as_deref(),
        Some("https://gw.example.com/mp/alarm-callback")
    );
}

#[tokio::test]
async fn register_callback_defaults_to_the_public_url_with_the_callback_token() {
    let public_url = CallbackUrl::parse("https://gw.example.com/mp/alarm-callback").unwrap();
    let (gateway, sandbox) = gateway()
        .with(|config| config.public_callback_url = Some(public_url))
        .callback_token("t0k+n")
        .start()
        .await;
    let reply = gateway
        .alarms()
        .register_callback(RegisterCallbackRequest {
            reseller_code: ACCESS_KEY.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        sandbox.callback_url().as_deref(),
        Some("https://gw.example.com/mp/alarm-callback?token=t0k%2Bn"),
        "MP gets the token"
    );
    assert_eq!(
        reply.http_url, "https://gw.example.com/mp/alarm-callback?token=…",
        "the gRPC client does not"
    );
}

#[tokio::test]
async fn register_callback_without_a_url_or_a_public_url_is_invalid() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .alarms()
        .register_callback(RegisterCallbackRequest {
            reseller_code: ACCESS_KEY.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["http_url"]);
    assert_eq!(sandbox.total_requests(), 0);
}

#[tokio::test]
async fn register_callback_rejects_relative_urls_and_malformed_reseller_codes() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .alarms()
        .register_callback(RegisterCallbackRequest {
            reseller_code: "SG-1".into(),
            http_url: "/mp/alarm-callback".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["reseller_code", "http_url"]);
    assert_eq!(sandbox.total_requests(), 0);
}

#[tokio::test]
async fn a_reseller_code_mp_does_not_know_is_refused_with_mps_words() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let status = gateway
        .alarms()
        .register_callback(RegisterCallbackRequest {
            reseller_code: "SG99999999".into(),
            http_url: "https://gw.example.com/cb".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    // MP's business error (envelope code 500) with its own words, which name
    // no known case: the gateway's catch-all for a refusal.
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        "MP refused the request: resellerCode does not match the access key (code 500)"
    );
    let info = status
        .get_details_error_info()
        .expect("the status carries ErrorInfo");
    assert_eq!(info.reason, "UPSTREAM_REJECTED");
    assert_eq!(info.domain, "mp.linksfield.net");
    assert_eq!(info.metadata["upstream_code"], "500");
    assert_eq!(
        info.metadata["upstream_msg"],
        "resellerCode does not match the access key"
    );
    // Asked once (a refusal is not retried), and nothing was stored.
    assert_eq!(sandbox.calls("saveAlarmCallbackInterface"), 1);
    assert_eq!(sandbox.callback_url(), None);
}

#[tokio::test]
async fn subscribe_alarms_rejects_malformed_filters_and_resume_points() {
    let (gateway, _sandbox) = gateway_with_sandbox().await;
    let Err(status) = gateway
        .alarms()
        .subscribe_alarms(SubscribeAlarmsRequest {
            order_codes: vec!["ORDER_1".into(), "not an order".into()],
            min_used_percent: 101,
            resume_after: "last-week".into(),
            ..Default::default()
        })
        .await
    else {
        panic!("a malformed subscription must be refused");
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["resume_after", "order_codes", "min_used_percent"]
    );
}

#[tokio::test]
async fn register_callback_without_a_reseller_code_registers_for_the_configured_access_key() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let reply = gateway
        .alarms()
        .register_callback(RegisterCallbackRequest {
            http_url: "https://gw.example.com/mp/alarm-callback".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.http_url, "https://gw.example.com/mp/alarm-callback");
    assert_eq!(sandbox.callback_url(), Some(reply.http_url));
}
