//! One subscriber's view of the bus, whichever bus it is.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Alarm, AlarmId};

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionEnd {
    /// The subscriber fell more than the buffer behind; `last` is the last alarm it was given.
    #[error("subscriber fell behind the relay's buffer")]
    Lagged { last: Option<AlarmId> },
    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The bus stopped relaying (it was dropped).
    #[error("alarm bus closed")]
    Closed,
}

/// One subscriber's view of the bus: replayed alarms, then live ones, in id order.
pub struct Subscription {
    replay: VecDeque<Arc<Alarm>>,
    live: broadcast::Receiver<Arc<Alarm>>,
    /// The last alarm handed out; live alarms at or before it were already replayed.
    last: Option<AlarmId>,
    /// The live channel's capacity (tokio rounds it up to a power of two).
    capacity: usize,
}

impl Subscription {
    pub(super) fn new(
        replay: VecDeque<Arc<Alarm>>,
        live: broadcast::Receiver<Arc<Alarm>>,
        resume_after: Option<AlarmId>,
        capacity: usize,
    ) -> Self {
        Self {
            replay,
            live,
            last: resume_after,
            capacity,
        }
    }

    /// Whether live alarms arrived faster than this subscription was read, past
    /// the buffer: the next [`Self::next`] after the replay ends in `Lagged`.
    /// Lets a holder that cannot read (its subscriber is stuck) notice the lag.
    pub fn overrun(&self) -> bool {
        self.live.len() > self.capacity.next_power_of_two()
    }

    /// The last alarm handed out.
    pub fn last(&self) -> Option<AlarmId> {
        self.last
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
