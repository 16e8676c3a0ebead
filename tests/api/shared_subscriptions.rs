//! Shared, acknowledged subscriptions (ConsumeAlarms): each alarm goes to one
//! consumer of a subscription at a time until acked, across replicas (Redis)
//! and in process; redelivered after a deadline or a nack; dead-lettered
//! after ALARM_MAX_DELIVERY_ATTEMPTS.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mp_gateway::config::RedisConfig;
use mp_gateway::proto::alarm_service_client::AlarmServiceClient;
use mp_gateway::proto::{
    ConsumeAlarmsRequest, ConsumeAlarmsResponse, DeleteSubscriptionRequest, SharedSubscription,
};
use mp_gateway::sandbox::Sandbox;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

use crate::support::{
    TestGateway, callback_body, error_reason, eventually, gateway, http_client, list_subscriptions,
    metric, post_callback, shared_redis, start_sandbox, violated_fields,
};

const WAIT: Duration = Duration::from_secs(15);

/// One ConsumeAlarms stream: what the test sends, and what it receives.
struct Consumer {
    send: Option<mpsc::UnboundedSender<ConsumeAlarmsRequest>>,
    stream: Streaming<ConsumeAlarmsResponse>,
}

fn first(subscription: &str) -> ConsumeAlarmsRequest {
    ConsumeAlarmsRequest {
        subscription: subscription.to_owned(),
        ..Default::default()
    }
}

fn with_deadline(subscription: &str, seconds: u32) -> ConsumeAlarmsRequest {
    ConsumeAlarmsRequest {
        ack_deadline_seconds: seconds,
        ..first(subscription)
    }
}

/// Opens a stream whose first message is `first`; Ok once the gateway has
/// joined the subscription (the response headers arrived).
async fn try_consume(
    gateway: &TestGateway,
    first: ConsumeAlarmsRequest,
) -> Result<Consumer, Status> {
    consume_on(gateway.alarms(), first).await
}

async fn consume_on(
    mut client: AlarmServiceClient<Channel>,
    first: ConsumeAlarmsRequest,
) -> Result<Consumer, Status> {
    let (send, receive) = mpsc::unbounded_channel();
    send.send(first).expect("the channel is open");
    let stream = client
        .consume_alarms(UnboundedReceiverStream::new(receive))
        .await?
        .into_inner();
    Ok(Consumer {
        send: Some(send),
        stream,
    })
}

async fn consume(gateway: &TestGateway, first: ConsumeAlarmsRequest) -> Consumer {
    try_consume(gateway, first)
        .await
        .expect("the stream starts")
}

impl Consumer {
    async fn next(&mut self) -> ConsumeAlarmsResponse {
        timeout(WAIT, self.stream.message())
            .await
            .expect("an alarm arrives in time")
            .expect("the stream is healthy")
            .expect("the stream is open")
    }

    /// The next `n` deliveries.
    async fn take(&mut self, n: usize) -> Vec<ConsumeAlarmsResponse> {
        let mut got = Vec::with_capacity(n);
        for _ in 0..n {
            got.push(self.next().await);
        }
        got
    }

    /// The status the stream ends with.
    async fn end(&mut self) -> Status {
        loop {
            match timeout(WAIT, self.stream.message())
                .await
                .expect("the stream ends in time")
            {
                Ok(Some(_)) => continue,
                Ok(None) => return Status::ok(""),
                Err(status) => return status,
            }
        }
    }

    /// Proves nothing arrives for `quiet`.
    async fn assert_quiet(&mut self, quiet: Duration) {
        let next = timeout(quiet, self.stream.message()).await;
        assert!(next.is_err(), "expected no delivery, got {next:?}");
    }

    fn send(&self, message: ConsumeAlarmsRequest) {
        self.send
            .as_ref()
            .expect("still sending")
            .send(message)
            .expect("the stream is open");
    }

