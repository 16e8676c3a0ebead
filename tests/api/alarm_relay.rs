//! MP's alarm callbacks in over HTTP, gRPC streams out: across replicas (Redis),
//! resumable, filtered, deduplicated, and never stalled by a slow subscriber.

use std::collections::HashSet;
use std::time::Duration;

use mp_gateway::config::RedisConfig;
use mp_gateway::domain::CallbackUrl;
use mp_gateway::proto::{
    Alarm, RegisterCallbackRequest, SubscribeAlarmsRequest, SubscribeAlarmsResponse,
};
use mp_gateway::sandbox::Sandbox;
use serde_json::json;
use tokio::time::timeout;
use tonic::Code;
use tonic::Streaming;
use tonic_types::StatusExt;

use crate::support::{
    ACCESS_KEY, OwnRedis, SHARED_REDIS, TestGateway, active_order, callback_body, closed_port,
    config_for, error_reason, eventually, gateway, http_client, metric, padded_callback_body,
    post_callback, redis_connection, redis_xlen, shared_redis, start_sandbox_with_traffic,
    subscriber_that_never_reads, unique_prefix, violated_fields,
};

const WAIT: Duration = Duration::from_secs(10);

async fn subscribe(
    gateway: &TestGateway,
    request: SubscribeAlarmsRequest,
) -> Streaming<SubscribeAlarmsResponse> {
    gateway
        .alarms()
        .subscribe_alarms(request)
        .await
        .expect("subscription starts")
        .into_inner()
}

async fn next_alarm(stream: &mut Streaming<SubscribeAlarmsResponse>) -> Alarm {
    timeout(WAIT, stream.message())
        .await
        .expect("an alarm arrives in time")
        .expect("stream is healthy")
        .expect("stream is open")
        .alarm
        .expect("response carries an alarm")
}

/// Proves nothing more arrives for a moment (used after rejected callbacks).
async fn assert_quiet(stream: &mut Streaming<SubscribeAlarmsResponse>) {
    let next = timeout(Duration::from_millis(300), stream.message()).await;
    assert!(next.is_err(), "expected no alarm, got {next:?}");
}

/// Posts a valid callback with request id `sentinel` and asserts it is the
/// next alarm on `stream`: whatever was published before it (a leaked refused
/// callback, a duplicate) would come first, since a stream keeps publish order.
async fn assert_next_is_sentinel(
    client: &reqwest::Client,
    gateway: &TestGateway,
    query: &str,
    stream: &mut Streaming<SubscribeAlarmsResponse>,
) {
    let body = callback_body("ORDER_SENTINEL", "53%", "sentinel");
    assert_eq!(post_callback(client, gateway, query, &body).await, 200);
    let next = next_alarm(stream).await;
    assert_eq!(
        (next.order_code.as_str(), next.request_id.as_str()),
        ("ORDER_SENTINEL", "sentinel"),
        "the sentinel is the next alarm"
    );
}

/// A sandbox and a gateway in front of it, relaying alarms through `redis`
/// (or in process).
async fn gateway_on(redis: Option<RedisConfig>) -> (TestGateway, Sandbox) {
    gateway().redis(redis).start().await
}

#[tokio::test]
async fn a_callback_into_one_replica_reaches_a_subscriber_of_another() {
    callback_into_one_replica_reaches_another(shared_redis()).await;
}

pub(crate) async fn callback_into_one_replica_reaches_another(redis: RedisConfig) {
    let (receiving, _s1) = gateway_on(Some(redis.clone())).await;
    let (serving, _s2) = gateway_on(Some(redis)).await;
    let mut stream = subscribe(&serving, SubscribeAlarmsRequest::default()).await;

    let status = post_callback(
        &http_client(),
        &receiving,
        "",
        &callback_body("ORDER_1", "84%", "r1"),
    )
    .await;
    assert_eq!(status, 200);
    let alarm = next_alarm(&mut stream).await;
    assert_eq!(alarm.order_code, "ORDER_1");
    assert_eq!(alarm.used_percent, 84);
    assert_eq!(alarm.used_rate, "84%");
    assert_eq!(alarm.request_id, "r1");
    assert_eq!(alarm.package_code, "LP14230831004073");
    assert!(alarm.received_at.is_some());
    assert!(alarm.id.contains('-'), "a stream id: {}", alarm.id);
}

