//! The shared alarm log: a Redis Stream. Publishing is one atomic script
//! (dedup key SET NX, then XADD with approximate MAXLEN trimming); each
//! replica runs one reader on its own connection (a blocking XREAD must not
//! hold up the shared connection) that fans alarms out to local subscribers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::relayed::RecentlyRelayed;
use super::shared::RedisGroups;
use super::subscription::Subscription;
use super::{Alarm, AlarmId, AlarmReport, BusConfig, BusError, Published, check_resume_point};
use crate::config::ReplicaAck;
use crate::redis::{Connection, DurableScript, Redis};

/// How long one XREAD blocks; the reader's connection waits a little longer.
const READ_BLOCK: Duration = Duration::from_secs(2);
/// How long a new subscriber waits for the reader to know where the stream ends.
const READER_START_WAIT: Duration = Duration::from_secs(2);
const REPLAY_PAGE: usize = 1000;

/// SET NX the dedup key; only if it was new, XADD. Returns the new id or nil.
const PUBLISH_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alarm', ARGV[3])
end
return false
";

/// The alarm log's keys. They share one hash tag, so the publish script's
/// two keys live on one cluster node: the alarm log is one shard, which is
/// plenty (see the README's "Redis in production").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmKeys {
    /// The stream.
    pub stream: String,
    /// Followed by an alarm's dedup key: set while a repeat is dropped.
    pub dedup_prefix: String,
    /// Which ConsumeAlarms streams are connected (shared subscriptions).
    pub consumers: String,
}

impl AlarmKeys {
    /// `{<prefix>:alarms}:stream:v2`, `…:seen:v2:` and `…:consumers:v2`.
    pub fn new(key_prefix: &str) -> Self {
        // Keys are versioned: a change of the stored format gets new keys.
        let tag = format!("{{{key_prefix}:alarms}}");
        Self {
            stream: format!("{tag}:stream:v2"),
            dedup_prefix: format!("{tag}:seen:v2:"),
            consumers: format!("{tag}:consumers:v2"),
        }
    }
}

pub struct RedisBus {
    conn: Connection,
    publish: DurableScript,
    replica_ack: Option<ReplicaAck>,
    stream_key: String,
    dedup_prefix: String,
    live: broadcast::Sender<Arc<Alarm>>,
    /// True once the reader has a stream position: from then on every alarm
    /// added reaches `live`.
    reader_positioned: watch::Receiver<bool>,
    config: BusConfig,
    reader: JoinHandle<()>,
    shared: Arc<RedisGroups>,
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn unavailable(error: redis::RedisError) -> BusError {
    BusError::Unavailable(error.to_string())
}

impl RedisBus {
    /// Publishes on the replica's shared connection; the reader has its own.
    pub fn new(redis: &Redis, config: BusConfig) -> Self {
        let keys = AlarmKeys::new(redis.key_prefix());
        let stream_key = keys.stream.clone();
        let shared = Arc::new(RedisGroups::new(
            redis,
            keys.stream.clone(),
            keys.consumers,
            config.max_delivery_attempts,
        ));
        let (live, _) = broadcast::channel(config.subscriber_buffer.max(1));
        let (positioned, reader_positioned) = watch::channel(false);
        let recent = RecentlyRelayed::new(config.dedup_window, config.retention);
        let reader = tokio::spawn(read_forever(
            redis.clone(),
            stream_key.clone(),
            live.clone(),
            positioned,
            recent,
        ));
        Self {
            conn: redis.shared(),
            publish: DurableScript::new(PUBLISH_SCRIPT),
            replica_ack: redis.replica_ack(),
            dedup_prefix: keys.dedup_prefix,
            stream_key,
            shared,
            live,
            reader_positioned,
            config,
            reader,
        }
    }

    /// The shared subscriptions (consumer groups) on this bus's stream.
    pub fn shared(&self) -> Arc<RedisGroups> {
        self.shared.clone()
    }

    pub async fn publish(&self, report: AlarmReport) -> Result<Published, BusError> {
        let payload = serde_json::to_string(&report)
            .map_err(|e| BusError::Unavailable(format!("cannot encode alarm: {e}")))?;
        let id: Option<String> = self
            .publish
            .key(format!("{}{}", self.dedup_prefix, report.dedup_key()))
            .key(&self.stream_key)
            .arg(crate::millis::redis_px(self.config.dedup_window))
            .arg(self.config.retention)
            .arg(payload)
            .invoke(&mut self.conn.clone(), self.replica_ack, "alarm")
            .await
            .map_err(|e| BusError::Unavailable(e.to_string()))?;
        match id {
            None => Ok(Published::Duplicate),
            Some(id) => id
                .parse()
                .map(Published::New)
                .map_err(|e| BusError::Unavailable(format!("Redis returned {e}"))),
        }
    }

    pub async fn subscribe(&self, resume_after: Option<AlarmId>) -> Result<Subscription, BusError> {
        // Until the reader knows where the stream ends, an alarm added now
        // could fall before its starting point and never be relayed.
        self.reader_started().await?;
        // Subscribe to live alarms first: anything added after the replay read
        // arrives live, and the overlap is skipped by id.
        let live = self.live.subscribe();
        let replay = match resume_after {
            None => VecDeque::new(),
            Some(after) => self.replay_after(after).await?,
        };
        Ok(Subscription::new(
            replay,
            live,
            resume_after,
            self.config.subscriber_buffer.max(1),
        ))
    }