    fn ack(&self, ids: &[&str]) {
        self.send(ConsumeAlarmsRequest {
            ack_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            ..Default::default()
        });
    }

    fn nack(&self, ids: &[&str]) {
        self.send(ConsumeAlarmsRequest {
            nack_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            ..Default::default()
        });
    }
}

fn id_of(delivery: &ConsumeAlarmsResponse) -> String {
    delivery.alarm.as_ref().expect("an alarm").id.clone()
}

fn request_id_of(delivery: &ConsumeAlarmsResponse) -> String {
    delivery
        .alarm
        .as_ref()
        .expect("an alarm")
        .request_id
        .clone()
}

/// Posts `count` distinct alarms (request ids `<tag>-<i>`) to `gateways` in turn, 10 at a time.
async fn publish(gateways: &[&TestGateway], tag: &str, range: std::ops::Range<usize>) {
    let client = http_client();
    let urls: Vec<String> = gateways
        .iter()
        .map(|g| format!("http://{}/mp/alarm-callback", g.http_addr))
        .collect();
    let senders: Vec<_> = (0..10)
        .map(|sender| {
            let (client, urls, tag, range) =
                (client.clone(), urls.clone(), tag.to_owned(), range.clone());
            tokio::spawn(async move {
                for i in range.filter(|i| i % 10 == sender) {
                    let body = callback_body("ORDER_1", "53%", &format!("{tag}-{i}"));
                    let url = &urls[i % urls.len()];
                    let status = client.post(url).json(&body).send().await.unwrap().status();
                    assert_eq!(status.as_u16(), 200, "callback {i} accepted");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender finishes");
    }
}

async fn publish_one(gateway: &TestGateway, request_id: &str) {
    let status = post_callback(
        &http_client(),
        gateway,
        "",
        &callback_body("ORDER_1", "84%", request_id),
    )
    .await;
    assert_eq!(status, 200);
}

async fn replica(redis: Option<RedisConfig>, sandbox: &Sandbox) -> TestGateway {
    gateway().redis(redis).start_on(sandbox).await
}

/// Receives and acks until `want` distinct alarms were acked across all
/// consumers; returns (consumer index, request id) of every delivery.
async fn consume_all_acking(consumers: Vec<Consumer>, want: usize) -> Vec<(usize, String)> {
    let seen: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let tasks: Vec<_> = consumers
        .into_iter()
        .enumerate()
        .map(|(n, mut consumer)| {
            let (seen, acked) = (seen.clone(), acked.clone());
            tokio::spawn(async move {
                while acked.lock().unwrap().len() < want {
                    let Ok(next) =
                        timeout(Duration::from_millis(200), consumer.stream.message()).await
                    else {
                        continue;
                    };
                    let delivery = next.expect("healthy").expect("open");
                    seen.lock().unwrap().push((n, request_id_of(&delivery)));
                    consumer.ack(&[&id_of(&delivery)]);
                    acked.lock().unwrap().insert(request_id_of(&delivery));
                }
                consumer
            })
        })
        .collect();
    let mut consumers = Vec::new();
    for task in tasks {
        consumers.push(
            timeout(Duration::from_secs(60), task)
                .await
                .expect("all alarms arrive in time")
                .expect("consumer task"),
        );
    }
    // Nothing more (no second delivery of an acked alarm) arrives.
    for consumer in &mut consumers {
        consumer.assert_quiet(Duration::from_millis(300)).await;
    }
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

fn all(tag: &str, n: usize) -> HashSet<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

#[tokio::test]
async fn three_consumers_on_two_replicas_share_1000_alarms_each_delivered_to_one_only() {
    let redis = shared_redis();
    let sandbox = start_sandbox().await;
    let one = replica(Some(redis.clone()), &sandbox).await;
    let two = replica(Some(redis), &sandbox).await;
    let consumers = vec![
        consume(&one, first("billing")).await,
        consume(&two, first("billing")).await,
        consume(&two, first("billing")).await,
    ];
    let both = [&one, &two];
    let (delivered, ()) = tokio::join!(
        consume_all_acking(consumers, 1000),
        publish(&both, "a", 0..1000)
    );
    let ids: Vec<&String> = delivered.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 1000, "1000 deliveries, no alarm delivered twice");
    assert_eq!(
        delivered
            .iter()
            .map(|(_, id)| id.clone())
            .collect::<HashSet<_>>(),
        all("a", 1000)
    );
    let per_consumer: HashSet<usize> = delivered.iter().map(|(n, _)| *n).collect();
    assert!(
        per_consumer.len() >= 2,
        "the work was shared: {per_consumer:?}"
    );
    // The consumers are gone (dropped), their acks all applied.
    eventually(WAIT, "nothing pending, nothing in the backlog", || async {
        list_subscriptions(&one).await
            == [SharedSubscription {
                name: "billing".into(),
                consumers: 0,
                pending: 0,
                backlog: 0,
            }]
    })
    .await;
}

#[tokio::test]
async fn two_subscriptions_each_get_all_1000_alarms() {
    let redis = shared_redis();
    let sandbox = start_sandbox().await;
    let one = replica(Some(redis.clone()), &sandbox).await;
    let two = replica(Some(redis), &sandbox).await;
    let billing = consume(&one, first("billing")).await;
    let audit = consume(&two, first("audit")).await;
    let both = [&one, &two];
    let (billed, audited, ()) = tokio::join!(
        consume_all_acking(vec![billing], 1000),
        consume_all_acking(vec![audit], 1000),
        publish(&both, "a", 0..1000)
    );
    for delivered in [billed, audited] {
        assert_eq!(delivered.len(), 1000, "each once");
        let ids: HashSet<String> = delivered.into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids, all("a", 1000));
    }
}

/// A consumer that received 50 alarms and went away without acking.
async fn dropped_with_50_unacked(gateway: &TestGateway, publish_to: &TestGateway) {
    let mut leaving = consume(
        gateway,
        ConsumeAlarmsRequest {
            max_outstanding: 50,
            ..with_deadline("billing", 1)
        },
    )
    .await;
    publish(&[publish_to], "a", 0..50).await;
    let got = leaving.take(50).await;
    assert!(got.iter().all(|d| d.delivery_attempt == 1));
    drop(leaving);
}

#[tokio::test]
async fn a_dropped_consumers_50_unacked_alarms_reach_the_others_with_redis() {
    let redis = shared_redis();
    let sandbox = start_sandbox().await;
    let one = replica(Some(redis.clone()), &sandbox).await;
    let two = replica(Some(redis), &sandbox).await;
    dropped_with_50_unacked(&one, &two).await;
    let others = vec![
        consume(&two, with_deadline("billing", 2)).await,
        consume(&one, with_deadline("billing", 2)).await,
    ];
    let delivered = consume_all_acking(others, 50).await;
    assert_eq!(delivered.len(), 50, "each of the 50 once");
    assert!(delivered.iter().all(|(_, id)| id.starts_with("a-")));
    let ids: HashSet<String> = delivered.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, all("a", 50), "none lost");
}

#[tokio::test]
async fn a_dropped_consumers_50_unacked_alarms_reach_the_others_in_process() {
    let sandbox = start_sandbox().await;
    let one = replica(None, &sandbox).await;
    dropped_with_50_unacked(&one, &one).await;
    let others = vec![
        consume(&one, with_deadline("billing", 2)).await,
        consume(&one, with_deadline("billing", 2)).await,
    ];
    let delivered = consume_all_acking(others, 50).await;
    assert_eq!(delivered.len(), 50, "each of the 50 once");
    let ids: HashSet<String> = delivered.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, all("a", 50), "none lost");
}

async fn an_unacked_alarm_goes_to_another_consumer_after_the_deadline(redis: Option<RedisConfig>) {
    let sandbox = start_sandbox().await;
    let one = replica(redis, &sandbox).await;
    let mut hung = consume(
        &one,
        ConsumeAlarmsRequest {
            max_outstanding: 1,
            ..with_deadline("billing", 1)
        },
    )
    .await;
    publish_one(&one, "late").await;
    let first = hung.next().await;
    assert_eq!(first.delivery_attempt, 1);
    // The hung consumer stays connected and never acks.
    let mut healthy = consume(&one, with_deadline("billing", 30)).await;
    let again = healthy.next().await;
    assert_eq!(id_of(&again), id_of(&first));
    assert_eq!(again.delivery_attempt, 2);
    healthy.ack(&[&id_of(&again)]);
    healthy.assert_quiet(Duration::from_millis(1500)).await;
    // A late ack of an alarm past its deadline is taken, not refused.
    hung.ack(&[&id_of(&first)]);
    hung.assert_quiet(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn an_alarm_not_acked_within_the_deadline_goes_to_another_consumer_with_redis() {
    an_unacked_alarm_goes_to_another_consumer_after_the_deadline(Some(shared_redis())).await;
}

#[tokio::test]
async fn an_alarm_not_acked_within_the_deadline_goes_to_another_consumer_in_process() {
    an_unacked_alarm_goes_to_another_consumer_after_the_deadline(None).await;
}

/// Consumes `subscription` from `gateways[0]`, moving to the next gateway
/// whenever the stream ends; acks everything; stops once `want` are acked.
async fn roaming_consumer(
    gateways: Vec<AlarmServiceClient<Channel>>,
    acked: Arc<Mutex<HashSet<String>>>,
    want: usize,
) -> Vec<Code> {
    let mut endings = Vec::new();
    let mut at = 0;
    let mut consumer = consume_on(gateways[at].clone(), with_deadline("billing", 2))
        .await
        .expect("the first stream starts");
    while acked.lock().unwrap().len() < want {
        match timeout(Duration::from_millis(200), consumer.stream.message()).await {
            Err(_) => continue,
            Ok(Ok(Some(delivery))) => {
                consumer.ack(&[&id_of(&delivery)]);
                acked.lock().unwrap().insert(request_id_of(&delivery));
            }
            Ok(Ok(None)) => panic!("the stream ended without a status"),
            Ok(Err(status)) => {
                endings.push(status.code());
                // Like a client: the next replica, until one takes the stream.
                consumer = loop {
                    at = (at + 1) % gateways.len();
                    if let Ok(next) =
                        consume_on(gateways[at].clone(), with_deadline("billing", 2)).await
                    {
                        break next;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
            }
        }
    }
    endings
}

#[tokio::test]
async fn consumers_of_a_replica_that_stops_mid_stream_move_to_the_other_and_nothing_is_lost() {
    let redis = shared_redis();
    let sandbox = start_sandbox().await;
    let mut stopping = replica(Some(redis.clone()), &sandbox).await;
    let staying = replica(Some(redis), &sandbox).await;
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    // The stopping replica's consumers move on to the staying one.
    let consumers: Vec<_> = [
        vec![stopping.alarms(), staying.alarms()],
        vec![stopping.alarms(), staying.alarms()],
        vec![staying.alarms()],
    ]
    .into_iter()
    .map(|gateways| tokio::spawn(roaming_consumer(gateways, acked.clone(), 1000)))
    .collect();
    eventually(WAIT, "three consumers connected", || async {
        list_subscriptions(&staying)
            .await
            .first()
            .map(|s| s.consumers)
            == Some(3)
    })
    .await;
    publish(&[&staying], "a", 0..500).await;
    eventually(WAIT, "some alarms acked", || async {
        acked.lock().unwrap().len() >= 100
    })
    .await;
    let stopped = stopping.begin_stop();
    publish(&[&staying], "a", 500..1000).await;
    let mut endings = Vec::new();
    for consumer in consumers {
        endings.extend(
            timeout(Duration::from_secs(60), consumer)
                .await
                .expect("every alarm is acked in time")
                .expect("consumer task"),
        );
    }
    assert_eq!(*acked.lock().unwrap(), all("a", 1000), "nothing lost");
    assert_eq!(
        endings,
        [Code::Unavailable, Code::Unavailable],
        "both consumers of the stopped replica were told"
    );
    timeout(WAIT, stopped)
        .await
        .expect("the replica stops")
        .expect("task")
        .expect("clean stop");
}

async fn a_nack_redelivers_at_once_with_delivery_attempt_2(redis: Option<RedisConfig>) {
    let sandbox = start_sandbox().await;
    let one = replica(redis, &sandbox).await;
    // A deadline far longer than the test: only the nack can bring it back.
    let mut consumer = consume(&one, with_deadline("billing", 600)).await;
    publish_one(&one, "nacked").await;
    let first = consumer.next().await;
    assert_eq!(first.delivery_attempt, 1);
    consumer.nack(&[&id_of(&first)]);
    let again = consumer.next().await;
    assert_eq!(id_of(&again), id_of(&first));
    assert_eq!(again.delivery_attempt, 2);
    consumer.ack(&[&id_of(&again)]);
    consumer.assert_quiet(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn a_nack_redelivers_at_once_with_delivery_attempt_2_with_redis() {
    a_nack_redelivers_at_once_with_delivery_attempt_2(Some(shared_redis())).await;
}

#[tokio::test]
async fn a_nack_redelivers_at_once_with_delivery_attempt_2_in_process() {
    a_nack_redelivers_at_once_with_delivery_attempt_2(None).await;
}

async fn after_max_attempts_an_alarm_is_dead_lettered(redis: Option<RedisConfig>) {
    let sandbox = start_sandbox().await;
    let one = gateway()
        .redis(redis)
        .with(|config| config.alarm_bus.max_delivery_attempts = 3)
        .start_on(&sandbox)
        .await;
    let mut consumer = consume(&one, with_deadline("billing", 600)).await;
    publish_one(&one, "poison").await;
    for attempt in 1..=3 {
        let delivery = consumer.next().await;
        assert_eq!(request_id_of(&delivery), "poison");
        assert_eq!(delivery.delivery_attempt, attempt);
        consumer.nack(&[&id_of(&delivery)]);
    }
    // The next alarm arrives; the poison one does not come back.
    publish_one(&one, "next").await;
    let next = consumer.next().await;
    assert_eq!(
        (request_id_of(&next).as_str(), next.delivery_attempt),
        ("next", 1)
    );
    consumer.ack(&[&id_of(&next)]);
    consumer.assert_quiet(Duration::from_millis(700)).await;
    let label = "subscription=\"billing\"";
    assert_eq!(
        metric(
            one.http_addr,
            "mp_gateway_subscription_dead_lettered_total",
            &[label]
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            one.http_addr,
            "mp_gateway_subscription_redelivered_total",
            &[label]
        )
        .await,
        2.0
    );
    assert_eq!(
        metric(
            one.http_addr,
            "mp_gateway_subscription_acked_total",
            &[label]
        )
        .await,
        1.0
    );
    eventually(WAIT, "nothing pending", || async {
        list_subscriptions(&one).await.first().map(|s| s.pending) == Some(0)
    })
    .await;
}

#[tokio::test]
async fn after_max_delivery_attempts_an_alarm_leaves_the_subscription_and_is_counted_with_redis() {
    after_max_attempts_an_alarm_is_dead_lettered(Some(shared_redis())).await;
}

#[tokio::test]
async fn after_max_delivery_attempts_an_alarm_leaves_the_subscription_and_is_counted_in_process() {
    after_max_attempts_an_alarm_is_dead_lettered(None).await;
}

async fn no_more_than_max_outstanding_unacked_alarms_on_one_stream(redis: Option<RedisConfig>) {
    let sandbox = start_sandbox().await;
    let one = replica(redis, &sandbox).await;
    let mut consumer = consume(
        &one,
        ConsumeAlarmsRequest {
            max_outstanding: 5,
            ..first("billing")
        },
    )
    .await;
    publish(&[&one], "a", 0..8).await;
    let got = consumer.take(5).await;
    consumer.assert_quiet(Duration::from_millis(700)).await;
    let backlog = list_subscriptions(&one).await;
    assert_eq!((backlog[0].pending, backlog[0].backlog), (5, 3));
    consumer.ack(&[&id_of(&got[0]), &id_of(&got[1])]);
    consumer.take(2).await;
    consumer.assert_quiet(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn no_more_than_max_outstanding_unacked_alarms_on_one_stream_with_redis() {
    no_more_than_max_outstanding_unacked_alarms_on_one_stream(Some(shared_redis())).await;
}

#[tokio::test]
async fn no_more_than_max_outstanding_unacked_alarms_on_one_stream_in_process() {
    no_more_than_max_outstanding_unacked_alarms_on_one_stream(None).await;
}

async fn bad_first_messages_are_refused_by_field(redis: Option<RedisConfig>) {
    let sandbox = start_sandbox().await;
    let one = replica(redis, &sandbox).await;
    for (first, fields) in [
        (ConsumeAlarmsRequest::default(), vec!["subscription"]),
        (first("Billing"), vec!["subscription"]),
        (
            ConsumeAlarmsRequest {
                consumer: "a_b".into(),
                ack_deadline_seconds: 601,
                max_outstanding: 10_001,
                ..first("billing")
            },
            vec!["consumer", "ack_deadline_seconds", "max_outstanding"],
        ),
    ] {
        let status = try_consume(&one, first).await.err().expect("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(error_reason(&status).as_deref(), Some("INVALID_REQUEST"));
        assert_eq!(violated_fields(&status), fields);
    }
    // A stream closed before any message.
    let (send, receive) = mpsc::unbounded_channel::<ConsumeAlarmsRequest>();
    drop(send);
    let status = one
        .alarms()
        .consume_alarms(UnboundedReceiverStream::new(receive))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["subscription"]);
    // Nothing was created.
    assert_eq!(list_subscriptions(&one).await, []);
}

#[tokio::test]
async fn bad_first_messages_are_refused_by_field_and_create_nothing_with_redis() {
    bad_first_messages_are_refused_by_field(Some(shared_redis())).await;
}

#[tokio::test]
async fn bad_first_messages_are_refused_by_field_and_create_nothing_in_process() {
    bad_first_messages_are_refused_by_field(None).await;
}

async fn unknown_or_malformed_ack_ids_end_the_stream_and_apply_nothing(redis: Option<RedisConfig>) {
    let sandbox = start_sandbox().await;
    let one = replica(redis, &sandbox).await;
    let mut consumer = consume(&one, with_deadline("billing", 1)).await;
    publish_one(&one, "kept").await;
    let delivered = consumer.next().await;
    // A known id beside an unknown one: neither is applied.
    consumer.ack(&[&id_of(&delivered), "1-0"]);
    let status = consumer.end().await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(error_reason(&status).as_deref(), Some("UNKNOWN_ACK_ID"));
    assert_eq!(violated_fields(&status), ["ack_ids[1]"]);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.metadata["ack_id"], "1-0");
    // The known alarm was not acked: it comes back.
    let mut next = consume(&one, with_deadline("billing", 30)).await;
    let again = next.next().await;
    assert_eq!(id_of(&again), id_of(&delivered));
    assert_eq!(again.delivery_attempt, 2);
    // A malformed id, and an id in both lists.
    next.nack(&["not-an-id"]);
    let status = next.end().await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(error_reason(&status).as_deref(), Some("INVALID_REQUEST"));
    assert_eq!(violated_fields(&status), ["nack_ids[0]"]);
    let both = consume(&one, with_deadline("billing", 30)).await;
    let mut both = both;
    let third = both.next().await;
    both.send(ConsumeAlarmsRequest {
        ack_ids: vec![id_of(&third)],
        nack_ids: vec![id_of(&third)],
        ..Default::default()
    });
    assert_eq!(violated_fields(&both.end().await), ["nack_ids[0]"]);
    // A first-message field in a later message.
    let mut later = consume(&one, with_deadline("billing", 30)).await;
    let fourth = later.next().await;
    later.send(ConsumeAlarmsRequest {
        ack_ids: vec![id_of(&fourth)],
        ..first("billing")
    });
    assert_eq!(violated_fields(&later.end().await), ["subscription"]);
}

#[tokio::test]
async fn unknown_or_malformed_ack_ids_end_the_stream_and_apply_nothing_with_redis() {
    unknown_or_malformed_ack_ids_end_the_stream_and_apply_nothing(Some(shared_redis())).await;
}

#[tokio::test]
async fn unknown_or_malformed_ack_ids_end_the_stream_and_apply_nothing_in_process() {
    unknown_or_malformed_ack_ids_end_the_stream_and_apply_nothing(None).await;
}

async fn deleting_a_subscription_ends_its_streams(redis: Option<RedisConfig>) {
    let sandbox = start_sandbox().await;
    let one = replica(redis, &sandbox).await;
    let mut billing = consume(&one, first("billing")).await;
    let mut audit = consume(&one, first("audit")).await;
    publish_one(&one, "before").await;
    billing.next().await;
    audit.next().await;
    eventually(WAIT, "both listed", || async {
        list_subscriptions(&one).await
            == [
                SharedSubscription {
                    name: "audit".into(),
                    consumers: 1,
                    pending: 1,
                    backlog: 0,
                },
                SharedSubscription {
                    name: "billing".into(),
                    consumers: 1,
                    pending: 1,
                    backlog: 0,
                },
            ]
    })
    .await;
    one.alarms()
        .delete_subscription(DeleteSubscriptionRequest {
            subscription: "billing".into(),
            ..Default::default()
        })
        .await
        .expect("deleted");
    let status = billing.end().await;
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        error_reason(&status).as_deref(),
        Some("SUBSCRIPTION_DELETED")
    );
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.metadata["subscription"], "billing");
    // The other subscription goes on.
    publish_one(&one, "after").await;
    assert_eq!(request_id_of(&audit.next().await), "after");
    let names: Vec<String> = list_subscriptions(&one)
        .await
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["audit"]);
    for name in ["billing", "never-made"] {
        let status = one
            .alarms()
            .delete_subscription(DeleteSubscriptionRequest {
                subscription: name.into(),
                ..Default::default()
            })
            .await
            .expect_err("no such subscription");
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            error_reason(&status).as_deref(),
            Some("SUBSCRIPTION_NOT_FOUND")
        );
    }
    let status = one
        .alarms()
        .delete_subscription(DeleteSubscriptionRequest::default())
        .await
        .expect_err("no name");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["subscription"]);
}

#[tokio::test]
async fn deleting_a_subscription_ends_its_streams_with_not_found_with_redis() {
    deleting_a_subscription_ends_its_streams(Some(shared_redis())).await;
}

#[tokio::test]
async fn deleting_a_subscription_ends_its_streams_with_not_found_in_process() {
    deleting_a_subscription_ends_its_streams(None).await;
}

#[tokio::test]
async fn two_consumers_in_process_share_the_alarms_each_delivered_once() {
    let sandbox = start_sandbox().await;
    let one = replica(None, &sandbox).await;
    let consumers = vec![
        consume(&one, first("billing")).await,
        consume(&one, first("billing")).await,
    ];
    let only = [&one];
    let (delivered, ()) = tokio::join!(
        consume_all_acking(consumers, 300),
        publish(&only, "a", 0..300)
    );
    assert_eq!(delivered.len(), 300, "no alarm delivered twice");
    let ids: HashSet<String> = delivered.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, all("a", 300));
}

#[tokio::test]
async fn a_new_subscription_starts_at_the_newest_alarm() {
    let redis = shared_redis();
    let sandbox = start_sandbox().await;
    let one = replica(Some(redis), &sandbox).await;
    publish_one(&one, "before").await;
    let mut consumer = consume(&one, first("billing")).await;
    publish_one(&one, "after").await;
    assert_eq!(request_id_of(&consumer.next().await), "after");
}

#[tokio::test]
async fn shutdown_ends_consume_streams_with_unavailable_shutting_down() {
    let sandbox = start_sandbox().await;
    let mut one = gateway()
        .with(|config| config.shutdown_grace = Duration::from_secs(60))
        .start_on(&sandbox)
        .await;
    let mut consumer = consume(&one, first("billing")).await;
    let stopping = one.begin_stop();
    let status = consumer.end().await;
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(error_reason(&status).as_deref(), Some("SHUTTING_DOWN"));
    assert!(status.get_details_retry_info().is_some());
    timeout(WAIT, stopping)
        .await
        .expect("stops without waiting out the grace period")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test]
async fn a_full_stream_waiting_for_acks_still_counts_as_connected_with_redis() {
    let sandbox = start_sandbox().await;
    let one = replica(Some(shared_redis()), &sandbox).await;
    let mut full = consume(
        &one,
        ConsumeAlarmsRequest {
            max_outstanding: 1,
            ..with_deadline("billing", 600)
        },
    )
    .await;
    publish_one(&one, "held").await;
    full.next().await;
    // Longer than a silent consumer is counted (5 s).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let listed = list_subscriptions(&one).await;
    assert_eq!((listed[0].consumers, listed[0].pending), (1, 1));
    drop(full);
}

/// A stream's blocking read may still be under way in Redis when the stream
/// ends; whatever it takes must go to the others soon, not after 10 minutes.
#[tokio::test]
async fn alarms_read_for_a_stream_that_just_ended_reach_the_others_with_redis() {
    let sandbox = start_sandbox().await;
    let one = replica(Some(shared_redis()), &sandbox).await;
    for round in 0..5 {
        drop(consume(&one, with_deadline("billing", 600)).await);
        let tag = format!("round-{round}");
        publish_one(&one, &tag).await;
        let mut next = consume(&one, with_deadline("billing", 600)).await;
        let delivery = next.next().await;
        assert_eq!(request_id_of(&delivery), tag);
        next.ack(&[&id_of(&delivery)]);
        next.assert_quiet(Duration::from_millis(100)).await;
    }
}

/// The shared test Redis has no replicas: with REDIS_MIN_REPLICAS_ACK=1 an
/// ack never counts as stored, so the stream says so instead of going on.
#[tokio::test]
async fn an_ack_too_few_replicas_acknowledged_ends_the_stream_with_unavailable_and_is_counted() {
    let sandbox = start_sandbox().await;
    let plain = shared_redis();
    let publisher = replica(Some(plain.clone()), &sandbox).await;
    let mut durable = plain;
    durable.replica_ack = Some(mp_gateway::config::ReplicaAck {
        replicas: 1,
        timeout: Duration::from_millis(200),
    });
    let consuming = replica(Some(durable), &sandbox).await;
    let mut consumer = consume(&consuming, first("billing")).await;
    publish_one(&publisher, "acked-on-the-primary-only").await;
    let delivery = consumer.next().await;
    consumer.ack(&[&id_of(&delivery)]);
    let end = consumer.end().await;
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    let counted = metric(
        consuming.http_addr,
        "mp_gateway_redis_replica_ack_timeouts_total",
        &["write=\"consumer_ack\""],
    )
    .await;
    assert!(counted >= 1.0, "counted: {counted}");
}
