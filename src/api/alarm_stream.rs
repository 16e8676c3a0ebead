//! The body of one SubscribeAlarms call: a bus subscription, filtered, that
//! ends with a status the client can act on (resume, or go to another replica).

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::watch;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::status::GATEWAY_DOMAIN;
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
                () = shutdown_requested(&mut state.shutdown) => Err(SubscriptionEnd::Closed),
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
                    Err(end_status(end))
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

fn end_status(end: SubscriptionEnd) -> Status {
    match end {
        SubscriptionEnd::Lagged { last } => {
            let last = last.map(|id| id.to_string()).unwrap_or_default();
            let details = ErrorDetails::with_error_info(
                "SUBSCRIBER_TOO_SLOW",
                GATEWAY_DOMAIN,
                HashMap::from([("last_alarm_id".to_owned(), last.clone())]),
            );
            Status::with_error_details(
                Code::ResourceExhausted,
                format!(
                    "this subscriber fell behind the relay's buffer; subscribe again with resume_after set to the last alarm id you received ({last:?} was the last sent)"
                ),
                details,
            )
        }
        SubscriptionEnd::Closed => Status::unavailable(
            "the gateway is shutting down; subscribe again (another replica) with resume_after set to the last alarm id you received",
        ),
    }
}
