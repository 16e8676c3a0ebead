//! `mp-bench`: load benchmarks of the gateway on this machine.
//!
//! ```text
//! cargo run --release -p mp-bench                  # every scenario
//! cargo run --release -p mp-bench -- product-cache # some of them
//! ```
//!
//! Each scenario starts what it needs on loopback (the MP sandbox, the
//! gateway, a reference server), drives it with its own tonic clients for a
//! bounded time per row, prints a table, and updates its section of
//! `BENCHMARKS.md`. A new scenario is a module and a line in [`SCENARIOS`].

mod alarm_load;
mod alarm_relay;
mod bare_relay;
mod cpu;
mod footprint;
mod gateway;
mod histogram;
mod load;
mod passthrough;
mod process;
mod product_cache;
mod replica_ack;
mod report;
mod shared_subscriptions;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use report::Section;

/// A named benchmark.
struct Scenario {
    name: &'static str,
    about: &'static str,
    run: fn(&Options) -> futures::future::BoxFuture<'_, Result<Section, BenchError>>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "product-cache",
        about: "ListProducts with a warm cache vs a minimal tonic server returning the same response",
        run: |options| Box::pin(product_cache::run(options)),
    },
    Scenario {
        name: "passthrough",
        about: "GetOrderStatus through the gateway vs the same signed REST call made directly",
        run: |options| Box::pin(passthrough::run(options)),
    },
    Scenario {
        name: "footprint",
        about: "the release binary: start to SERVING, idle RSS, memory per idle alarm subscriber",
        run: |options| Box::pin(footprint::run(options)),
    },
    Scenario {
        name: "alarm-relay",
        about: "MP callbacks to SubscribeAlarms streams over two replicas sharing Redis vs bare relays (with and without Redis)",
        run: |options| Box::pin(alarm_relay::run(options)),
    },
    Scenario {
        name: "shared-subscriptions",
        about: "ConsumeAlarms with Redis: acked alarms/s for 1 and 10 consumers, latency against SubscribeAlarms",
        run: |options| Box::pin(shared_subscriptions::run(options)),
    },
    Scenario {
        name: "replica-ack",
        about: "callbacks/s and delivery latency with REDIS_MIN_REPLICAS_ACK=1 against 0 (a Redis primary and replica of its own)",
        run: |options| Box::pin(replica_ack::run(options)),
    },
];

#[derive(Debug, Parser)]
#[command(
    name = "mp-bench",
    about = "Load benchmarks of mp-gateway on this machine"
)]
struct Options {
    #[command(subcommand)]
    internal: Option<Internal>,
    /// Scenarios to run [default: all]; `--list` names them.
    scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Measured seconds per row and server, split over the rounds
    /// (alarm-relay: per throughput row, and per latency row and system,
    /// where at least 3,000 callbacks are sent: 12 s at 250/s).
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Rounds per row: servers take turns, so a load change elsewhere on
    /// the machine hits both alike.
    #[arg(long, default_value_t = 16)]
    rounds: u32,
    /// Concurrent clients, one row each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// alarm-relay: subscribers, one latency row each.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    subscribers: Vec<usize>,
    /// Redis for the scenarios that need one (alarm-relay); they use keys
    /// under a fresh prefix and delete them at the end.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Tokio worker threads of the load generator (and of what alarm-relay
    /// and footprint still run in this process). The servers measured run
    /// one each, in processes of their own.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Where the results go; `-` prints only.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"))]
    output: PathBuf,
}

/// What the scenarios start this binary for.
#[derive(Debug, Subcommand)]
enum Internal {
    /// Serve a ceiling server in this process until killed.
    #[command(hide = true)]
    ServeCeiling {
        #[command(subcommand)]
        ceiling: Ceiling,
    },
}

#[derive(Debug, Subcommand)]
enum Ceiling {
    /// A bare tonic ProductService answering the ListProductsResponse read from stdin.
    ProductCache {
        #[arg(long)]
        grpc: SocketAddr,
    },
}

impl Options {
    fn measured(&self) -> Duration {
        Duration::from_secs_f64(self.seconds.max(0.1))
    }
}

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("unknown scenario {0:?}; try --list")]
    UnknownScenario(String),
    #[error("cannot start: {0}")]
    Start(String),
    #[error("a call failed: {0}")]
    Call(#[from] tonic::Status),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BenchError {
    fn start(e: impl std::fmt::Display) -> Self {
        Self::Start(e.to_string())
    }
}

fn main() -> ExitCode {
    let options = Options::parse();
    // A ceiling gets one worker like the gateway it is compared with.
    let workers = match options.internal {
        Some(_) => 1,
        None => options.client_threads.max(1),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(start(options)),
        Err(error) => {
            eprintln!("mp-bench: cannot start tokio: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn start(options: Options) -> ExitCode {
    if let Some(Internal::ServeCeiling { ceiling }) = &options.internal {
        let served = match ceiling {
            Ceiling::ProductCache { grpc } => product_cache::serve_ceiling(*grpc).await,
        };
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("mp-bench serve-ceiling: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let options = &options;
    if options.list {
        for scenario in SCENARIOS {
            println!("{:<16} {}", scenario.name, scenario.about);
        }
        return ExitCode::SUCCESS;
    }
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mp-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: &Options) -> Result<(), BenchError> {
    let chosen = choose(&options.scenarios)?;
    let machine = report::Machine::detect();
    println!("{machine}");
    for scenario in chosen {
        println!("\n== {}: {}", scenario.name, scenario.about);
        let mut section = (scenario.run)(options).await?;
        if let Some(load) = report::load_now() {
            section.notes.push_str(&format!(
                " Load average at the end of the scenario (1, 5, 15 min, as uptime prints it): \
                 {load}, on {} cores; anything above the processes measured ran beside them.",
                std::thread::available_parallelism().map_or(1, usize::from)
            ));
        }
        println!("{}", section.table);
        if options.output.as_os_str() != "-" {
            report::update(&options.output, scenario.name, &section, &machine).map_err(
                |source| BenchError::Write {
                    path: options.output.clone(),
                    source,
                },
            )?;
            println!("(written to {})", options.output.display());
        }
    }
    Ok(())
}

fn choose(names: &[String]) -> Result<Vec<&'static Scenario>, BenchError> {
    if names.is_empty() {
        return Ok(SCENARIOS.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            SCENARIOS
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| BenchError::UnknownScenario(name.clone()))
        })
        .collect()
}