#[tokio::test]
async fn mp_gets_its_envelope_back_only_once_the_alarm_is_stored() {
    let redis = shared_redis();
    let stream_key = mp_gateway::alarms::AlarmKeys::new(&redis.key_prefix).stream;
    let (gateway, _sandbox) = gateway_on(Some(redis)).await;
    let reply: serde_json::Value = http_client()
        .post(format!("http://{}/mp/alarm-callback", gateway.http_addr))
        .json(&callback_body("ORDER_1", "53%", "r-env"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["code"], 200);
    assert_eq!(reply["requestId"], "r-env");
    assert_eq!(
        redis_xlen(SHARED_REDIS, &stream_key).await,
        1,
        "the alarm is in the Redis stream when MP gets its 200"
    );
}

#[tokio::test]
async fn with_a_callback_token_only_callbacks_presenting_it_are_accepted() {
    let (gateway, _sandbox) = gateway().callback_token("s3cret+token").start().await;
    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let client = http_client();

    // Request ids of their own: a leaked refused callback is no duplicate of r1.
    let no_token = callback_body("ORDER_1", "53%", "refused-no-token");
    assert_eq!(post_callback(&client, &gateway, "", &no_token).await, 401);
    let wrong_token = callback_body("ORDER_1", "53%", "refused-wrong-token");
    assert_eq!(
        post_callback(&client, &gateway, "?token=wrong", &wrong_token).await,
        401
    );
    // The accepted one is the first alarm: neither refused callback came before it.
    let body = callback_body("ORDER_1", "53%", "r1");
    assert_eq!(
        post_callback(&client, &gateway, "?token=s3cret%2Btoken", &body).await,
        200
    );
    assert_eq!(next_alarm(&mut stream).await.request_id, "r1");
}

/// A field MP never sends (60 KB long, a bidi override, a control character)
/// once cost ~120 KB of memory or Redis per alarm, kept for ALARM_RETENTION alarms.
#[tokio::test]
async fn callback_fields_too_long_or_with_foreign_characters_are_refused_by_name() {
    let (gateway, _sandbox) = gateway_on(Some(shared_redis())).await;
    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let client = http_client();
    let url = format!("http://{}/mp/alarm-callback", gateway.http_addr);
    let mut long_eid = callback_body("ORDER_1", "53%", "long-eid");
    long_eid["eid"] = "7".repeat(60_000).into();
    for (body, field) in [
        (long_eid, "eid"),
        (callback_body("ORDER_\u{202e}1", "53%", "bidi"), "orderCode"),
        (callback_body("ORDER_1", "53%", "tab\there"), "requestId"),
        (
            callback_body("ORDER_1", "53%", &"r".repeat(129)),
            "requestId",
        ),
        (
            callback_body("ORDER_1", "5000%", "too-much"),
            "packageUsedRate",
        ),
    ] {
        let refused = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 400, "{field}");
        let reason: serde_json::Value = refused.json().await.unwrap();
        assert!(reason["msg"].as_str().unwrap().contains(field), "{reason}");
    }
    assert_next_is_sentinel(&client, &gateway, "", &mut stream).await;
}

