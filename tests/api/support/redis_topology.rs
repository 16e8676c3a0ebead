//! Redis as production runs it, on loopback: a primary with replicas
//! watched by three sentinels, or a cluster of three primaries. Every
//! process has a free port and a temporary directory of its own, and is
//! killed (the directory removed) when its topology is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mp_gateway::config::{RedisConfig, RedisTopology, ReplicaAck};
use tokio::process::{Child, Command};

use super::{eventually, free_port};

/// The name the sentinels monitor the primary under.
pub const MASTER_NAME: &str = "mymaster";

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!("mp-gateway-{what}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `redis-server` process (data node or sentinel), killed when dropped.
struct Server {
    port: u16,
    child: Child,
}

impl Server {
    /// Starts `redis-server` with `args`, its files in `dir` (made here).
    fn spawn(port: u16, dir: &Path, args: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("a data directory");
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is on PATH (scripts/install-dev-tools installs it)");
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Waits until it answers PING.
    async fn answering(&self) {
        let url = self.url();
        eventually(Duration::from_secs(10), "redis-server answers PING", || {
            let url = url.clone();
            async move { query::<String>(&url, redis::cmd("PING")).await.is_some() }
        })
        .await;
    }
}

/// One command on a fresh connection; `None` when it cannot be run.
async fn query<T: redis::FromRedisValue>(url: &str, cmd: redis::Cmd) -> Option<T> {
    let client = redis::Client::open(url).ok()?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()?;
    cmd.query_async(&mut conn).await.ok()
}

/// A primary, its replicas and three sentinels (quorum 2) that fail over a
/// second after the primary stops answering.
pub struct SentinelTopology {
    data: Vec<Option<Server>>,
    sentinels: Vec<Server>,
    _dir: TempDir,
}

/// How long the sentinels wait before they call the primary down.
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);

impl SentinelTopology {
    /// Starts a primary with `replicas` replicas, then the sentinels, and
    /// waits until every sentinel knows the replicas and the other sentinels
    /// (before that, a failover could not be agreed on).
    pub async fn start(replicas: usize) -> Self {
        let dir = TempDir::new("sentinel");
        let primary_port = free_port();
        let mut data = Vec::new();
        for index in 0..=replicas {
            let port = if index == 0 {
                primary_port
            } else {
                free_port()
            };
            let mut args = vec!["--save", "", "--appendonly", "no"];
            let primary = primary_port.to_string();
            if index > 0 {
                args.extend(["--replicaof", "127.0.0.1", &primary]);
            }
            let server = Server::spawn(port, &dir.0.join(format!("data-{index}")), &args);
            server.answering().await;
            data.push(Some(server));
        }
        let mut sentinels = Vec::new();
        for index in 0..3 {
            let port = free_port();
            let conf = dir.0.join(format!("sentinel-{index}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "sentinel resolve-hostnames no\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} {}\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    DOWN_AFTER.as_millis()
                ),
            )
            .expect("write sentinel.conf");
            let conf = conf.to_string_lossy().into_owned();
            let child = Command::new("redis-server")
                .arg(&conf)
                .args([
                    "--sentinel",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                ])
                .arg("--dir")
                .arg(&dir.0)
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server runs as a sentinel");
            let sentinel = Server { port, child };
            sentinel.answering().await;
            sentinels.push(sentinel);
        }
        let topology = Self {
            data,
            sentinels,
            _dir: dir,
        };
        topology.settled(replicas).await;
        topology
    }

    async fn settled(&self, replicas: usize) {
        for sentinel in &self.sentinels {
            let url = sentinel.url();
            eventually(
                Duration::from_secs(30),
                "each sentinel knows the replicas and the other sentinels",
                || {
                    let url = url.clone();
                    async move {
                        let mut known_replicas = redis::cmd("SENTINEL");
                        known_replicas.arg("REPLICAS").arg(MASTER_NAME);
                        let mut known_sentinels = redis::cmd("SENTINEL");
                        known_sentinels.arg("SENTINELS").arg(MASTER_NAME);
                        let r: Option<Vec<redis::Value>> = query(&url, known_replicas).await;
                        let s: Option<Vec<redis::Value>> = query(&url, known_sentinels).await;
                        r.is_some_and(|r| r.len() == replicas) && s.is_some_and(|s| s.len() == 2)
                    }
                },
            )
            .await;
        }
    }

    /// The sentinels' `host:port`s, as `REDIS_SENTINELS` takes them.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// The gateway's Redis: these sentinels, `key_prefix`, and `replica_ack`
    /// replicas per write.
    pub fn config(&self, key_prefix: &str, replica_ack: usize) -> RedisConfig {
        RedisConfig {
            topology: RedisTopology::Sentinel {
                sentinels: self.sentinel_addresses(),
                master: MASTER_NAME.to_owned(),
                sentinel_password: None,
                password: None,
            },
            key_prefix: key_prefix.to_owned(),
            replica_ack: (replica_ack > 0).then_some(ReplicaAck {
                replicas: replica_ack,
                timeout: Duration::from_millis(1000),
            }),
        }
    }

    /// The port of the primary the first sentinel names now.
    pub async fn primary_port(&self) -> Option<u16> {
        let mut ask = redis::cmd("SENTINEL");
        ask.arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER_NAME);
        let (_, port): (String, u16) = query(&self.sentinels[0].url(), ask).await?;
        Some(port)
    }

    /// Kills the current primary with SIGKILL (no goodbye to anyone); returns its port.
    pub async fn kill_primary(&mut self) -> u16 {
        let port = self
            .primary_port()
            .await
            .expect("a sentinel names a primary");
        let slot = self
            .data
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|s| s.port == port))
            .expect("the primary is one of ours");
        if let Some(mut server) = slot.take() {
            server.child.start_kill().expect("SIGKILL the primary");
            let _ = server.child.wait().await;
        }
        port
    }

    /// Waits until the sentinels name a primary other than `old_port`.
    pub async fn failed_over_from(&self, old_port: u16, limit: Duration) {
        eventually(limit, "the sentinels promote a replica", || async {
            self.primary_port()
                .await
                .is_some_and(|port| port != old_port)
        })
        .await;
    }
}

