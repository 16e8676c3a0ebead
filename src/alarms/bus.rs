//! The alarm bus: in process (one replica) or a Redis Stream shared by all.

use std::sync::Arc;

use super::memory_bus::MemoryBus;
use super::redis_bus::RedisBus;
use super::subscription::Subscription;
use super::{AlarmId, AlarmReport, BusConfig, BusError, Published};

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
