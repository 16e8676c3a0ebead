//! The body of one ConsumeAlarms call: a fetcher task takes alarms from the
//! subscription while the stream has room (max_outstanding), and a driver
//! task delivers them, applies the client's acks and nacks, forgets alarms
//! whose deadline passed (they go out again elsewhere), and on any end hands
//! the unacked ones back.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::alarm_stream::to_proto;
use super::in_flight::Open;
use super::subscription_requests::Acks;
use crate::alarms::metrics::shared as metrics;
use crate::alarms::shared::{Consumer, ConsumerSettings, Delivery, SharedError};
use crate::alarms::{AlarmId, SubscriptionEnd};
use crate::error::GatewayError;
use crate::proto::{ConsumeAlarmsRequest, ConsumeAlarmsResponse};

type Reply = Result<ConsumeAlarmsResponse, Status>;

/// How long after an alarm's deadline this stream makes room for another:
/// the others (which look every few hundred milliseconds) get the expired
/// alarm first, rather than the stream that let it expire taking it back.
const REDELIVERY_GRACE: Duration = Duration::from_secs(1);
/// How often a full stream (no room to fetch) says it is still connected.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Resolves once shutdown is requested (never, if nobody can request it).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Starts the stream's tasks; the returned body ends when they do.
pub fn consume_stream(
    consumer: Consumer,
    settings: &ConsumerSettings,
    first: ConsumeAlarmsRequest,
    inbound: Streaming<ConsumeAlarmsRequest>,
    shutdown: watch::Receiver<bool>,
    open: Open,
) -> impl Stream<Item = Reply> + Send + 'static {
    let consumer = Arc::new(consumer);
    let room = Arc::new(Semaphore::new(settings.max_outstanding));
    let (fetched, deliveries) = mpsc::channel(1);
    let fetcher = tokio::spawn(fetch(consumer.clone(), room.clone(), fetched));
    let stop_fetching = fetcher.abort_handle();
    // Never full: at most max_outstanding alarms and one status are ever queued.
    let (replies, body) = mpsc::channel(settings.max_outstanding + 1);
    let driver = Driver {
        consumer,
        subscription: settings.subscription.to_string(),
        ack_deadline: settings.ack_deadline,
        room,
        outstanding: HashMap::new(),
        deadlines: BTreeSet::new(),
        late: Late::new(settings.max_outstanding * 4),
        replies,
    };
    tokio::spawn(async move {
        let _open = open;
        driver
            .run(first, inbound, deliveries, shutdown, stop_fetching)
            .await;
        fetcher.abort();
    });
    ReceiverStream::new(body)
}

/// Takes alarms while the stream has room; stops at the first error.
async fn fetch(
    consumer: Arc<Consumer>,
    room: Arc<Semaphore>,
    fetched: mpsc::Sender<Result<Vec<Delivery>, SharedError>>,
) {
    loop {
        // A stream that is full (waiting for acks) still says it is connected.
        let first = loop {
            match tokio::time::timeout(KEEP_ALIVE, room.acquire()).await {
                Ok(Ok(permit)) => break permit,
                Ok(Err(_)) => return,
                Err(_) => consumer.keep_alive().await,
            }
        };
        first.forget();
        let more = room.available_permits();
        if let Ok(permits) = room.try_acquire_many(u32::try_from(more).unwrap_or(u32::MAX)) {
            permits.forget();
        }
        let asked = more + 1;
        let batch = consumer.next_batch(asked).await;
        let given = batch.as_ref().map_or(0, Vec::len);
        room.add_permits(asked.saturating_sub(given));
        let failed = batch.is_err();
        if fetched.send(batch).await.is_err() || failed {
            return;
        }
    }
}

/// Alarms whose deadline passed on this stream, remembered a while so a late
/// ack is still taken rather than refused as unknown.
struct Late {
    ids: HashSet<AlarmId>,
    order: VecDeque<AlarmId>,
    cap: usize,
}

