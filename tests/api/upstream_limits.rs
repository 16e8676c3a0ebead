//! Protecting MP: the concurrency and rate limits on MP calls, and which
//! failed calls are retried (GETs, within a budget) and which never are (POSTs).

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mp_gateway::domain::{OrderCode, RequestId};
use mp_gateway::mp::{Call, MpClient, MpClientConfig, MpClock, MpLimits, retry};
use mp_gateway::proto::{CreateOrderRequest, GetOrderStatusRequest, TopUpOrderRequest};
use mp_gateway::sandbox::Fault;
use secrecy::SecretString;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{
    ACCESS_KEY, SECRET_KEY, TestGateway, error_reason, gateway, gateway_with_sandbox, new_order,
    start_sandbox, with_timeout,
};

fn status_of(order_code: &str) -> GetOrderStatusRequest {
    GetOrderStatusRequest {
        order_code: order_code.into(),
        ..Default::default()
    }
}

/// Sends `n` GetOrderStatus calls for `order_code` at once over the gateway's channel.
async fn flood(
    gateway: &TestGateway,
    order_code: &str,
    n: usize,
) -> Vec<Result<(), tonic::Status>> {
    let calls = (0..n).map(|_| {
        let mut client = gateway.orders();
        let request = status_of(order_code);
        async move { client.get_order_status(request).await.map(drop) }
    });
    futures::future::join_all(calls).await
}

/// The statuses among `results` that are not OK.
fn refusals(results: Vec<Result<(), tonic::Status>>) -> Vec<tonic::Status> {
    results.into_iter().filter_map(Result::err).collect()
}

#[tokio::test]
async fn a_flood_gets_resource_exhausted_and_mp_never_sees_more_than_mp_max_concurrency() {
    let (gateway, sandbox) = gateway()
        .mp_limits(MpLimits {
            max_concurrency: 4,
            rate_limit_per_sec: None,
        })
        .start()
        .await;
    let order_code = new_order(&gateway).await;
    sandbox.set_fault(Some(Fault::Delay(Duration::from_millis(300))));

    let refused = refusals(flood(&gateway, &order_code, 200).await);

    assert!(
        sandbox.max_in_flight() <= 4,
        "MP saw {} calls at once",
        sandbox.max_in_flight()
    );
    let answered = 200 - refused.len();
    assert!(answered >= 4, "only {answered} calls were answered");
    // 4 places, each held 300 ms, and a wait of at most 100 ms for one: most are refused.
    assert!(refused.len() >= 50, "only {} refused", refused.len());
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert_eq!(
            error_reason(status).as_deref(),
            Some("UPSTREAM_CONCURRENCY_LIMIT")
        );
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert!(retry.retry_delay.is_some_and(|d| !d.is_zero()));
    }
    assert_eq!(sandbox.calls("queryOrderStatus") as usize, answered);
}

#[tokio::test]
async fn a_burst_beyond_the_rate_limit_gets_resource_exhausted_with_the_next_slots_time() {
    let rate = 5;
    let (gateway, sandbox) = gateway()
        .mp_limits(MpLimits {
            max_concurrency: 32,
            rate_limit_per_sec: NonZeroU32::new(rate),
        })
        .start()
        .await;
    let started = Instant::now();
    let order_code = new_order(&gateway).await;

    let refused = refusals(flood(&gateway, &order_code, 50).await);

    // A bucket of `rate` tokens, refilled at `rate` per second.
    let reached_mp = sandbox.calls("v2/activationCode") + sandbox.calls("queryOrderStatus");
    let allowed =
        u64::from(rate) + (f64::from(rate) * started.elapsed().as_secs_f64()).ceil() as u64;
    assert!(
        reached_mp <= allowed,
        "{reached_mp} calls reached MP, the limit allows {allowed}"
    );
    assert_eq!(refused.len() as u64, 51 - reached_mp);
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert_eq!(error_reason(status).as_deref(), Some("UPSTREAM_RATE_LIMIT"));
        let delay = status
            .get_details_retry_info()
            .and_then(|retry| retry.retry_delay)
            .expect("RetryInfo with a delay");
        // Refused because the next slot was further than the short wait away,
        // and never more than a whole bucket away.
        assert!(delay > mp_gateway::mp::MAX_ADMISSION_WAIT, "{delay:?}");
        assert!(delay <= Duration::from_secs(1), "{delay:?}");
    }
}

#[tokio::test]
async fn a_get_survives_one_transient_503_by_retrying_once() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let order_code = new_order(&gateway).await;
    sandbox.set_fault_for(1, Fault::HttpStatus(503));

    let packages = gateway
        .orders()
        .get_order_status(status_of(&order_code))
        .await
        .expect("the retry succeeds")
        .into_inner()
        .packages;

    assert_eq!(packages.len(), 1);
    assert_eq!(sandbox.calls("queryOrderStatus"), 2);
}

