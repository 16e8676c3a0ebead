//! Shared subscriptions on Redis: a subscription is a consumer group on the
//! alarm stream, each stream a Redis consumer of its own. An alarm's deadline
//! is kept in Redis as the idle time of its pending entry: on delivery the
//! entry's idle time is set to `MAX_ACK_DEADLINE - deadline`, so every replica
//! reclaims (XAUTOCLAIM) exactly the entries idle for `MAX_ACK_DEADLINE`:
//! past their own stream's deadline, or nacked (idle set past it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::redis::Connection;
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingCountReply, StreamReadReply,
};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use tokio::sync::Mutex;

use super::{
    ConsumerSettings, Delivery, MAX_ACK_DEADLINE, SharedError, SubscriptionInfo, SubscriptionName,
};
use crate::alarms::AlarmId;
use crate::alarms::metrics::shared as metrics;
use crate::alarms::redis_bus::decode;
use crate::redis::Redis;

/// How long one XREADGROUP waits for new alarms: also how soon a waiting
/// stream sees a redelivery.
const READ_BLOCK: Duration = Duration::from_millis(250);
/// A stream says it is connected this often; one silent for `PRESENCE_TTL` is gone.
const PRESENCE_EVERY: Duration = Duration::from_secs(1);
const PRESENCE_TTL: Duration = Duration::from_secs(5);
/// A Redis consumer with nothing pending, silent this long, is removed.
const STALE_CONSUMER: Duration = Duration::from_secs(60);

pub struct RedisGroups {
    redis: Redis,
    conn: Connection,
    stream_key: String,
    /// ZSET of `<subscription>/<consumer>` scored by when it last said it was connected.
    presence_key: String,
    max_attempts: u32,
}

fn unavailable(error: RedisError) -> SharedError {
    SharedError::Unavailable(error.to_string())
}

