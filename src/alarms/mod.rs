//! The alarm relay: MP's usage-alarm callbacks in (HTTP), gRPC streams out.
//! A callback is acknowledged only once it is in the bus; every subscriber
//! then gets it in log order, live or by replay from an id.

mod bus;
pub mod callback;
pub mod callback_body;
mod id;
mod memory_bus;
pub(crate) mod metrics;
mod redis_bus;
mod relayed;
pub mod shared;
mod subscription;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use bus::AlarmBus;
pub use id::{AlarmId, BadAlarmId};
pub use redis_bus::AlarmKeys;
pub use subscription::{Subscription, SubscriptionEnd};

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

/// How much the bus keeps and for how long it remembers callbacks.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Alarms kept for replay (approximate with Redis: MAXLEN ~).
    pub retention: usize,
    /// A repeated callback within this window is delivered once.
    pub dedup_window: Duration,
    /// Alarms a subscriber may fall behind before it is told to resume.
    pub subscriber_buffer: usize,
    /// Deliveries of one alarm to a shared subscription before it is dead-lettered.
    pub max_delivery_attempts: u32,
}

/// What publishing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Appended to the log with this id.
    New(AlarmId),
    /// The same callback was already published within the window.
    Duplicate,
}

/// Refuses a resume point later than the newest alarm in the log; with an
/// empty log, one later than now (an empty log may have lost older alarms, so
/// an id from the past is "no longer retained", not a mistake).
fn check_resume_point(
    after: AlarmId,
    newest: Option<AlarmId>,
    now_millis: u64,
) -> Result<(), BusError> {
    let beyond = match newest {
        Some(newest) => after > newest,
        None => after.millis > now_millis,
    };
    if beyond {
        Err(BusError::BeyondNewest(after))
    } else {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Some alarms after `resume_after` are no longer retained (or the id was never in the log).
    #[error(
        "alarms after {0} are no longer retained; subscribe without resume_after to start from now"
    )]
    OutOfRange(AlarmId),
    /// `resume_after` is later than any alarm the log has given out: not an id a subscriber received.
    #[error(
        "resume_after {0} is later than the newest alarm; set it to the id of an alarm you received"
    )]
    BeyondNewest(AlarmId),
    /// The shared log cannot be reached.
    #[error("the alarm log is unavailable: {0}")]
    Unavailable(String),
}
