//! Shared subscriptions in process (no Redis, one replica): per subscription
//! a queue of alarms not yet delivered, a queue of alarms to deliver again,
//! and the alarms out with a consumer, each with its deadline.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{ConsumerSettings, Delivery, SharedError, SubscriptionInfo, SubscriptionName};
use crate::alarms::metrics::shared as metrics;
use crate::alarms::{Alarm, AlarmId};

/// How often a waiting consumer looks for alarms whose deadline passed.
const EXPIRY_CHECK: Duration = Duration::from_millis(100);

/// Every subscription of the in-process bus.
pub struct MemoryGroups {
    groups: Mutex<HashMap<String, Arc<Group>>>,
    max_attempts: u32,
    /// Most alarms one subscription holds undelivered (ALARM_RETENTION).
    retention: usize,
    next_consumer: AtomicU64,
}

struct Group {
    name: String,
    state: Mutex<GroupState>,
    /// Woken when there is something to deliver or the group is deleted.
    changed: Notify,
}

#[derive(Default)]
struct GroupState {
    backlog: VecDeque<Arc<Alarm>>,
    /// Alarms to deliver again, with the deliveries they had.
    retry: VecDeque<(Arc<Alarm>, u32)>,
    out: HashMap<AlarmId, Out>,
    consumers: u32,
    deleted: bool,
}

struct Out {
    alarm: Arc<Alarm>,
    attempts: u32,
    deadline: Instant,
    holder: u64,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a push, pop or insert: a panic cannot leave one half-done.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryGroups {
    pub fn new(max_attempts: u32, retention: usize) -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
            max_attempts,
            retention,
            next_consumer: AtomicU64::new(1),
        }
    }

    /// Hands a new alarm to every subscription; called in log order.
    pub fn publish(&self, alarm: &Arc<Alarm>) {
        let groups: Vec<Arc<Group>> = locked(&self.groups).values().cloned().collect();
        for group in groups {
            let mut state = locked(&group.state);
            state.backlog.push_back(alarm.clone());
            if state.backlog.len() > self.retention
                && let Some(dropped) = state.backlog.pop_front()
            {
                tracing::warn!(subscription = %group.name, alarm_id = %dropped.id, "subscription backlog over ALARM_RETENTION: the oldest undelivered alarm leaves it");
                metrics::dead_lettered(&group.name);
            }
            drop(state);
            group.changed.notify_waiters();
        }
    }

    pub fn join(self: &Arc<Self>, settings: ConsumerSettings) -> MemoryConsumer {
        let name = settings.subscription.as_str().to_owned();
        let group = locked(&self.groups)
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Group {
                    name,
                    state: Mutex::new(GroupState::default()),
                    changed: Notify::new(),
                })
            })
            .clone();
        locked(&group.state).consumers += 1;
        MemoryConsumer {
            groups: self.clone(),
            group,
            id: self.next_consumer.fetch_add(1, Ordering::Relaxed),
            ack_deadline: settings.ack_deadline,
        }
    }

    pub fn list(&self) -> Vec<SubscriptionInfo> {
        let mut list: Vec<SubscriptionInfo> = locked(&self.groups)
            .values()
            .map(|group| {
                let state = locked(&group.state);
                SubscriptionInfo {
                    name: group.name.clone(),
                    consumers: state.consumers,
                    pending: (state.out.len() + state.retry.len()) as u64,
                    backlog: state.backlog.len() as u64,
                }
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    pub fn delete(&self, name: &SubscriptionName) -> Result<(), SharedError> {
        let group = locked(&self.groups)
            .remove(name.as_str())
            .ok_or_else(|| SharedError::NotFound(name.to_string()))?;
        locked(&group.state).deleted = true;
        group.changed.notify_waiters();
        Ok(())
    }
}

/// One stream's place in an in-process subscription.
pub struct MemoryConsumer {
    groups: Arc<MemoryGroups>,
    group: Arc<Group>,
    id: u64,
    ack_deadline: Duration,
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        let mut state = locked(&self.group.state);
        state.consumers = state.consumers.saturating_sub(1);
    }
}

impl MemoryConsumer {
    pub async fn next_batch(&self, room: usize) -> Result<Vec<Delivery>, SharedError> {
        loop {
            let changed = self.group.changed.notified();
            let batch = self.take(room)?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            let _ = tokio::time::timeout(EXPIRY_CHECK, changed).await;
        }
    }

    fn take(&self, room: usize) -> Result<Vec<Delivery>, SharedError> {
        let mut state = locked(&self.group.state);
        if state.deleted {
            return Err(SharedError::Deleted(self.group.name.clone()));
        }
        let now = Instant::now();
        let mut expired: Vec<AlarmId> = state
            .out
            .iter()
            .filter(|(_, out)| out.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort();
        for id in expired {
            if let Some(out) = state.out.remove(&id) {
                state.retry.push_back((out.alarm, out.attempts));
            }
        }
        let mut batch = Vec::new();
        while batch.len() < room {
            let (alarm, attempts) = match state.retry.pop_front() {
                Some(retry) => retry,
                None => match state.backlog.pop_front() {
                    Some(alarm) => (alarm, 0),
                    None => break,
                },
            };
            if attempts >= self.groups.max_attempts {
                tracing::warn!(subscription = %self.group.name, alarm_id = %alarm.id, attempts, "alarm not acked after ALARM_MAX_DELIVERY_ATTEMPTS deliveries: it leaves the subscription (still in the alarm log)");
                metrics::dead_lettered(&self.group.name);
                continue;
            }
            let attempt = attempts + 1;
            state.out.insert(
                alarm.id,
                Out {
                    alarm: alarm.clone(),
                    attempts: attempt,
                    deadline: now + self.ack_deadline,
                    holder: self.id,
                },
            );
            batch.push(Delivery { alarm, attempt });
        }
        Ok(batch)
    }

    pub fn ack(&self, ids: &[AlarmId]) {
        let mut state = locked(&self.group.state);
        for id in ids {
            if state.out.remove(id).is_none() {
                // Past its deadline and waiting to go out again: handled now.
                state.retry.retain(|(alarm, _)| alarm.id != *id);
            }
        }
    }

    /// Delivers again now those of `ids` this consumer still holds.
    pub fn nack(&self, ids: &[AlarmId]) {
        let mut state = locked(&self.group.state);
        for id in ids {
            let mine = state.out.get(id).is_some_and(|out| out.holder == self.id);
            if mine && let Some(out) = state.out.remove(id) {
                state.retry.push_back((out.alarm, out.attempts));
            }
        }
        drop(state);
        self.group.changed.notify_waiters();
    }
}
