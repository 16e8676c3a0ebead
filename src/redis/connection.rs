//! One connection type for every way to reach Redis, so callers write
//! `cmd.query_async(&mut conn)` and `script.invoke_async(&mut conn)` whatever
//! Redis is.

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::sentinel::SentinelConnection;

/// A multiplexed connection to where the gateway's keys live (cheap to clone).
#[derive(Clone)]
pub enum Connection {
    /// `REDIS_URL`, remade after failures.
    Single(ConnectionManager),
    /// `REDIS_URL`, one connection that is not remade (blocking reads).
    Direct(MultiplexedConnection),
    /// `REDIS_SENTINELS`: the primary they name, found again after failures.
    Sentinel(SentinelConnection),
    /// `REDIS_CLUSTER_NODES`: each key's command goes to the node owning its slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Direct(conn) => conn.req_packed_command(cmd),
            Self::Sentinel(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Direct(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Direct(conn) => conn.get_db(),
            Self::Sentinel(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}
