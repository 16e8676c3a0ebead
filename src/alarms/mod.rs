//! The alarm relay: MP's usage-alarm callbacks in (HTTP), gRPC streams out.
//! A callback is acknowledged only once it is in the bus; every subscriber
//! then gets it in log order, live or by replay from an id.

mod bus;
pub mod callback;
pub mod callback_body;
mod id;
mod memory_bus;
pub mod metrics;
mod redis_bus;

use serde::{Deserialize, Serialize};

pub use bus::{AlarmBus, BusConfig, BusError, Published, Subscription, SubscriptionEnd};
pub use id::{AlarmId, BadAlarmId};

/// One usage alarm as MP reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmReport {
    pub eid: String,
    pub package_code: String,
    pub order_code: String,
    /// Parsed from `used_rate` ("84%" is 84).
    pub used_percent: u32,
    /// MP's raw `packageUsedRate`.
    pub used_rate: String,
    /// MP's `requestId`, if it sent one.
    pub request_id: Option<String>,
    /// When the gateway accepted the callback (Unix milliseconds).
    pub received_at_millis: i64,
}

impl AlarmReport {
    /// MP may send one callback twice; these fields tell a repeat from a new alarm.
    pub fn dedup_key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.order_code,
            self.package_code,
            self.used_rate,
            self.request_id.as_deref().unwrap_or("")
        )
    }
}

/// An alarm with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub id: AlarmId,
    pub report: AlarmReport,
}
