//! A lock-free latency histogram that many subscriber tasks record into at
//! once: exact to the microsecond below 1,024 µs, then 64 buckets per power
//! of two (within 1.6 %).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Below this many microseconds, one bucket per microsecond.
const LINEAR: u64 = 1024;
/// Buckets per power of two above `LINEAR` (a power of two itself).
const PER_OCTAVE: u64 = 64;
const OCTAVE_BITS: u32 = PER_OCTAVE.trailing_zeros();
const LINEAR_BITS: u32 = LINEAR.trailing_zeros();
/// Values are clamped below 2^40 µs (12 days).
const MAX_BITS: u32 = 40;
const BUCKETS: usize = (LINEAR + (MAX_BITS - LINEAR_BITS) as u64 * PER_OCTAVE) as usize;

pub struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn index(micros: u64) -> usize {
    let micros = micros.min((1 << MAX_BITS) - 1);
    if micros < LINEAR {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    let mantissa = (micros >> (exponent - OCTAVE_BITS)) - PER_OCTAVE;
    (LINEAR + u64::from(exponent - LINEAR_BITS) * PER_OCTAVE + mantissa) as usize
}

/// The smallest value that lands in bucket `index`.
fn lower_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let octave = (index - LINEAR) / PER_OCTAVE;
    let mantissa = (index - LINEAR) % PER_OCTAVE;
    (PER_OCTAVE + mantissa) << (octave + u64::from(LINEAR_BITS - OCTAVE_BITS))
}

impl Histogram {
    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[index(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// The latency below which `q` (0..=1) of the recorded ones are (the
    /// bucket's lower bound), or `None` if nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total - 1) as f64 * q.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen > rank {
                return Some(Duration::from_micros(lower_bound(i)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_then_within_two_percent() {
        for micros in [0, 1, 500, 1023] {
            assert_eq!(lower_bound(index(micros)), micros);
        }
        for micros in [1024, 1025, 2047, 2048, 5_000, 123_456, 9_999_999, 1 << 39] {
            let low = lower_bound(index(micros));
            assert!(
                low <= micros && micros - low <= micros / 64,
                "{micros}: {low}"
            );
            assert_eq!(index(low), index(micros));
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let h = Histogram::default();
        for micros in 1..=1000 {
            h.record(Duration::from_micros(micros));
        }
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(501)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_micros(990)));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
