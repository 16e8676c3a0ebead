//! The in-process alarm log: a bounded ring of recent alarms and a broadcast
//! to live subscribers, both updated under one lock so replay and live never
//! disagree.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::broadcast;

use super::shared::MemoryGroups;
use super::subscription::Subscription;
use super::{Alarm, AlarmId, AlarmReport, BusConfig, BusError, Published, check_resume_point};

pub struct MemoryBus {
    log: Mutex<Log>,
    live: broadcast::Sender<Arc<Alarm>>,
    config: BusConfig,
    shared: Arc<MemoryGroups>,
}

#[derive(Default)]
struct Log {
    alarms: VecDeque<Arc<Alarm>>,
    last_id: Option<AlarmId>,
    /// Dedup keys seen within the window, and when, oldest first.
    seen: HashSet<Arc<str>>,
    seen_order: VecDeque<(Instant, Arc<str>)>,
}

impl MemoryBus {
    pub fn new(config: BusConfig) -> Self {
        let (live, _) = broadcast::channel(config.subscriber_buffer.max(1));
        Self {
            log: Mutex::new(Log::default()),
            live,
            shared: Arc::new(MemoryGroups::new(
                config.max_delivery_attempts,
                config.retention,
            )),
            config,
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock cannot leave the log half-written
        // (every update is a push or pop), so a poisoned lock is still usable.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn publish(&self, report: AlarmReport) -> Published {
        let now = Instant::now();
        let mut log = self.log();
        while let Some((at, _)) = log.seen_order.front() {
            if now.duration_since(*at) < self.config.dedup_window {
                break;
            }
            if let Some((_, key)) = log.seen_order.pop_front() {
                log.seen.remove(&key);
            }
        }
        let key: Arc<str> = report.dedup_key().into();
        if !log.seen.insert(key.clone()) {
            return Published::Duplicate;
        }
        log.seen_order.push_back((now, key));

        let id = AlarmId::next(
            log.last_id,
            u64::try_from(crate::millis::now()).unwrap_or(0),
        );
        let alarm = Arc::new(Alarm { id, report });
        log.last_id = Some(id);
        log.alarms.push_back(alarm.clone());
        while log.alarms.len() > self.config.retention {
            log.alarms.pop_front();
        }
        self.shared.publish(&alarm);
        // No receivers is fine: nobody is subscribed right now.
        let _ = self.live.send(alarm);
        Published::New(id)
    }

    /// The shared subscriptions of this bus.
    pub fn shared(&self) -> Arc<MemoryGroups> {
        self.shared.clone()
    }

    pub fn subscribe(&self, resume_after: Option<AlarmId>) -> Result<Subscription, BusError> {
        let log = self.log();
        let live = self.live.subscribe();
        let replay = match resume_after {
            None => VecDeque::new(),
            Some(after) => {
                let now = u64::try_from(crate::millis::now()).unwrap_or(0);
                check_resume_point(after, log.last_id, now)?;
                // The id must still be retained; otherwise alarms after it may be gone.
                let position = log
                    .alarms
                    .binary_search_by_key(&after, |a| a.id)
                    .map_err(|_| BusError::OutOfRange(after))?;
                log.alarms.iter().skip(position + 1).cloned().collect()
            }
        };
        Ok(Subscription::new(
            replay,
            live,
            resume_after,
            self.config.subscriber_buffer.max(1),
        ))
    }
}
