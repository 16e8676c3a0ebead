//! Shared, acknowledged subscriptions (ConsumeAlarms): each alarm accepted
//! after a subscription was created goes to one of its consumers at a time
//! until one acks it. With Redis a subscription is a consumer group on the
//! alarm stream, shared by every replica; without, it lives in process.

mod memory_group;
mod redis_group;

use std::sync::Arc;
use std::time::Duration;

pub(crate) use memory_group::MemoryGroups;
pub(crate) use redis_group::RedisGroups;

use super::{Alarm, AlarmId};
use crate::domain::FieldViolation;

/// The longest ack deadline a stream may ask for.
pub const MAX_ACK_DEADLINE: Duration = Duration::from_secs(600);

/// A subscription's name: `[a-z0-9][a-z0-9-]{0,62}` (also a consumer's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriptionName(String);

impl SubscriptionName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldViolation> {
        let bytes = raw.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if raw.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if !first_ok || !rest_ok || bytes.len() > 63 {
            return Err(FieldViolation::new(
                field,
                format!(
                    "{raw:?} is not a name: 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit"
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SubscriptionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How one stream consumes a subscription.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub subscription: SubscriptionName,
    /// The stable name the client gave, if any.
    pub consumer: Option<SubscriptionName>,
    pub ack_deadline: Duration,
    pub max_outstanding: usize,
}

/// One alarm handed to one stream.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub alarm: Arc<Alarm>,
    /// 1 on the first delivery to the subscription.
    pub attempt: u32,
}

/// One subscription as ListSubscriptions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub name: String,
    pub consumers: u32,
    pub pending: u64,
    pub backlog: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The subscription was deleted while this stream consumed it.
    #[error("subscription {0} was deleted")]
    Deleted(String),
    /// DeleteSubscription of a subscription that does not exist.
    #[error("there is no subscription {0}")]
    NotFound(String),
    /// Ids acked or nacked that were not delivered on this stream: (field, id).
    #[error("{}", describe_unknown(.0))]
    UnknownAckIds(Vec<(String, String)>),
    /// Redis cannot be reached.
    #[error("the alarm log is unavailable: {0}")]
    Unavailable(String),
}

fn describe_unknown(ids: &[(String, String)]) -> String {
    let list = ids
        .iter()
        .map(|(field, id)| format!("{field} {id:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "not delivered on this stream, or already acked or nacked on it: {list}; the stream ended and nothing in that message was applied"
    )
}

/// The shared subscriptions of the bus, whichever bus it is.
#[derive(Clone)]
pub enum SharedSubscriptions {
    Memory(Arc<MemoryGroups>),
    Redis(Arc<RedisGroups>),
}

impl SharedSubscriptions {
    /// Joins (creating it if new) the subscription as one more consumer.
    pub async fn join(&self, settings: ConsumerSettings) -> Result<Consumer, SharedError> {
        match self {
            Self::Memory(groups) => Ok(Consumer::Memory(groups.join(settings))),
            Self::Redis(groups) => Ok(Consumer::Redis(groups.join(settings).await?)),
        }
    }

    pub async fn list(&self) -> Result<Vec<SubscriptionInfo>, SharedError> {
        match self {
            Self::Memory(groups) => Ok(groups.list()),
            Self::Redis(groups) => groups.list().await,
        }
    }

    pub async fn delete(&self, name: &SubscriptionName) -> Result<(), SharedError> {
        match self {
            Self::Memory(groups) => groups.delete(name),
            Self::Redis(groups) => groups.delete(name).await,
        }
    }
}

/// One stream's place in a subscription.
pub enum Consumer {
    Memory(memory_group::MemoryConsumer),
    Redis(redis_group::RedisConsumer),
}

impl Consumer {
    /// Up to `room` alarms for this stream (redeliveries first), waiting for at least one.
    pub async fn next_batch(&self, room: usize) -> Result<Vec<Delivery>, SharedError> {
        match self {
            Self::Memory(c) => c.next_batch(room).await,
            Self::Redis(c) => c.next_batch(room).await,
        }
    }

    /// The alarms are handled: never deliver them again.
    pub async fn ack(&self, ids: &[AlarmId]) -> Result<(), SharedError> {
        match self {
            Self::Memory(c) => {
                c.ack(ids);
                Ok(())
            }
            Self::Redis(c) => c.ack(ids).await,
        }
    }

    /// Deliver these again now, to any consumer.
    pub async fn nack(&self, ids: &[AlarmId]) -> Result<(), SharedError> {
        match self {
            Self::Memory(c) => {
                c.nack(ids);
                Ok(())
            }
            Self::Redis(c) => c.nack(ids).await,
        }
    }

    /// Says this consumer is still connected while it fetches nothing (ListSubscriptions).
    pub async fn keep_alive(&self) {
        if let Self::Redis(c) = self
            && let Err(error) = c.say_present().await
        {
            tracing::debug!(%error, "could not refresh a consumer's presence");
        }
    }

    /// The stream ended: `unacked` go to other consumers now.
    pub async fn leave(&self, unacked: &[AlarmId]) {
        match self {
            Self::Memory(c) => c.nack(unacked),
            Self::Redis(c) => c.leave(unacked).await,
        }
    }
}
