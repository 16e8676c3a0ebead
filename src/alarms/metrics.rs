//! The alarm relay's counters: callbacks in, alarms out to subscribers.

use metrics::{counter, describe_counter, describe_gauge, gauge};

pub const RECEIVED: &str = "mp_gateway_alarms_received_total";
pub const DUPLICATES: &str = "mp_gateway_alarms_duplicates_total";
pub const REJECTED: &str = "mp_gateway_alarms_rejected_total";
pub const DELIVERED: &str = "mp_gateway_alarms_delivered_total";
pub const SUBSCRIBERS: &str = "mp_gateway_alarm_subscribers";
pub const STREAMS_ENDED: &str = "mp_gateway_alarm_streams_ended_total";

/// Registers the descriptions; call once the recorder is installed.
pub fn describe() {
    describe_counter!(
        RECEIVED,
        "Alarm callbacks from MP accepted into the bus as new alarms"
    );
    describe_counter!(
        DUPLICATES,
        "Alarm callbacks acknowledged as repeats of one already in the bus (not relayed again)"
    );
    describe_counter!(
        REJECTED,
        "Alarm callbacks refused (reason=unauthorized|malformed|unavailable)"
    );
    describe_counter!(
        DELIVERED,
        "Alarms sent to SubscribeAlarms streams (one per subscriber that gets it)"
    );
    describe_gauge!(SUBSCRIBERS, "Open SubscribeAlarms streams on this replica");
    describe_counter!(
        STREAMS_ENDED,
        "SubscribeAlarms streams the relay ended, whether or not the client read the status (reason=too_slow|shutting_down|bus_closed)"
    );
}

pub fn received() {
    counter!(RECEIVED).increment(1);
}

pub fn duplicate() {
    counter!(DUPLICATES).increment(1);
}

/// `reason`: unauthorized, malformed or unavailable.
pub fn rejected(reason: &'static str) {
    counter!(REJECTED, "reason" => reason).increment(1);
}

/// Counts a stream the relay ended, and why.
pub fn cut(why: &super::SubscriptionEnd) {
    let reason = match why {
        super::SubscriptionEnd::Lagged { .. } => "too_slow",
        super::SubscriptionEnd::ShuttingDown => "shutting_down",
        super::SubscriptionEnd::Closed => "bus_closed",
    };
    counter!(STREAMS_ENDED, "reason" => reason).increment(1);
}

/// The delivery counter, looked up once per stream: deliveries are the hot path
/// (one per subscriber per alarm), so no registry lookup per delivery.
pub fn delivered_counter() -> metrics::Counter {
    counter!(DELIVERED)
}

/// Counts an open subscriber stream until dropped.
#[derive(Debug)]
pub struct Subscriber(());

impl Subscriber {
    pub fn open() -> Self {
        gauge!(SUBSCRIBERS).increment(1.0);
        Self(())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        gauge!(SUBSCRIBERS).decrement(1.0);
    }
}
