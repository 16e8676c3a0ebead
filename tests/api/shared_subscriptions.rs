//! Shared, acknowledged subscriptions (ConsumeAlarms): each alarm goes to one
//! consumer of a subscription at a time until acked, across replicas (Redis)
//! and in process; redelivered after a deadline or a nack; dead-lettered
//! after ALARM_MAX_DELIVERY_ATTEMPTS.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mp_gateway::config::RedisConfig;
use mp_gateway::proto::alarm_service_client::AlarmServiceClient;
use mp_gateway::proto::{
    ConsumeAlarmsRequest, ConsumeAlarmsResponse, DeleteSubscriptionRequest,
    ListSubscriptionsRequest, SharedSubscription,
};
use mp_gateway::sandbox::Sandbox;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

use crate::support::{
    TestGateway, callback_body, error_reason, eventually, gateway, http_client, metric,
    post_callback, shared_redis, start_sandbox, violated_fields,
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

async fn subscriptions(gateway: &TestGateway) -> Vec<SharedSubscription> {
    gateway
        .alarms()
        .list_subscriptions(ListSubscriptionsRequest::default())
        .await
        .expect("ListSubscriptions answers")
        .into_inner()
        .subscriptions
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
        subscriptions(&one).await
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
        subscriptions(&staying).await.first().map(|s| s.consumers) == Some(3)
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