#[tokio::test]
async fn oversized_malformed_and_incomplete_bodies_are_refused_and_not_relayed() {
    let (gateway, _sandbox) = gateway_on(None).await;
    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let client = http_client();
    let url = format!("http://{}/mp/alarm-callback", gateway.http_addr);

    let huge = "x".repeat(70 * 1024);
    let oversized = client
        .post(&url)
        .json(&json!({"eid": huge}))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status().as_u16(), 413);

    let malformed = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"eid\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);

    let incomplete = client
        .post(&url)
        .json(&json!({"eid": "1", "packageCode": "LP1", "packageUsedRate": "53%"}))
        .send()
        .await
        .unwrap();
    assert_eq!(incomplete.status().as_u16(), 400);
    let reason: serde_json::Value = incomplete.json().await.unwrap();
    assert!(
        reason["msg"].as_str().unwrap().contains("orderCode"),
        "{reason}"
    );

    let bad_rate = post_callback(
        &client,
        &gateway,
        "",
        &callback_body("ORDER_1", "most", "refused-bad-rate"),
    )
    .await;
    assert_eq!(bad_rate, 400);
    // None of the refused bodies was published before this valid one.
    assert_next_is_sentinel(&client, &gateway, "", &mut stream).await;
}

#[tokio::test]
async fn subscribers_get_only_the_orders_and_percentages_they_asked_for() {
    let (gateway, _sandbox) = gateway_on(None).await;
    let mut by_order = subscribe(
        &gateway,
        SubscribeAlarmsRequest {
            order_codes: vec!["ORDER_B".into()],
            ..Default::default()
        },
    )
    .await;
    let mut by_percent = subscribe(
        &gateway,
        SubscribeAlarmsRequest {
            min_used_percent: 84,
            ..Default::default()
        },
    )
    .await;
    let client = http_client();
    for (order, rate) in [
        ("ORDER_A", "53%"),
        ("ORDER_B", "53%"),
        ("ORDER_A", "84%"),
        ("ORDER_B", "100%"),
    ] {
        let percent = rate.trim_end_matches('%');
        let body = callback_body(order, rate, &format!("{order}-{percent}"));
        assert_eq!(post_callback(&client, &gateway, "", &body).await, 200);
    }
    let first = next_alarm(&mut by_order).await;
    let second = next_alarm(&mut by_order).await;
    assert_eq!(
        (first.order_code.as_str(), first.used_percent),
        ("ORDER_B", 53)
    );
    assert_eq!(
        (second.order_code.as_str(), second.used_percent),
        ("ORDER_B", 100)
    );
    let first = next_alarm(&mut by_percent).await;
    let second = next_alarm(&mut by_percent).await;
    assert_eq!(
        (first.order_code.as_str(), first.used_percent),
        ("ORDER_A", 84)
    );
    assert_eq!(
        (second.order_code.as_str(), second.used_percent),
        ("ORDER_B", 100)
    );
}

pub(crate) async fn resume_gets_what_was_missed(redis: Option<RedisConfig>) {
    let (gateway, _sandbox) = gateway_on(redis).await;
    let client = http_client();
    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    assert_eq!(
        post_callback(&client, &gateway, "", &callback_body("ORDER_1", "53%", "a")).await,
        200
    );
    let seen = next_alarm(&mut stream).await;
    drop(stream);

    for request_id in ["b", "c", "d"] {
        let body = callback_body("ORDER_1", "84%", request_id);
        assert_eq!(post_callback(&client, &gateway, "", &body).await, 200);
    }
    let mut resumed = subscribe(
        &gateway,
        SubscribeAlarmsRequest {
            resume_after: seen.id.clone(),
            ..Default::default()
        },
    )
    .await;
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(next_alarm(&mut resumed).await.request_id);
    }
    assert_eq!(missed, ["b", "c", "d"]);
    // The seam between replay and live: the next live alarm comes once, right after.
    assert_eq!(
        post_callback(
            &client,
            &gateway,
            "",
            &callback_body("ORDER_1", "100%", "e")
        )
        .await,
        200
    );
    assert_eq!(next_alarm(&mut resumed).await.request_id, "e");
    // No replayed or live alarm comes twice: the next one is the sentinel.
    assert_next_is_sentinel(&client, &gateway, "", &mut resumed).await;
    assert_quiet(&mut resumed).await;
}

#[tokio::test]
async fn resuming_replays_the_alarms_sent_while_away_in_process() {
    resume_gets_what_was_missed(None).await;
}

