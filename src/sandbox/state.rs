//! What the sandbox's tasks share: configuration, the order book, the
//! injected fault, the registered callback URL and the request counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::orders::OrderBook;
use super::{Fault, SandboxConfig};

/// State shared by the server, its handlers and the alarm task.
pub(crate) struct Shared {
    pub config: SandboxConfig,
    pub orders: Mutex<OrderBook>,
    pub fault: Mutex<Option<Fault>>,
    pub callback_url: Mutex<Option<String>>,
    pub stats: Stats,
    /// Sends the alarm callbacks.
    pub http: reqwest::Client,
}

impl Shared {
    pub fn new(config: SandboxConfig, http: reqwest::Client) -> Shared {
        Shared {
            orders: Mutex::new(OrderBook::new(config.traffic_mb_per_sec)),
            config,
            fault: Mutex::new(None),
            callback_url: Mutex::new(None),
            stats: Stats::default(),
            http,
        }
    }
}

/// Locks a mutex; a panic elsewhere while it was held leaves state that is
/// still good enough for a simulator, so poisoning is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What tests ask the sandbox about the traffic it saw.
#[derive(Default)]
pub(crate) struct Stats {
    total_requests: AtomicU64,
    alarms_delivered: AtomicU64,
    endpoints: Mutex<HashMap<String, EndpointStats>>,
}

#[derive(Default)]
struct EndpointStats {
    calls: u64,
    last_request_id: Option<String>,
}

impl Stats {
    pub fn count_request(&self) {
        self.total_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn total_requests(&self) -> u64 {
        self.total_requests.load(Ordering::Relaxed)
    }

    pub fn count_alarm_delivered(&self) {
        self.alarms_delivered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn alarms_delivered(&self) -> u64 {
        self.alarms_delivered.load(Ordering::Relaxed)
    }

    /// Notes an authenticated call and the requestId it carried (or none).
    pub fn record_call(&self, endpoint: &str, request_id: Option<String>) {
        let mut endpoints = lock(&self.endpoints);
        let stats = endpoints.entry(endpoint.to_owned()).or_default();
        stats.calls += 1;
        stats.last_request_id = request_id;
    }

    pub fn calls(&self, endpoint: &str) -> u64 {
        lock(&self.endpoints).get(endpoint).map_or(0, |s| s.calls)
    }

    pub fn last_request_id(&self, endpoint: &str) -> Option<String> {
        lock(&self.endpoints)
            .get(endpoint)
            .and_then(|s| s.last_request_id.clone())
    }
}