fn no_group(error: &RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl RedisGroups {
    pub fn new(redis: &Redis, stream_key: String, presence_key: String, max_attempts: u32) -> Self {
        Self {
            redis: redis.clone(),
            conn: redis.shared(),
            stream_key,
            presence_key,
            max_attempts,
        }
    }

    pub async fn join(
        self: &Arc<Self>,
        settings: ConsumerSettings,
    ) -> Result<RedisConsumer, SharedError> {
        let group = settings.subscription.as_str().to_owned();
        let created: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream_key)
            .arg(&group)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match created {
            Ok(()) => tracing::info!(subscription = %group, "shared subscription created"),
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(unavailable(e)),
        }
        let stable = settings
            .consumer
            .as_ref()
            .map_or("consumer", SubscriptionName::as_str);
        let consumer = RedisConsumer {
            groups: self.clone(),
            group,
            name: format!("{stable}-{}", uuid::Uuid::new_v4().simple()),
            deadline_idle: millis(MAX_ACK_DEADLINE.saturating_sub(settings.ack_deadline)),
            reader: Mutex::new(None),
            last_presence: Mutex::new(None),
        };
        consumer.say_present().await?;
        Ok(consumer)
    }

    pub async fn list(&self) -> Result<Vec<SubscriptionInfo>, SharedError> {
        let mut conn = self.conn.clone();
        let groups: Result<StreamInfoGroupsReply, RedisError> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.stream_key)
            .query_async(&mut conn)
            .await;
        let groups = match groups {
            Ok(reply) => reply.groups,
            // No stream yet: no subscriptions.
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::ResponseError) => vec![],
            Err(e) => return Err(unavailable(e)),
        };
        let connected = self.connected(&mut conn).await?;
        let mut list: Vec<SubscriptionInfo> = groups
            .into_iter()
            .map(|g| SubscriptionInfo {
                consumers: connected.get(&g.name).copied().unwrap_or(0),
                pending: g.pending as u64,
                backlog: g.lag.unwrap_or(0) as u64,
                name: g.name,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// Streams connected now, by subscription.
    async fn connected(&self, conn: &mut Connection) -> Result<HashMap<String, u32>, SharedError> {
        let now = crate::millis::now();
        let since = now - i64::try_from(millis(PRESENCE_TTL)).unwrap_or(i64::MAX);
        let members: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&self.presence_key)
            .arg(since)
            .arg("+inf")
            .query_async(conn)
            .await
            .map_err(unavailable)?;
        let mut counts = HashMap::new();
        for member in members {
            if let Some((subscription, _)) = member.split_once('/') {
                *counts.entry(subscription.to_owned()).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    pub async fn delete(&self, name: &SubscriptionName) -> Result<(), SharedError> {
        let destroyed: Result<u32, RedisError> = redis::cmd("XGROUP")
            .arg("DESTROY")
            .arg(&self.stream_key)
            .arg(name.as_str())
            .query_async(&mut self.conn.clone())
            .await;
        match destroyed {
            Ok(1) => {
                tracing::info!(subscription = %name, "shared subscription deleted");
                Ok(())
            }
            Ok(_) => Err(SharedError::NotFound(name.to_string())),
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::ResponseError) => {
                Err(SharedError::NotFound(name.to_string()))
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// One stream's Redis consumer in a subscription's group.
pub struct RedisConsumer {
    groups: Arc<RedisGroups>,
    group: String,
    /// Unique per stream.
    name: String,
    /// The idle time a just-delivered entry gets, so it is reclaimed at its deadline.
    deadline_idle: u64,
    /// Its own connection for blocking reads, made on first use.
    reader: Mutex<Option<Connection>>,
    last_presence: Mutex<Option<Instant>>,
}

impl RedisConsumer {
    fn key(&self) -> &str {
        &self.groups.stream_key
    }

    fn conn(&self) -> Connection {
        self.groups.conn.clone()
    }

    fn deleted(&self, error: RedisError) -> SharedError {
        if no_group(&error) {
            SharedError::Deleted(self.group.clone())
        } else {
            unavailable(error)
        }
    }

    fn presence_member(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }

    pub async fn say_present(&self) -> Result<(), SharedError> {
        let mut last = self.last_presence.lock().await;
        if last.is_some_and(|at| at.elapsed() < PRESENCE_EVERY) {
            return Ok(());
        }
        let now = crate::millis::now();
        let forgotten = now - i64::try_from(millis(PRESENCE_TTL * 12)).unwrap_or(i64::MAX);
        redis::pipe()
            .cmd("ZADD")
            .arg(&self.groups.presence_key)
            .arg(now)
            .arg(self.presence_member())
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.groups.presence_key)
            .arg("-inf")
            .arg(forgotten)
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(unavailable)?;
        *last = Some(Instant::now());
        Ok(())
    }

    pub async fn next_batch(&self, room: usize) -> Result<Vec<Delivery>, SharedError> {
        loop {
            self.say_present().await?;
            let again = self.reclaim(room).await?;
            if !again.is_empty() {
                return Ok(again);
            }
            let fresh = self.read_new(room).await?;
            if !fresh.is_empty() {
                return Ok(fresh);
            }
        }
    }

    /// Alarms past their deadline or nacked, taken over by this consumer.
    async fn reclaim(&self, room: usize) -> Result<Vec<Delivery>, SharedError> {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(self.key())
            .arg(&self.group)
            .arg(&self.name)
            .arg(millis(MAX_ACK_DEADLINE))
            .arg("0-0")
            .arg("COUNT")
            .arg(room)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.deleted(e))?;
        for id in &reply.deleted_ids {
            tracing::warn!(subscription = %self.group, alarm_id = %id, "an unacked alarm was trimmed from the alarm log (ALARM_RETENTION) before it was acked");
            metrics::dead_lettered(&self.group);
        }
        if reply.claimed.is_empty() {
            return Ok(vec![]);
        }
        let attempts = self.attempts(&reply.claimed).await?;
        let mut give = Vec::new();
        let mut dead = Vec::new();
        for entry in &reply.claimed {
            let attempt = attempts.get(&entry.id).copied().unwrap_or(2);
            if attempt > self.groups.max_attempts {
                tracing::warn!(subscription = %self.group, alarm_id = %entry.id, attempts = attempt - 1, "alarm not acked after ALARM_MAX_DELIVERY_ATTEMPTS deliveries: it leaves the subscription (still in the alarm log)");
                metrics::dead_lettered(&self.group);
                dead.push(entry.id.clone());
            } else {
                give.push((entry, attempt));
            }
        }
        self.xack(&dead).await?;
        self.deliver(give).await
    }

    /// Times each entry was delivered (this claim included), from XPENDING.
    async fn attempts(&self, claimed: &[StreamId]) -> Result<HashMap<String, u32>, SharedError> {
        let (Some(first), Some(last)) = (claimed.first(), claimed.last()) else {
            return Ok(HashMap::new());
        };
        let pending: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(self.key())
            .arg(&self.group)
            .arg(&first.id)
            .arg(&last.id)
            .arg(claimed.len().max(1) * 4 + 100)
            .arg(&self.name)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| self.deleted(e))?;
        Ok(pending
            .ids
            .into_iter()
            .map(|p| (p.id, u32::try_from(p.times_delivered).unwrap_or(u32::MAX)))
            .collect())
    }

    /// Alarms no consumer of the group has had yet.
    async fn read_new(&self, room: usize) -> Result<Vec<Delivery>, SharedError> {
        let mut reader = self.reader.lock().await;
        let conn = match reader.as_mut() {
            Some(conn) => conn,
            None => reader.insert(
                self.groups
                    .redis
                    .blocking_reader(READ_BLOCK)
                    .await
                    .map_err(unavailable)?,
            ),
        };
        let reply: Result<Option<StreamReadReply>, RedisError> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(room)
            .arg("BLOCK")
            .arg(millis(READ_BLOCK))
            .arg("STREAMS")
            .arg(self.key())
            .arg(">")
            .query_async(conn)
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                // The next read makes a new connection.
                *reader = None;
                return Err(self.deleted(e));
            }
        };
        drop(reader);
        let entries: Vec<StreamId> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect();
        self.deliver(entries.iter().map(|e| (e, 1)).collect()).await
    }

    /// Starts the deadline of entries now this consumer's; acks unreadable ones.
    async fn deliver(&self, entries: Vec<(&StreamId, u32)>) -> Result<Vec<Delivery>, SharedError> {
        if entries.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<&str> = entries.iter().map(|(e, _)| e.id.as_str()).collect();
        self.set_idle(&ids, self.deadline_idle).await?;
        let mut batch = Vec::new();
        let mut unreadable = Vec::new();
        for (entry, attempt) in entries {
            match decode(entry) {
                Some(alarm) => batch.push(Delivery {
                    alarm: Arc::new(alarm),
                    attempt,
                }),
                None => unreadable.push(entry.id.clone()),
            }
        }
        self.xack(&unreadable).await?;
        Ok(batch)
    }

    async fn set_idle<S: redis::ToRedisArgs>(
        &self,
        ids: &[S],
        idle: u64,
    ) -> Result<(), SharedError> {
        if ids.is_empty() {
            return Ok(());
        }
        // JUSTID: changing the owner or idle time is not a delivery.
        redis::cmd("XCLAIM")
            .arg(self.key())
            .arg(&self.group)
            .arg(&self.name)
            .arg(0)
            .arg(ids)
            .arg("IDLE")
            .arg(idle)
            .arg("JUSTID")
            .query_async::<Vec<String>>(&mut self.conn())
            .await
            .map_err(|e| self.deleted(e))?;
        Ok(())
    }

    async fn xack<S: redis::ToRedisArgs>(&self, ids: &[S]) -> Result<(), SharedError> {
        if ids.is_empty() {
            return Ok(());
        }
        // With REDIS_MIN_REPLICAS_ACK, an ack too few replicas hold ends the
        // stream with UNAVAILABLE: a failover may undo it, and then the
        // alarm comes again (at least once, never lost).
        let mut xack = redis::cmd("XACK");
        xack.arg(self.key()).arg(&self.group).arg(ids);
        crate::redis::write::<u64>(
            &mut self.conn(),
            xack,
            self.groups.redis.replica_ack(),
            "consumer_ack",
        )
        .await
        .map_err(|error| SharedError::Unavailable(error.to_string()))?;
        Ok(())
    }

    pub async fn ack(&self, ids: &[AlarmId]) -> Result<(), SharedError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.xack(&ids).await
    }

    /// Makes the entries reclaimable at once by any consumer.
    pub async fn nack(&self, ids: &[AlarmId]) -> Result<(), SharedError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.set_idle(&ids, millis(MAX_ACK_DEADLINE) + 1000).await
    }

    /// Hands `unacked` to the others now, says it is gone, and removes its
    /// Redis consumer (and any other long-silent one) once nothing is pending there.
    pub async fn leave(&self, unacked: &[AlarmId]) {
        if let Err(error) = self.nack(unacked).await {
            tracing::warn!(subscription = %self.group, %error, "could not hand unacked alarms over; they go out again after their deadline");
        }
        // A read that was under way when the stream ended still completes in
        // Redis (dropping the future does not cancel the command), giving this
        // consumer alarms no stream will see: once it is surely over, hand
        // back everything still pending on this consumer.
        tokio::time::sleep(READ_BLOCK + Duration::from_millis(250)).await;
        if let Err(error) = self.hand_back_all().await {
            tracing::warn!(subscription = %self.group, %error, "could not hand unacked alarms over; they go out again after their deadline");
        }
        let _ = redis::cmd("ZREM")
            .arg(&self.groups.presence_key)
            .arg(self.presence_member())
            .query_async::<u64>(&mut self.conn())
            .await;
        if let Err(error) = self.remove_stale_consumers().await {
            tracing::debug!(subscription = %self.group, %error, "could not remove stale Redis consumers");
        }
    }

    /// Makes every entry pending on this consumer reclaimable now.
    async fn hand_back_all(&self) -> Result<(), SharedError> {
        const PAGE: usize = 1000;
        let mut from = "-".to_owned();
        loop {
            let pending: StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(self.key())
                .arg(&self.group)
                .arg(&from)
                .arg("+")
                .arg(PAGE)
                .arg(&self.name)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.deleted(e))?;
            let ids: Vec<&str> = pending.ids.iter().map(|p| p.id.as_str()).collect();
            self.set_idle(&ids, millis(MAX_ACK_DEADLINE) + 1000).await?;
            match pending.ids.last() {
                Some(last) if pending.ids.len() == PAGE => from = format!("({}", last.id),
                _ => return Ok(()),
            }
        }
    }

    async fn remove_stale_consumers(&self) -> Result<(), RedisError> {
        let mut conn = self.conn();
        let consumers: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(self.key())
            .arg(&self.group)
            .query_async(&mut conn)
            .await?;
        for consumer in consumers {
            let number = |field: &str| match consumer.get(field) {
                Some(redis::Value::Int(n)) => *n,
                _ => -1,
            };
            let Some(redis::Value::BulkString(name)) = consumer.get("name") else {
                continue;
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let stale = name == self.name || number("idle") > millis(STALE_CONSUMER) as i64;
            if number("pending") == 0 && stale {
                redis::cmd("XGROUP")
                    .arg("DELCONSUMER")
                    .arg(self.key())
                    .arg(&self.group)
                    .arg(&name)
                    .query_async::<u64>(&mut conn)
                    .await?;
            }
        }
        Ok(())
    }
}
