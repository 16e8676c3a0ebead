//! The alarm bus: in process (one replica) or a Redis Stream shared by all.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::memory_bus::MemoryBus;
use super::redis_bus::RedisBus;
use super::{Alarm, AlarmId, AlarmReport};

/// How much the bus keeps and for how long it remembers callbacks.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Alarms kept for replay (approximate with Redis: MAXLEN ~).
    pub retention: usize,
    /// A repeated callback within this window is delivered once.
    pub dedup_window: Duration,
    /// Alarms a subscriber may fall behind before it is told to resume.
    pub subscriber_buffer: usize,
}

/// What publishing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Appended to the log with this id.
    New(AlarmId),
    /// The same callback was already published within the window.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Some alarms after `resume_after` are no longer retained (or the id was never in the log).
    #[error(
        "alarms after {0} are no longer retained; subscribe without resume_after to start from now"
    )]
    OutOfRange(AlarmId),
    /// The shared log cannot be reached.
    #[error("the alarm log is unavailable: {0}")]
    Unavailable(String),
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionEnd {
    /// The subscriber fell more than the buffer behind; `last` is the last alarm it was given.
    #[error("subscriber fell behind the relay's buffer")]
    Lagged { last: Option<AlarmId> },
    /// The bus is shutting down.
    #[error("alarm bus closed")]
    Closed,
}

/// Where alarms go after a callback and come from for subscribers.
#[derive(Clone)]
pub enum AlarmBus {
    Memory(Arc<MemoryBus>),
    Redis(Arc<RedisBus>),
}

impl AlarmBus {
    pub fn in_process(config: BusConfig) -> Self {
        Self::Memory(Arc::new(MemoryBus::new(config)))
    }

    /// A bus on a Redis Stream. Connects lazily: Redis being down at start stops nothing.
    pub fn redis(
        conn: redis::aio::ConnectionManager,
        client: redis::Client,
        key_prefix: &str,
        config: BusConfig,
    ) -> Self {
        Self::Redis(Arc::new(RedisBus::new(conn, client, key_prefix, config)))
    }

    /// Appends an alarm unless it repeats one seen within the dedup window.
    pub async fn publish(&self, report: AlarmReport) -> Result<Published, BusError> {
        match self {
            Self::Memory(bus) => Ok(bus.publish(report)),
            Self::Redis(bus) => bus.publish(report).await,
        }
    }

    /// Every alarm after `resume_after` still retained, then the live ones.
    /// Without `resume_after`: only alarms published from now on.
    pub async fn subscribe(&self, resume_after: Option<AlarmId>) -> Result<Subscription, BusError> {
        match self {
            Self::Memory(bus) => bus.subscribe(resume_after),
            Self::Redis(bus) => bus.subscribe(resume_after).await,
        }
    }
}

/// One subscriber's view of the bus: replayed alarms, then live ones, in id order.
pub struct Subscription {
    replay: VecDeque<Arc<Alarm>>,
    live: broadcast::Receiver<Arc<Alarm>>,
    /// The last alarm handed out; live alarms at or before it were already replayed.
    last: Option<AlarmId>,
}

impl Subscription {
    pub(super) fn new(
        replay: VecDeque<Arc<Alarm>>,
        live: broadcast::Receiver<Arc<Alarm>>,
        resume_after: Option<AlarmId>,
    ) -> Self {
        Self {
            replay,
            live,
            last: resume_after,
        }
    }

    /// The next alarm, waiting for one if needed.
    pub async fn next(&mut self) -> Result<Arc<Alarm>, SubscriptionEnd> {
        if let Some(alarm) = self.replay.pop_front() {
            self.last = Some(alarm.id);
            return Ok(alarm);
        }
        loop {
            match self.live.recv().await {
                Ok(alarm) if self.last.is_some_and(|last| alarm.id <= last) => continue,
                Ok(alarm) => {
                    self.last = Some(alarm.id);
                    return Ok(alarm);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Err(SubscriptionEnd::Lagged { last: self.last });
                }
                Err(broadcast::error::RecvError::Closed) => return Err(SubscriptionEnd::Closed),
            }
        }
    }
}