#[tokio::test]
async fn resuming_replays_the_alarms_sent_while_away_with_redis() {
    resume_gets_what_was_missed(Some(shared_redis())).await;
}

pub(crate) async fn resume_from_a_lost_id_is_out_of_range(redis: Option<RedisConfig>) {
    let (gateway, _sandbox) = gateway()
        .redis(redis)
        .with(|config| config.alarm_bus.retention = 2)
        .start()
        .await;
    let client = http_client();
    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let mut ids = Vec::new();
    for i in 0..300 {
        let body = callback_body("ORDER_1", "53%", &format!("r{i}"));
        assert_eq!(post_callback(&client, &gateway, "", &body).await, 200);
        ids.push(next_alarm(&mut stream).await.id);
    }
    let status = gateway
        .alarms()
        .subscribe_alarms(SubscribeAlarmsRequest {
            resume_after: ids[0].clone(),
            ..Default::default()
        })
        .await
        .err()
        .map(|s| s.code());
    assert_eq!(
        status,
        Some(Code::OutOfRange),
        "the first of 300 alarms is no longer retained"
    );

    let malformed = gateway
        .alarms()
        .subscribe_alarms(SubscribeAlarmsRequest {
            resume_after: "yesterday".into(),
            ..Default::default()
        })
        .await
        .err()
        .map(|s| s.code());
    assert_eq!(malformed, Some(Code::InvalidArgument));
}

#[tokio::test]
async fn resuming_after_an_alarm_no_longer_retained_is_out_of_range_in_process() {
    resume_from_a_lost_id_is_out_of_range(None).await;
}

#[tokio::test]
async fn resuming_after_an_alarm_no_longer_retained_is_out_of_range_with_redis() {
    resume_from_a_lost_id_is_out_of_range(Some(shared_redis())).await;
}

/// An id one later than `id` (same millisecond, next sequence number).
fn one_after(id: &str) -> String {
    let (millis, seq) = id.split_once('-').expect("<millis>-<seq>");
    format!(
        "{millis}-{}",
        seq.parse::<u64>().expect("numeric sequence") + 1
    )
}

async fn resume_beyond_the_newest_alarm_is_invalid(redis: Option<RedisConfig>) {
    let (gateway, _sandbox) = gateway_on(redis).await;
    let resume = |resume_after: String| {
        let mut client = gateway.alarms();
        async move {
            client
                .subscribe_alarms(SubscribeAlarmsRequest {
                    resume_after,
                    ..Default::default()
                })
                .await
                .err()
        }
    };
    // An empty log: an id from the future cannot have been received.
    let future = resume("99999999999999-0".into()).await.expect("refused");
    assert_eq!(future.code(), Code::InvalidArgument, "{future:?}");
    assert_eq!(violated_fields(&future), ["resume_after"]);

    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let body = callback_body("ORDER_1", "53%", "r1");
    assert_eq!(
        post_callback(&http_client(), &gateway, "", &body).await,
        200
    );
    let newest = next_alarm(&mut stream).await.id;

    assert!(
        resume(newest.clone()).await.is_none(),
        "resuming after the newest alarm is fine"
    );
    let beyond = resume(one_after(&newest)).await.expect("refused");
    assert_eq!(beyond.code(), Code::InvalidArgument, "{beyond:?}");
    assert_eq!(violated_fields(&beyond), ["resume_after"]);
    assert_eq!(
        error_reason(&beyond).as_deref(),
        Some("RESUME_POINT_BEYOND_NEWEST")
    );
}

#[tokio::test]
async fn resuming_after_an_id_beyond_the_newest_alarm_is_invalid_in_process() {
    resume_beyond_the_newest_alarm_is_invalid(None).await;
}

#[tokio::test]
async fn resuming_after_an_id_beyond_the_newest_alarm_is_invalid_with_redis() {
    resume_beyond_the_newest_alarm_is_invalid(Some(shared_redis())).await;
}

