//! Who used the CPUs during a phase: this process (servers and clients),
//! Redis (from its INFO), and everything else on the machine — the "busy"
//! that makes a measurement less trustworthy. Linux only; elsewhere `None`.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::load::Stats;

/// Linux reports CPU time in these (USER_HZ, 100 on every common platform).
const TICKS_PER_SEC: f64 = 100.0;

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    /// Busy ticks of all CPUs.
    machine: u64,
    /// Ticks of this process and its waited-for children.
    own: u64,
    /// Seconds of the Redis server, if it answered.
    redis: Option<f64>,
}

/// CPU use since [`CpuMeter::start`], in cores.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    pub own: f64,
    pub redis: Option<f64>,
    /// Everything else: other builds, tests, benchmarks.
    pub others: f64,
}

impl fmt::Display for CpuUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "this process {:.2}", self.own)?;
        if let Some(redis) = self.redis {
            write!(f, ", Redis {redis:.2}")?;
        }
        write!(f, ", other processes {:.2} cores", self.others)
    }
}

pub struct CpuMeter {
    start: Option<Sample>,
    redis: Option<redis::aio::MultiplexedConnection>,
}

impl CpuMeter {
    pub async fn start(redis: Option<redis::aio::MultiplexedConnection>) -> Self {
        let mut meter = Self { start: None, redis };
        meter.start = meter.sample().await;
        meter
    }

    /// Use since the start (or the last `lap`), and starts over.
    pub async fn lap(&mut self) -> Option<CpuUse> {
        let now = self.sample().await?;
        let then = self.start.replace(now)?;
        let secs = now.at.duration_since(then.at).as_secs_f64().max(1e-3);
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SEC / secs;
        let own = cores(now.own.saturating_sub(then.own));
        let machine = cores(now.machine.saturating_sub(then.machine));
        let redis = match (then.redis, now.redis) {
            (Some(a), Some(b)) => Some((b - a).max(0.0) / secs),
            _ => None,
        };
        Some(CpuUse {
            own,
            redis,
            others: (machine - own - redis.unwrap_or(0.0)).max(0.0),
        })
    }

    async fn sample(&mut self) -> Option<Sample> {
        let redis = match &mut self.redis {
            Some(conn) => redis_cpu_secs(conn).await,
            None => None,
        };
        Some(Sample {
            at: Instant::now(),
            machine: machine_busy_ticks()?,
            own: own_ticks()?,
            redis,
        })
    }
}

/// `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal …
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    let &[user, nice, system, _idle, _iowait, irq, softirq, steal] = fields.as_slice() else {
        return None;
    };
    Some(user + nice + system + irq + softirq + steal)
}

/// utime + stime + cutime + cstime of /proc/self/stat (fields 14–17).
fn own_ticks() -> Option<u64> {
    stat_ticks("self", 4)
}

/// The sum of the first `fields` of utime, stime, cutime, cstime in
/// /proc/`pid`/stat (fields 14–17), in ticks. All threads of the process
/// count, those that have already exited too.
fn stat_ticks(pid: &str, fields: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let all: Vec<&str> = after_name.split_whitespace().collect();
    all.get(11..11 + fields)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum()
}

/// CPU time (user + system) one process spends on a kind of call, summed
/// over measured rounds: [`ProcessCpu::round`] reads /proc/PID/stat before
/// and after each. The reads are in ticks of 10 ms (USER_HZ is 100 on Linux;
/// without libc there is no `sysconf(_SC_CLK_TCK)` to ask), so a round is
/// off by up to a tick; summed over the rounds of a row that stays small.
#[derive(Debug, Clone)]
pub struct ProcessCpu {
    /// `None`: this process (the load generator).
    pid: Option<u32>,
    ticks: u64,
    calls: u64,
    /// A read failed (not Linux, or the process is gone).
    unknown: bool,
}

impl ProcessCpu {
    pub fn of(pid: u32) -> Self {
        Self {
            pid: Some(pid),
            ticks: 0,
            calls: 0,
            unknown: false,
        }
    }

    pub fn this_process() -> Self {
        Self {
            pid: None,
            ..Self::of(0)
        }
    }

    fn read(&self) -> Option<u64> {
        match self.pid {
            // Not cutime/cstime: the servers are children of this process.
            None => stat_ticks("self", 2),
            Some(pid) => stat_ticks(&pid.to_string(), 2),
        }
    }

    /// Reads every meter, awaits the round, reads again and adds what each
    /// process used to its total, with the calls the round completed.
    pub async fn round<F, E>(meters: &mut [&mut ProcessCpu], round: F) -> Result<Stats, E>
    where
        F: Future<Output = Result<Stats, E>>,
    {
        let before: Vec<Option<u64>> = meters.iter().map(|m| m.read()).collect();
        let stats = round.await?;
        for (meter, before) in meters.iter_mut().zip(before) {
            match (before, meter.read()) {
                (Some(a), Some(b)) => meter.ticks += b.saturating_sub(a),
                _ => meter.unknown = true,
            }
            meter.calls += stats.completed();
        }
        Ok(stats)
    }

    /// CPU time per call, if every read succeeded.
    pub fn per_call(&self) -> Option<Duration> {
        if self.unknown || self.calls == 0 {
            return None;
        }
        Some(Duration::from_secs_f64(
            self.ticks as f64 / TICKS_PER_SEC / self.calls as f64,
        ))
    }
}

impl fmt::Display for ProcessCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.per_call() {
            Some(cpu) => write!(f, "{:.1} µs", cpu.as_secs_f64() * 1e6),
            None => write!(f, "n/a"),
        }
    }
}

async fn redis_cpu_secs(conn: &mut redis::aio::MultiplexedConnection) -> Option<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await.ok()?;
    let field = |name: &str| {
        info.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(':')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    Some(field("used_cpu_sys")? + field("used_cpu_user")?)
}
