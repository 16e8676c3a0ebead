//! What the sandbox's tasks share: configuration, the order book, the
//! injected fault, the registered callback URL and the request counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::http::HeaderMap;

use super::orders::OrderBook;
use super::{Fault, SandboxConfig};

/// The fault in force, and for how many more requests.
#[derive(Debug, Clone)]
pub(crate) struct InjectedFault {
    pub fault: Fault,
    /// `None`: until cleared.
    pub remaining: Option<u64>,
}

/// The fault the next request gets, counting it against a limited fault
/// (which clears itself once used up).
pub(crate) fn next_fault(slot: &mut Option<InjectedFault>) -> Option<Fault> {
    let injected = slot.as_mut()?;
    let fault = injected.fault.clone();
    if let Some(remaining) = &mut injected.remaining {
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            *slot = None;
        }
    }
    Some(fault)
}

/// State shared by the server, its handlers and the alarm task.
pub(crate) struct Shared {
    pub config: SandboxConfig,
    pub orders: Mutex<OrderBook>,
    pub fault: Mutex<Option<InjectedFault>>,
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
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    alarms_delivered: AtomicU64,
    endpoints: Mutex<HashMap<String, EndpointStats>>,
}

#[derive(Default)]
struct EndpointStats {
    calls: u64,
    last_request_id: Option<String>,
    last_headers: HeaderMap,
}

impl Stats {
    pub fn count_request(&self) {
        self.total_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn total_requests(&self) -> u64 {
        self.total_requests.load(Ordering::Relaxed)
    }

    /// Notes a request being served until the guard drops (also when the
    /// client gives up and the request is cancelled).
    pub fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    pub fn max_in_flight(&self) -> u64 {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn count_alarm_delivered(&self) {
        self.alarms_delivered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn alarms_delivered(&self) -> u64 {
        self.alarms_delivered.load(Ordering::Relaxed)
    }

    /// Notes an authenticated call, the requestId it carried (or none) and its headers.
    pub fn record_call(&self, endpoint: &str, request_id: Option<String>, headers: &HeaderMap) {
        let mut endpoints = lock(&self.endpoints);
        let stats = endpoints.entry(endpoint.to_owned()).or_default();
        stats.calls += 1;
        stats.last_request_id = request_id;
        stats.last_headers = headers.clone();
    }

    pub fn calls(&self, endpoint: &str) -> u64 {
        lock(&self.endpoints).get(endpoint).map_or(0, |s| s.calls)
    }

    pub fn last_request_id(&self, endpoint: &str) -> Option<String> {
        lock(&self.endpoints)
            .get(endpoint)
            .and_then(|s| s.last_request_id.clone())
    }

    pub fn last_header(&self, endpoint: &str, name: &str) -> Option<String> {
        let endpoints = lock(&self.endpoints);
        let value = endpoints.get(endpoint)?.last_headers.get(name)?;
        value.to_str().ok().map(str::to_owned)
    }
}

/// A request being served; see [`Stats::enter`].
pub(crate) struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_fault_applies_that_many_times_then_clears_itself() {
        let mut slot = Some(InjectedFault {
            fault: Fault::HttpStatus(503),
            remaining: Some(2),
        });
        assert_eq!(next_fault(&mut slot), Some(Fault::HttpStatus(503)));
        assert_eq!(next_fault(&mut slot), Some(Fault::HttpStatus(503)));
        assert_eq!(next_fault(&mut slot), None);
        assert!(slot.is_none());
    }

    #[test]
    fn an_unlimited_fault_stays() {
        let mut slot = Some(InjectedFault {
            fault: Fault::NotJson,
            remaining: None,
        });
        for _ in 0..5 {
            assert_eq!(next_fault(&mut slot), Some(Fault::NotJson));
        }
    }

    #[test]
    fn the_in_flight_high_water_mark_stays_after_requests_end() {
        let stats = Stats::default();
        let a = stats.enter();
        let b = stats.enter();
        drop(a);
        let c = stats.enter();
        assert_eq!(stats.max_in_flight(), 2);
        drop((b, c));
        let _d = stats.enter();
        assert_eq!(stats.max_in_flight(), 2);
    }
}
