//! The alarm bus: in process (one replica) or a Redis Stream shared by all.

use std::sync::Arc;

use super::memory_bus::MemoryBus;
use super::redis_bus::RedisBus;
use super::shared::SharedSubscriptions;
use super::subscription::Subscription;
use super::{AlarmId, AlarmReport, BusConfig, BusError, Published};
use crate::redis::Redis;

/// Where alarms go after a callback and come from for subscribers.
#[derive(Clone)]
pub enum AlarmBus {
    Memory(Arc<MemoryBus>),
    Redis(Arc<RedisBus>),
}

impl AlarmBus {
    /// A bus on a Redis Stream shared by every replica when there is a Redis
    /// (connected lazily: Redis being down at start stops nothing), else in process.
    pub fn new(config: BusConfig, redis: Option<&Redis>) -> Self {
        match redis {
            Some(redis) => Self::Redis(Arc::new(RedisBus::new(redis, config))),
            None => Self::Memory(Arc::new(MemoryBus::new(config))),
        }
    }

    /// Appends an alarm unless it repeats one seen within the dedup window.
    pub async fn publish(&self, report: AlarmReport) -> Result<Published, BusError> {
        match self {
            Self::Memory(bus) => Ok(bus.publish(report)),
            Self::Redis(bus) => bus.publish(report).await,
        }
    }

    /// The shared, acknowledged subscriptions (ConsumeAlarms) on this bus.
    pub fn shared(&self) -> SharedSubscriptions {
        match self {
            Self::Memory(bus) => SharedSubscriptions::Memory(bus.shared()),
            Self::Redis(bus) => SharedSubscriptions::Redis(bus.shared()),
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
