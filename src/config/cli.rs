//! The `mp-gateway` command line: the gateway's settings, or the `sandbox` subcommand.

use clap::{Parser, Subcommand};

use super::defaults::{
    DEFAULT_SANDBOX_PORT, DEFAULT_SANDBOX_TRAFFIC_MB_PER_SEC, SANDBOX_ACCESS_KEY,
    SANDBOX_SECRET_KEY,
};
use super::settings::Settings;

/// Command line of the `mp-gateway` binary.
#[derive(Debug, Parser)]
#[command(
    name = "mp-gateway",
    version,
    about = "LinksField MP eSIM API as a typed gRPC service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run only the MP simulator, for client teams testing their MP integration.
    Sandbox {
        /// Port to listen on (127.0.0.1).
        #[arg(long, default_value_t = DEFAULT_SANDBOX_PORT)]
        port: u16,
        /// Access key the simulator accepts.
        #[arg(long, default_value = SANDBOX_ACCESS_KEY)]
        access_key: String,
        /// Secret key the simulator accepts.
        #[arg(long, default_value = SANDBOX_SECRET_KEY)]
        secret_key: String,
        /// How fast in-use orders consume data.
        #[arg(long, default_value_t = DEFAULT_SANDBOX_TRAFFIC_MB_PER_SEC)]
        traffic_mb_per_sec: f64,
    },
}
