//! Closed-loop load: N clients each send one call, wait for it, send the next.

use std::future::Future;
use std::time::{Duration, Instant};

/// What one measured run did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Latencies of the completed calls, in microseconds.
    latencies_us: Vec<u32>,
    elapsed: Duration,
    /// Every call that completed, those of the warm-up too: what the
    /// servers' CPU time over the whole run is divided by.
    completed: u64,
}

impl Stats {
    pub fn merge(&mut self, other: Stats) {
        self.latencies_us.extend(other.latencies_us);
        self.elapsed += other.elapsed;
        self.completed += other.completed;
    }

    pub fn completed(&self) -> u64 {
        self.completed
    }

    pub fn requests_per_sec(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The latency below which `q` (0..=1) of the calls finished.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        self.latencies_us.sort_unstable();
        let last = self.latencies_us.len() - 1;
        let index = ((last as f64) * q).round() as usize;
        Duration::from_micros(u64::from(self.latencies_us[index.min(last)]))
    }
}

/// Runs `clients` loops of `call`, each in its own task, for `warmup` (not
/// measured) and then for `measured`. `call(i)` makes client i's call; an
/// error stops the run.
pub async fn drive<C, F>(
    clients: usize,
    warmup: Duration,
    measured: Duration,
    call: C,
) -> Result<Stats, tonic::Status>
where
    C: Fn(usize) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let measure_from = Instant::now() + warmup;
    let stop_at = measure_from + measured;
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(64 * 1024);
                let mut completed = 0_u64;
                loop {
                    let sent = Instant::now();
                    if sent >= stop_at {
                        break;
                    }
                    call(i).await?;
                    completed += 1;
                    if sent >= measure_from {
                        let micros = sent.elapsed().as_micros();
                        latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                    }
                }
                Ok::<_, tonic::Status>((latencies, completed))
            })
        })
        .collect();
    let mut stats = Stats::default();
    for worker in workers {
        let (latencies, completed) = worker
            .await
            .map_err(|e| tonic::Status::internal(format!("a client task failed: {e}")))??;
        stats.latencies_us.extend(latencies);
        stats.completed += completed;
    }
    stats.elapsed = Instant::now().saturating_duration_since(measure_from);
    Ok(stats)
}