#[tokio::test]
async fn the_mp_client_counts_the_retries_it_made() {
    let sandbox = start_sandbox().await;
    let mp = MpClient::new(MpClientConfig {
        base_url: sandbox.base_url().parse().unwrap(),
        access_key: ACCESS_KEY.to_owned(),
        secret_key: SecretString::from(SECRET_KEY),
        timeout: Duration::from_secs(5),
        clock: MpClock {
            zone: chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        },
        limits: MpLimits::default(),
    })
    .unwrap();
    let request_id = RequestId::parse_or_generate("").unwrap();
    let call = Call {
        request_id: &request_id,
        deadline: None,
    };
    let order = OrderCode::parse("ORDER_1").unwrap();
    sandbox.set_fault_for(1, Fault::HttpStatus(503));

    let answer = mp.order_status(&order, call).await;

    assert!(answer.is_err(), "the sandbox knows no ORDER_1");
    assert_eq!(mp.retries(), 1);
    assert_eq!(mp.clone().retries(), 1, "clones share the count");
    assert_eq!(sandbox.calls("queryOrderStatus"), 2);
}

#[tokio::test]
async fn a_get_that_ran_into_mp_timeout_ms_is_retried_while_the_callers_deadline_allows() {
    let (gateway, sandbox) = gateway()
        .mp_timeout(Duration::from_millis(200))
        .start()
        .await;
    let order_code = new_order(&gateway).await;
    sandbox.set_fault_for(1, Fault::Delay(Duration::from_secs(2)));

    let request = with_timeout(status_of(&order_code), Duration::from_secs(2));
    gateway
        .orders()
        .get_order_status(request)
        .await
        .expect("the retry succeeds");

    assert_eq!(sandbox.calls("queryOrderStatus"), 2);
}

#[tokio::test]
async fn a_get_cut_short_by_the_callers_deadline_is_not_retried() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    sandbox.set_fault(Some(Fault::Delay(Duration::from_secs(2))));

    let request = with_timeout(status_of("ORDER_1"), Duration::from_millis(300));
    let status = gateway
        .orders()
        .get_order_status(request)
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(sandbox.calls("queryOrderStatus"), 1);
}

#[tokio::test]
async fn a_top_up_facing_a_503_is_not_retried() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    let order_code = new_order(&gateway).await;
    sandbox.set_fault_for(1, Fault::HttpStatus(503));

    let status = gateway
        .orders()
        .top_up_order(TopUpOrderRequest {
            order_code,
            ..Default::default()
        })
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::Aborted, "MP may have topped up");
    assert_eq!(sandbox.calls("v2/topUp"), 1, "MP saw the POST once");
}

#[tokio::test]
async fn a_create_order_facing_a_503_is_not_retried() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    sandbox.set_fault_for(1, Fault::HttpStatus(503));

    let status = gateway
        .orders()
        .create_order(CreateOrderRequest {
            product_id: 6,
            ..Default::default()
        })
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::Aborted, "MP may have ordered");
    assert_eq!(
        sandbox.calls("v2/activationCode"),
        1,
        "MP saw the POST once"
    );
}

#[tokio::test]
async fn during_an_mp_outage_the_retry_budget_keeps_gets_from_tripling_the_load() {
    let (gateway, sandbox) = gateway_with_sandbox().await;
    sandbox.set_fault(Some(Fault::HttpStatus(503)));
    let gets = 400;
    let started = Instant::now();

    // 32 callers at a time: within MP_MAX_CONCURRENCY, so every call reaches MP.
    let statuses: Vec<_> = futures::stream::iter(0..gets)
        .map(|_| {
            let mut client = gateway.orders();
            async move { client.get_order_status(status_of("ORDER_1")).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;

    for status in statuses {
        assert_eq!(status.unwrap_err().code(), Code::Unavailable);
    }
    let calls = sandbox.calls("queryOrderStatus");
    let retries = calls - gets;
    // The budget: a floor per second of its window, plus a tenth of the calls.
    let window = retry::BUDGET_TTL + started.elapsed();
    let floor = u64::from(retry::BUDGET_MIN_RETRIES_PER_SEC) * window.as_secs().max(1);
    let share = (gets as f64 * f64::from(retry::BUDGET_RETRY_RATIO)).ceil() as u64;
    assert!(retries > 0, "some calls were retried");
    assert!(
        retries <= floor + share,
        "{retries} retries; the budget allows {floor} + {share}"
    );
    assert!(calls < 2 * gets, "{calls} calls for {gets} GETs");
}