#[tokio::test]
async fn a_callback_mp_sends_twice_is_delivered_once() {
    let redis = shared_redis();
    let (first, _s1) = gateway_on(Some(redis.clone())).await;
    let (second, _s2) = gateway_on(Some(redis)).await;
    let mut stream = subscribe(&first, SubscribeAlarmsRequest::default()).await;
    let client = http_client();
    let repeated = callback_body("ORDER_1", "84%", "same-request");
    assert_eq!(post_callback(&client, &first, "", &repeated).await, 200);
    assert_eq!(
        post_callback(&client, &second, "", &repeated).await,
        200,
        "acknowledged, not relayed"
    );
    assert_eq!(
        post_callback(
            &client,
            &first,
            "",
            &callback_body("ORDER_1", "100%", "next")
        )
        .await,
        200
    );
    assert_eq!(next_alarm(&mut stream).await.request_id, "same-request");
    assert_eq!(next_alarm(&mut stream).await.request_id, "next");
    assert_next_is_sentinel(&client, &first, "", &mut stream).await;
    assert_quiet(&mut stream).await;
}

#[tokio::test]
async fn a_burst_of_1000_callbacks_from_10_senders_is_delivered_once_each_in_stream_order() {
    let redis = shared_redis();
    let (receiving, _s1) = gateway_on(Some(redis.clone())).await;
    let (serving, _s2) = gateway_on(Some(redis)).await;
    let mut on_receiver = subscribe(&receiving, SubscribeAlarmsRequest::default()).await;
    let mut on_other = subscribe(&serving, SubscribeAlarmsRequest::default()).await;
    let client = http_client();
    let senders: Vec<_> = (0..10)
        .map(|sender| {
            let client = client.clone();
            let url = format!("http://{}/mp/alarm-callback", receiving.http_addr);
            tokio::spawn(async move {
                for i in 0..100 {
                    let body =
                        callback_body(&format!("ORDER_{sender}"), "53%", &format!("{sender}-{i}"));
                    let status = client.post(&url).json(&body).send().await.unwrap().status();
                    assert_eq!(status.as_u16(), 200);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    // Published after all 1000: on each stream, the alarm right after them.
    let sentinel = callback_body("ORDER_SENTINEL", "53%", "sentinel");
    assert_eq!(post_callback(&client, &receiving, "", &sentinel).await, 200);
    for stream in [&mut on_receiver, &mut on_other] {
        let mut ids = Vec::new();
        let mut per_sender: Vec<Vec<u32>> = vec![Vec::new(); 10];
        for _ in 0..1000 {
            let alarm = next_alarm(stream).await;
            let (sender, i) = alarm.request_id.split_once('-').unwrap();
            per_sender[sender.parse::<usize>().unwrap()].push(i.parse().unwrap());
            ids.push(alarm.id.parse::<mp_gateway::alarms::AlarmId>().unwrap());
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "stream order");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000, "each once");
        for sent in per_sender {
            assert_eq!(
                sent,
                (0..100).collect::<Vec<_>>(),
                "each sender's alarms in its order"
            );
        }
        assert_eq!(next_alarm(stream).await.request_id, "sentinel");
        assert_quiet(stream).await;
    }
}

#[tokio::test]
async fn a_stalled_subscriber_neither_delays_a_healthy_one_nor_misses_alarms_silently() {
    let (gateway, _sandbox) = gateway()
        .with(|config| config.alarm_bus.subscriber_buffer = 16)
        .start()
        .await;
    // Never read until the end: HTTP/2 flow control soon stops the server from sending.
    let mut stalled = subscriber_that_never_reads(gateway.grpc_addr).await;
    let mut healthy = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let client = http_client();
    let padding = "x".repeat(120);
    for i in 0..2000 {
        let body = callback_body("ORDER_1", "53%", &format!("{i}-{padding}"));
        assert_eq!(post_callback(&client, &gateway, "", &body).await, 200);
        let alarm = next_alarm(&mut healthy).await;
        assert!(alarm.request_id.starts_with(&format!("{i}-")));
    }
    let mut delivered = 0;
    let end = loop {
        match timeout(WAIT, stalled.message())
            .await
            .expect("stream ends in time")
        {
            Ok(Some(_)) => delivered += 1,
            Ok(None) => panic!("stream ended without a status after {delivered} alarms"),
            Err(status) => break status,
        }
    };
    assert!(delivered < 2000, "the stalled subscriber fell behind");
    assert_eq!(end.code(), Code::ResourceExhausted);
    assert!(end.message().contains("resume_after"), "{}", end.message());
    assert_eq!(error_reason(&end).as_deref(), Some("SUBSCRIBER_TOO_SLOW"));
}

/// The lag limit holds even when tonic cannot poll the stream (its client's
/// window is full): the relay cuts the subscriber by itself.
#[tokio::test]
async fn a_subscriber_that_never_reads_is_cut_without_reading() {
    let (gateway, _sandbox) = gateway()
        .with(|config| config.alarm_bus.subscriber_buffer = 16)
        .start()
        .await;
    let stuck = subscriber_that_never_reads(gateway.grpc_addr).await;
    eventually(WAIT, "the subscriber is counted", || async {
        metric(gateway.http_addr, "mp_gateway_alarm_subscribers", &[]).await == 1.0
    })
    .await;
    let client = http_client();
    for i in 0..1000 {
        assert_eq!(
            post_callback(&client, &gateway, "", &padded_callback_body(i)).await,
            200
        );
    }
    eventually(
        Duration::from_secs(5),
        "the stuck subscriber is cut",
        || async {
            metric(gateway.http_addr, "mp_gateway_alarm_subscribers", &[]).await == 0.0
                && metric(
                    gateway.http_addr,
                    "mp_gateway_alarm_streams_ended_total",
                    &["reason=\"too_slow\""],
                )
                .await
                    == 1.0
        },
    )
    .await;
    drop(stuck);
}

#[tokio::test]
async fn shutdown_ends_open_alarm_streams_at_once_with_unavailable_shutting_down_and_retry_info() {
    // Long enough that "at once" and "after the grace period" cannot be confused.
    let (mut gateway, _sandbox) = gateway()
        .with(|config| config.shutdown_grace = Duration::from_secs(60))
        .start()
        .await;
    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let stopping = gateway.begin_stop();
    let status = timeout(WAIT, stream.message())
        .await
        .expect("the stream ends well within the grace period")
        .expect_err("the stream ends with a status");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(error_reason(&status).as_deref(), Some("SHUTTING_DOWN"));
    assert!(status.get_details_retry_info().is_some(), "RetryInfo");
    timeout(WAIT, stopping)
        .await
        .expect("the gateway stops without waiting out the grace period")
        .expect("the server task completes")
        .expect("the server stops cleanly");
}

#[tokio::test]
async fn sandbox_threshold_callbacks_reach_a_subscriber() {
    let sandbox = start_sandbox_with_traffic(2000.0).await;
    let gateway = gateway()
        .callback_token("loop-token")
        .start_on(&sandbox)
        .await;
    let callback = CallbackUrl::parse(&format!(
        "http://{}/mp/alarm-callback?token=loop-token",
        gateway.http_addr
    ))
    .unwrap();
    gateway
        .alarms()
        .register_callback(RegisterCallbackRequest {
            reseller_code: ACCESS_KEY.into(),
            http_url: callback.as_str().into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Subscribed before ordering, so not even the first threshold can be missed.
    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let order = active_order(&gateway).await;
    let percents: Vec<u32> = [
        next_alarm(&mut stream).await,
        next_alarm(&mut stream).await,
        next_alarm(&mut stream).await,
    ]
    .iter()
    .map(|a| {
        assert_eq!(a.order_code, order);
        a.used_percent
    })
    .collect();
    assert_eq!(percents, [53, 84, 100]);
}

/// Before the replica's stream reader knows where the stream ends, an alarm
/// added could fall before its starting point and never be relayed: a new
/// subscriber is refused with a status instead of being left with a silent gap.
#[tokio::test]
async fn a_subscriber_is_refused_while_the_stream_reader_cannot_reach_redis() {
    let unreachable = mp_gateway::config::RedisConfig::url(
        &format!("redis://{}", closed_port().await),
        &shared_redis().key_prefix,
    );
    let bus = mp_gateway::alarms::AlarmBus::new(
        config_for("http://127.0.0.1:9").alarm_bus,
        Some(&mp_gateway::redis::Redis::new(&unreachable).expect("valid URL")),
    );

    let refused = timeout(WAIT, bus.subscribe(None))
        .await
        .expect("the bus answers in bounded time");
    assert!(
        matches!(refused, Err(mp_gateway::alarms::BusError::Unavailable(_))),
        "expected UNAVAILABLE, got {:?}",
        refused.map(|_| "a subscription")
    );
}

/// Redis lost and back (empty, as a restarted cache-only Redis is): callbacks
/// are refused meanwhile so MP retries them, and a stream opened before the
/// outage gets the alarms accepted after it, without being reopened.
#[tokio::test]
async fn an_open_stream_survives_a_redis_restart_and_callbacks_meanwhile_are_refused() {
    let mut redis = OwnRedis::start().await;
    let (gateway, _sandbox) = gateway()
        .redis_at(&redis.url(), &unique_prefix("alarm-outage"))
        .start()
        .await;
    let client = http_client();
    let mut stream = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let before = callback_body("ORDER_1", "53%", "before");
    assert_eq!(post_callback(&client, &gateway, "", &before).await, 200);
    assert_eq!(next_alarm(&mut stream).await.request_id, "before");

    redis.kill().await;
    let during = callback_body("ORDER_1", "84%", "during");
    assert_eq!(
        post_callback(&client, &gateway, "", &during).await,
        503,
        "not acknowledged: MP must retry it"
    );

    redis.restart().await;
    // MP's retry: the same callback until it is acknowledged (it is stored once).
    eventually(WAIT, "a callback is accepted again", || {
        let (client, gateway, during) = (&client, &gateway, &during);
        async move { post_callback(client, gateway, "", during).await == 200 }
    })
    .await;
    assert_eq!(next_alarm(&mut stream).await.request_id, "during");
    assert_next_is_sentinel(&client, &gateway, "", &mut stream).await;
    assert_quiet(&mut stream).await;
}

/// Entries the gateway did not write (here a full replay page and more) are
/// skipped on replay, never read again and again: the resume still reaches
/// the alarms after them.
#[tokio::test]
async fn resuming_past_entries_the_gateway_cannot_read_reaches_the_alarms_after_them() {
    let redis = shared_redis();
    let stream_key = mp_gateway::alarms::AlarmKeys::new(&redis.key_prefix).stream;
    let (gateway, _sandbox) = gateway_on(Some(redis)).await;
    let client = http_client();
    let mut live = subscribe(&gateway, SubscribeAlarmsRequest::default()).await;
    let first = callback_body("ORDER_1", "53%", "before-foreign");
    assert_eq!(post_callback(&client, &gateway, "", &first).await, 200);
    let anchor = next_alarm(&mut live).await.id;

    let mut conn = redis_connection(SHARED_REDIS).await;
    let mut foreign = redis::pipe();
    for _ in 0..1500 {
        foreign
            .cmd("XADD")
            .arg(&stream_key)
            .arg("*")
            .arg("written-by")
            .arg("someone else")
            .ignore();
    }
    foreign
        .query_async::<()>(&mut conn)
        .await
        .expect("foreign entries added");
    let after = callback_body("ORDER_1", "84%", "after-foreign");
    assert_eq!(post_callback(&client, &gateway, "", &after).await, 200);

    let mut resumed = timeout(
        WAIT,
        gateway.alarms().subscribe_alarms(SubscribeAlarmsRequest {
            resume_after: anchor,
            ..Default::default()
        }),
    )
    .await
    .expect("the replay ends")
    .expect("the resume is accepted")
    .into_inner();
    assert_eq!(next_alarm(&mut resumed).await.request_id, "after-foreign");
}