impl Late {
    fn new(cap: usize) -> Self {
        Self {
            ids: HashSet::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    fn add(&mut self, id: AlarmId) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    fn take(&mut self, id: &AlarmId) -> bool {
        self.ids.remove(id)
    }
}

struct Driver {
    consumer: Arc<Consumer>,
    subscription: String,
    ack_deadline: Duration,
    room: Arc<Semaphore>,
    /// Delivered on this stream, neither acked, nacked nor past the deadline.
    outstanding: HashMap<AlarmId, Instant>,
    deadlines: BTreeSet<(Instant, AlarmId)>,
    late: Late,
    replies: mpsc::Sender<Reply>,
}

/// How the driver's loop ended.
enum End {
    /// The client went away or half-closed: nothing more to say.
    Quiet,
    Status(Status),
}

impl Driver {
    async fn run(
        mut self,
        first: ConsumeAlarmsRequest,
        mut inbound: Streaming<ConsumeAlarmsRequest>,
        mut deliveries: mpsc::Receiver<Result<Vec<Delivery>, SharedError>>,
        mut shutdown: watch::Receiver<bool>,
        stop_fetching: tokio::task::AbortHandle,
    ) {
        let mut end = self.apply(&first, true).await.err();
        while end.is_none() {
            let next_deadline = self.deadlines.first().map(|(at, _)| *at);
            end = tokio::select! {
                biased;
                () = shutdown_requested(&mut shutdown) => Some(End::Status(SubscriptionEnd::ShuttingDown.into())),
                () = self.replies.closed() => Some(End::Quiet),
                message = inbound.next() => match message {
                    Some(Ok(message)) => self.apply(&message, false).await.err(),
                    Some(Err(_)) | None => Some(End::Quiet),
                },
                () = sleep_until(next_deadline) => {
                    self.expire();
                    None
                }
                batch = deliveries.recv() => match batch {
                    Some(Ok(batch)) => self.deliver(batch).await.err(),
                    Some(Err(error)) => Some(End::Status(error.into())),
                    None => Some(End::Status(Status::internal("the alarm fetcher stopped"))),
                },
            };
        }
        // No more fetching before the unacked are handed back.
        stop_fetching.abort();
        let mut unacked: Vec<AlarmId> = self.outstanding.keys().copied().collect();
        metrics::pending(&self.subscription, -(unacked.len() as f64));
        // Taken for this stream but never sent: back to the others too.
        deliveries.close();
        while let Ok(Ok(batch)) = deliveries.try_recv() {
            unacked.extend(batch.iter().map(|d| d.alarm.id));
        }
        self.consumer.leave(&unacked).await;
        if let Some(End::Status(status)) = end {
            let _ = self.replies.try_send(Err(status));
        }
    }

    async fn deliver(&mut self, batch: Vec<Delivery>) -> Result<(), End> {
        let deadline = Instant::now() + self.ack_deadline + REDELIVERY_GRACE;
        for delivery in batch {
            let id = delivery.alarm.id;
            if let Some(old) = self.outstanding.insert(id, deadline) {
                self.deadlines.remove(&(old, id));
            } else {
                metrics::pending(&self.subscription, 1.0);
            }
            self.deadlines.insert((deadline, id));
            metrics::delivered(&self.subscription, delivery.attempt);
            let reply = ConsumeAlarmsResponse {
                alarm: Some(to_proto(&delivery.alarm)),
                delivery_attempt: delivery.attempt,
            };
            if self.replies.send(Ok(reply)).await.is_err() {
                return Err(End::Quiet);
            }
        }
        Ok(())
    }

    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, id));
            if self.outstanding.remove(&id).is_some() {
                self.late.add(id);
                self.room.add_permits(1);
                metrics::pending(&self.subscription, -1.0);
            }
        }
    }

    /// Checks every id of the message, then applies them all (or none).
    async fn apply(&mut self, message: &ConsumeAlarmsRequest, first: bool) -> Result<(), End> {
        let acks = Acks::parse(message, first)
            .map_err(|v| End::Status(GatewayError::InvalidArgument(v).into()))?;
        let unknown: Vec<(String, String)> = acks
            .ack
            .iter()
            .chain(&acks.nack)
            .filter(|(_, id)| !self.outstanding.contains_key(id) && !self.late.ids.contains(id))
            .map(|(field, id)| (field.clone(), id.to_string()))
            .collect();
        if !unknown.is_empty() {
            return Err(End::Status(SharedError::UnknownAckIds(unknown).into()));
        }
        let acked: Vec<AlarmId> = acks.ack.iter().map(|(_, id)| *id).collect();
        // A nack of an alarm past its deadline changes nothing: it goes out again anyway.
        let nacked: Vec<AlarmId> = acks
            .nack
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| !self.late.take(id))
            .collect();
        for id in acked.iter().chain(&nacked) {
            self.forget(id);
        }
        if !acked.is_empty() {
            self.consumer
                .ack(&acked)
                .await
                .map_err(|e| End::Status(e.into()))?;
            metrics::acked(&self.subscription, acked.len());
        }
        if !nacked.is_empty() {
            self.consumer
                .nack(&nacked)
                .await
                .map_err(|e| End::Status(e.into()))?;
        }
        Ok(())
    }

    fn forget(&mut self, id: &AlarmId) {
        if let Some(at) = self.outstanding.remove(id) {
            self.deadlines.remove(&(at, *id));
            self.room.add_permits(1);
            metrics::pending(&self.subscription, -1.0);
        } else {
            self.late.take(id);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