/// A Redis Cluster of three primaries (no replicas), slots spread evenly.
pub struct ClusterTopology {
    nodes: Vec<Server>,
    _dir: TempDir,
}

impl ClusterTopology {
    pub async fn start() -> Self {
        let dir = TempDir::new("cluster");
        let mut nodes = Vec::new();
        for index in 0..3 {
            let port = free_port();
            let server = Server::spawn(
                port,
                &dir.0.join(format!("node-{index}")),
                &[
                    "--cluster-enabled",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
            );
            nodes.push(server);
        }
        for node in &nodes {
            node.answering().await;
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .arg("--cluster-yes")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create");
        let cluster = Self { nodes, _dir: dir };
        for node in &cluster.nodes {
            let url = node.url();
            eventually(
                Duration::from_secs(20),
                "the cluster is ok on every node",
                || {
                    let url = url.clone();
                    async move {
                        let mut info = redis::cmd("CLUSTER");
                        info.arg("INFO");
                        query::<String>(&url, info)
                            .await
                            .is_some_and(|info| info.contains("cluster_state:ok"))
                    }
                },
            )
            .await;
        }
        cluster
    }

    /// The nodes' `host:port`s, as `REDIS_CLUSTER_NODES` takes them.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }

    /// The gateway's Redis: this cluster under `key_prefix`.
    pub fn config(&self, key_prefix: &str) -> RedisConfig {
        RedisConfig {
            topology: RedisTopology::Cluster {
                nodes: self.addresses(),
                password: None,
            },
            key_prefix: key_prefix.to_owned(),
            replica_ack: None,
        }
    }

    /// The slot `key` hashes to (`CLUSTER KEYSLOT`).
    pub async fn key_slot(&self, key: &str) -> i64 {
        let mut keyslot = redis::cmd("CLUSTER");
        keyslot.arg("KEYSLOT").arg(key);
        query(&self.nodes[0].url(), keyslot)
            .await
            .expect("CLUSTER KEYSLOT answers")
    }
}
