//! The body of one SubscribeAlarms call: a bus subscription, filtered, that
//! ends with a status the client can act on (resume, or go to another replica).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{mpsc, oneshot, watch};
use tonic::Status;

use super::in_flight::Open;
use crate::alarms::{Alarm, AlarmId, Subscription, SubscriptionEnd, metrics};
use crate::proto;

/// Which alarms a subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct AlarmFilter {
    /// Empty means every order.
    pub order_codes: HashSet<String>,
    pub min_used_percent: u32,
}

impl AlarmFilter {
    pub fn matches(&self, alarm: &Alarm) -> bool {
        alarm.report.used_percent >= self.min_used_percent
            && (self.order_codes.is_empty() || self.order_codes.contains(&alarm.report.order_code))
    }
}

pub fn to_proto(alarm: &Alarm) -> proto::Alarm {
    let r = &alarm.report;
    proto::Alarm {
        id: alarm.id.to_string(),
        eid: r.eid.clone(),
        package_code: r.package_code.clone(),
        order_code: r.order_code.clone(),
        used_percent: r.used_percent,
        used_rate: r.used_rate.clone(),
        received_at: Some(prost_types::Timestamp {
            seconds: r.received_at_millis.div_euclid(1000),
            nanos: i32::try_from(r.received_at_millis.rem_euclid(1000) * 1_000_000).unwrap_or(0),
        }),
        request_id: r.request_id.clone().unwrap_or_default(),
    }
}

/// Alarms between the forwarder and the response body. Small: the lag limit is
/// the bus subscription's buffer, which keeps filling while this is full.
const HANDOFF: usize = 16;
/// How often a forwarder whose subscriber is not reading checks for lag.
const LAG_CHECK: Duration = Duration::from_millis(100);

/// Resolves once shutdown is requested (never, if nobody can request it).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The body of one SubscribeAlarms call. A task per stream moves alarms from the
/// bus into a small channel the body drains, and decides on its own (whether or
/// not the client reads, so whether or not tonic polls the body) when the
/// stream ends: the subscriber lagged, the gateway stops, or the bus closed.
/// The body then ends with that status before any alarm still queued.
pub fn alarm_stream(
    subscription: Subscription,
    filter: AlarmFilter,
    shutdown: watch::Receiver<bool>,
    open: Open,
) -> impl Stream<Item = Result<proto::SubscribeAlarmsResponse, Status>> + Send + 'static {
    let (alarms, received) = mpsc::channel(HANDOFF);
    let (end, ended) = oneshot::channel();
    let last = subscription.last();
    tokio::spawn(forward(subscription, filter, shutdown, alarms, end));
    let body = Body {
        alarms: received,
        end: ended,
        last,
        delivered: metrics::delivered_counter(),
        ended: false,
        _open: open,
    };
    futures::stream::unfold(body, |mut body| async move {
        let item = body.next().await?;
        Some((item, body))
    })
}

struct Body {
    alarms: mpsc::Receiver<Arc<Alarm>>,
    end: oneshot::Receiver<SubscriptionEnd>,
    /// The last alarm yielded to tonic: where a lagged subscriber resumes.
    last: Option<AlarmId>,
    delivered: ::metrics::Counter,
    ended: bool,
    /// Counts this body for the shutdown drain while it lives.
    _open: Open,
}

impl Body {
    async fn next(&mut self) -> Option<Result<proto::SubscribeAlarmsResponse, Status>> {
        if self.ended {
            return None;
        }
        tokio::select! {
            biased;
            end = &mut self.end => {
                self.ended = true;
                let end = match end {
                    Ok(SubscriptionEnd::Lagged { .. }) => SubscriptionEnd::Lagged { last: self.last },
                    Ok(end) => end,
                    // The forwarder only stops silently when this body is gone.
                    Err(_) => SubscriptionEnd::Closed,
                };
                Some(Err(Status::from(end)))
            }
            Some(alarm) = self.alarms.recv() => {
                self.last = Some(alarm.id);
                self.delivered.increment(1);
                Some(Ok(response(&alarm)))
            }
        }
    }
}

/// Moves matching alarms to the body until the stream ends, then says why.
async fn forward(
    mut subscription: Subscription,
    filter: AlarmFilter,
    mut shutdown: watch::Receiver<bool>,
    alarms: mpsc::Sender<Arc<Alarm>>,
    end: oneshot::Sender<SubscriptionEnd>,
) {
    // Counts the subscriber until it is cut, even if its body lingers unread.
    let _gauge = metrics::Subscriber::open();
    let why = loop {
        let next = tokio::select! {
            () = shutdown_requested(&mut shutdown) => Err(SubscriptionEnd::ShuttingDown),
            () = alarms.closed() => return,
            next = subscription.next() => next,
        };
        let alarm = match next {
            Ok(alarm) if !filter.matches(&alarm) => continue,
            Ok(alarm) => alarm,
            Err(end) => break end,
        };
        tokio::select! {
            () = shutdown_requested(&mut shutdown) => break SubscriptionEnd::ShuttingDown,
            () = lagging(&subscription) => break SubscriptionEnd::Lagged { last: None },
            sent = alarms.send(alarm) => if sent.is_err() { return },
        }
    };
    metrics::cut(&why);
    let _ = end.send(why);
}

/// Resolves once the subscription overran its buffer while the body was full.
async fn lagging(subscription: &Subscription) {
    while !subscription.overrun() {
        tokio::time::sleep(LAG_CHECK).await;
    }
}

fn response(alarm: &Arc<Alarm>) -> proto::SubscribeAlarmsResponse {
    proto::SubscribeAlarmsResponse {
        alarm: Some(to_proto(alarm)),
    }
}
