//! The body of one SubscribeAlarms call: a bus subscription, filtered, that
//! ends with a status the client can act on (resume, or go to another replica).

use std::collections::HashSet;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::watch;
use tonic::Status;

use crate::alarms::{Alarm, Subscription, SubscriptionEnd, metrics};
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

struct StreamState {
    subscription: Subscription,
    /// Counts this stream on the subscriber gauge while it lives.
    _gauge: metrics::Subscriber,
    delivered: ::metrics::Counter,
    filter: AlarmFilter,
    shutdown: watch::Receiver<bool>,
    ended: bool,
}

/// Resolves once shutdown is requested (never, if nobody can request it).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

pub fn alarm_stream(
    subscription: Subscription,
    filter: AlarmFilter,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<proto::SubscribeAlarmsResponse, Status>> + Send + 'static {
    let state = StreamState {
        subscription,
        _gauge: metrics::Subscriber::open(),
        delivered: metrics::delivered_counter(),
        filter,
        shutdown,
        ended: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.ended {
            return None;
        }
        loop {
            let next = tokio::select! {
                () = shutdown_requested(&mut state.shutdown) => Err(SubscriptionEnd::ShuttingDown),
                next = state.subscription.next() => next,
            };
            let item = match next {
                Ok(alarm) if !state.filter.matches(&alarm) => continue,
                Ok(alarm) => {
                    state.delivered.increment(1);
                    Ok(response(&alarm))
                }
                Err(end) => {
                    state.ended = true;
                    Err(Status::from(end))
                }
            };
            return Some((item, state));
        }
    })
}

fn response(alarm: &Arc<Alarm>) -> proto::SubscribeAlarmsResponse {
    proto::SubscribeAlarmsResponse {
        alarm: Some(to_proto(alarm)),
    }
}
