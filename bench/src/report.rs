//! Tables, the machine they were measured on, and `BENCHMARKS.md`, where each
//! scenario owns one section that a later run replaces.

use std::fmt;
use std::path::Path;
use std::time::Duration;

/// A markdown table.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        writeln!(f, "{}", line(&self.header))?;
        let rule: Vec<String> = self.header.iter().map(|_| "---:".to_owned()).collect();
        writeln!(f, "{}", line(&rule))?;
        for row in &self.rows {
            writeln!(f, "{}", line(row))?;
        }
        Ok(())
    }
}

/// One scenario's results.
pub struct Section {
    pub title: String,
    pub notes: String,
    pub table: Table,
}

/// Where the numbers come from.
pub struct Machine {
    cpus: usize,
    model: String,
    /// The 1-minute load average at the start: how busy the machine was otherwise.
    load: Option<String>,
}

impl Machine {
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned));
        Self { cpus, model, load }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} CPUs (nproc), {}", self.cpus, self.model)?;
        match &self.load {
            Some(load) => write!(f, "; load average {load} at the start"),
            None => Ok(()),
        }
    }
}

const HEADER: &str = "# Benchmarks\n\nMeasured by `mp-bench` (see README, \"Benchmarks\"). Each section is replaced when its scenario runs again; numbers are from the machine named in it.\n";

/// Replaces (or appends) the section of `scenario` in the file at `path`.
pub fn update(
    path: &Path,
    scenario: &str,
    section: &Section,
    machine: &Machine,
) -> std::io::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_owned(),
        Err(e) => return Err(e),
    };
    let begin = format!("<!-- scenario: {scenario} -->");
    let end = format!("<!-- end of scenario: {scenario} -->");
    let body = format!(
        "{begin}\n## {title}\n\nMachine: {machine}. Measured {date}.\n\nCommand: `cargo build --release -p mp-gateway -p mp-bench && target/release/mp-bench {scenario}`\n\n{table}\n{notes}\n{end}",
        title = section.title,
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        table = section.table,
        notes = section.notes,
    );
    let updated = match (existing.find(&begin), existing.find(&end)) {
        (Some(from), Some(to)) if from < to => {
            format!("{}{body}{}", &existing[..from], &existing[to + end.len()..])
        }
        _ => format!("{}\n\n{body}\n", existing.trim_end()),
    };
    std::fs::write(path, updated)
}

/// The load averages (1, 5, 15 min) as uptime prints them, now.
pub fn load_now() -> Option<String> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    let averages: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    Some(averages.join(", "))
}

/// The middle value: one round disturbed by other work on the machine moves it little.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub fn micros(latency: Duration) -> String {
    format!("{} µs", latency.as_micros())
}