    async fn reader_started(&self) -> Result<(), BusError> {
        let mut positioned = self.reader_positioned.clone();
        match tokio::time::timeout(READER_START_WAIT, positioned.wait_for(|p| *p)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(BusError::Unavailable(
                "the alarm stream reader stopped".into(),
            )),
            Err(_) => Err(BusError::Unavailable(
                "the alarm stream reader has not reached Redis yet".into(),
            )),
        }
    }

    async fn replay_after(&self, after: AlarmId) -> Result<VecDeque<Arc<Alarm>>, BusError> {
        let mut conn = self.conn.clone();
        let newest: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.stream_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let newest = newest.ids.first().and_then(|entry| entry.id.parse().ok());
        let now = u64::try_from(crate::millis::now()).unwrap_or(0);
        check_resume_point(after, newest, now)?;
        // The resume id must still be in the stream; if it was trimmed (or the
        // stream was lost with Redis), alarms after it may be gone too.
        let anchor: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&self.stream_key)
            .arg(after.to_string())
            .arg(after.to_string())
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if anchor.ids.is_empty() {
            return Err(BusError::OutOfRange(after));
        }
        let mut replay = VecDeque::new();
        let mut from = after;
        loop {
            let page: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&self.stream_key)
                .arg(format!("({from}"))
                .arg("+")
                .arg("COUNT")
                .arg(REPLAY_PAGE)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let Some(last) = page.ids.last() else {
                return Ok(replay);
            };
            // The next page starts after this one, whether or not its last
            // entry was readable (an unreadable page must not be read again).
            from = last.id.parse().map_err(|e| {
                BusError::Unavailable(format!("the alarm stream holds id {}: {e}", last.id))
            })?;
            replay.extend(page.ids.iter().filter_map(decode).map(Arc::new));
            if page.ids.len() < REPLAY_PAGE {
                return Ok(replay);
            }
        }
    }
}

/// An entry the gateway wrote; `None` (logged) for anything else, which is skipped.
pub(super) fn decode(entry: &StreamId) -> Option<Alarm> {
    let id = entry.id.parse().ok();
    let report = entry
        .get::<String>("alarm")
        .and_then(|json| serde_json::from_str::<AlarmReport>(&json).ok());
    match (id, report) {
        (Some(id), Some(report)) => Some(Alarm { id, report }),
        _ => {
            tracing::warn!(id = %entry.id, "skipping an alarm stream entry the gateway cannot read");
            None
        }
    }
}

/// The replica's one reader: XREAD from the last id seen, fan out, repeat;
/// reconnects with backoff, logging once per outage.
async fn read_forever(
    redis: Redis,
    key: String,
    live: broadcast::Sender<Arc<Alarm>>,
    positioned: watch::Sender<bool>,
    mut recent: RecentlyRelayed,
) {
    let mut position: Option<String> = None;
    let mut outage = false;
    let mut backoff = Duration::from_millis(100);
    loop {
        let reader = Reader {
            key: &key,
            live: &live,
            positioned: &positioned,
        };
        let Err(error) = reader
            .read_until_error(&redis, &mut position, &mut outage, &mut recent)
            .await;
        if !outage {
            tracing::error!(%error, "alarm stream reader lost Redis; retrying");
            outage = true;
            backoff = Duration::from_millis(100);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Where the reader reads and whom it tells.
struct Reader<'a> {
    key: &'a str,
    live: &'a broadcast::Sender<Arc<Alarm>>,
    positioned: &'a watch::Sender<bool>,
}

impl Reader<'_> {
    async fn read_until_error(
        &self,
        redis: &Redis,
        position: &mut Option<String>,
        outage: &mut bool,
        recent: &mut RecentlyRelayed,
    ) -> redis::RedisResult<Infallible> {
        let (key, live, positioned) = (self.key, self.live, self.positioned);
        let mut conn: Connection = redis.blocking_reader(READ_BLOCK).await?;
        if position.is_none() {
            // Start after the newest entry: alarms from before this replica
            // started are for subscribers that resume, which replay them.
            let newest: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await?;
            *position = Some(
                newest
                    .ids
                    .first()
                    .map_or_else(|| "0-0".to_owned(), |e| e.id.clone()),
            );
            positioned.send_replace(true);
        }
        if *outage {
            tracing::info!("alarm stream reader reconnected to Redis");
            *outage = false;
        }
        loop {
            let from = position.clone().unwrap_or_else(|| "0-0".to_owned());
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("COUNT")
                .arg(REPLAY_PAGE)
                .arg("STREAMS")
                .arg(key)
                .arg(&from)
                .query_async(&mut conn)
                .await?;
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                *position = Some(entry.id.clone());
                let Some(alarm) = decode(&entry) else {
                    continue;
                };
                if !recent.first(alarm.report.dedup_key(), std::time::Instant::now()) {
                    tracing::info!(alarm_id = %alarm.id, "an alarm already relayed is in the stream again (a Redis failover lost its first copy); not relayed twice");
                    continue;
                }
                // No receivers is fine: no subscriber on this replica right now.
                let _ = live.send(Arc::new(alarm));
            }
        }
    }
}
