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

/// Shared subscriptions (ConsumeAlarms), labelled `subscription`.
pub mod shared {
    use metrics::{counter, describe_counter, describe_gauge, gauge};

    pub const DELIVERED: &str = "mp_gateway_subscription_delivered_total";
    pub const ACKED: &str = "mp_gateway_subscription_acked_total";
    pub const REDELIVERED: &str = "mp_gateway_subscription_redelivered_total";
    pub const DEAD_LETTERED: &str = "mp_gateway_subscription_dead_lettered_total";
    pub const PENDING: &str = "mp_gateway_subscription_pending";

    pub fn describe() {
        describe_counter!(
            DELIVERED,
            "Alarms this replica delivered to ConsumeAlarms streams (redeliveries included)"
        );
        describe_counter!(
            ACKED,
            "Alarms acked on this replica's ConsumeAlarms streams"
        );
        describe_counter!(
            REDELIVERED,
            "Deliveries after the first of one alarm (a deadline passed or a nack)"
        );
        describe_counter!(
            DEAD_LETTERED,
            "Alarms that left a subscription after ALARM_MAX_DELIVERY_ATTEMPTS deliveries without an ack"
        );
        describe_gauge!(
            PENDING,
            "Alarms delivered on this replica's ConsumeAlarms streams and not yet acked, nacked or past their deadline"
        );
    }

    pub fn delivered(subscription: &str, attempt: u32) {
        let label = subscription.to_owned();
        counter!(DELIVERED, "subscription" => label.clone()).increment(1);
        if attempt > 1 {
            counter!(REDELIVERED, "subscription" => label).increment(1);
        }
    }

    pub fn acked(subscription: &str, n: usize) {
        counter!(ACKED, "subscription" => subscription.to_owned()).increment(n as u64);
    }

    pub fn dead_lettered(subscription: &str) {
        counter!(DEAD_LETTERED, "subscription" => subscription.to_owned()).increment(1);
    }

    /// Changes this replica's pending count of `subscription` by `delta`.
    pub fn pending(subscription: &str, delta: f64) {
        gauge!(PENDING, "subscription" => subscription.to_owned()).increment(delta);
    }
}
