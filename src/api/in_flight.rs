//! Open gRPC calls and open alarm streams, counted, so a shutdown can tell when
//! the only calls left are alarm streams it already ended: streams whose client
//! stopped reading cannot flush their status and would hold the exit for the
//! whole grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Shared by the observe layer (every call) and the alarm service (its streams).
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    calls: AtomicUsize,
    alarm_streams: AtomicUsize,
}

/// Counts one call or stream until dropped.
#[derive(Debug)]
pub struct Open {
    counts: Arc<Counts>,
    alarm_stream: bool,
}

impl InFlight {
    /// Counts a gRPC call until its response body is gone.
    pub fn call(&self) -> Open {
        self.open(false)
    }

    /// Counts an alarm stream's response body until it is gone.
    pub fn alarm_stream(&self) -> Open {
        self.open(true)
    }

    fn open(&self, alarm_stream: bool) -> Open {
        self.counter(alarm_stream).fetch_add(1, Ordering::SeqCst);
        Open {
            counts: self.counts.clone(),
            alarm_stream,
        }
    }

    fn counter(&self, alarm_stream: bool) -> &AtomicUsize {
        self.counts.counter(alarm_stream)
    }

    /// True when every open call is an alarm stream.
    pub fn only_alarm_streams(&self) -> bool {
        self.counter(false).load(Ordering::SeqCst) <= self.counter(true).load(Ordering::SeqCst)
    }

    /// Resolves once only alarm streams have been open for `settle` (the time a
    /// reading client needs to get its status); used after they were told to end.
    pub async fn only_alarm_streams_for(&self, settle: Duration) {
        const POLL: Duration = Duration::from_millis(50);
        loop {
            while !self.only_alarm_streams() {
                tokio::time::sleep(POLL).await;
            }
            tokio::time::sleep(settle).await;
            if self.only_alarm_streams() {
                return;
            }
        }
    }
}

impl Counts {
    fn counter(&self, alarm_stream: bool) -> &AtomicUsize {
        if alarm_stream {
            &self.alarm_streams
        } else {
            &self.calls
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.counts
            .counter(self.alarm_stream)
            .fetch_sub(1, Ordering::SeqCst);
    }
}
