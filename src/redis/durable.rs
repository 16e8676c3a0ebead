//! Writes that must survive a failover: with `REDIS_MIN_REPLICAS_ACK` set,
//! the write and a `WAIT replicas timeout` go out as one pipeline, so both
//! run on the same connection (WAIT counts that connection's writes) and, in
//! a cluster, on the node owning the write's key. Too few replicas in time is
//! an error, never a silent success: the write is on the primary only, and a
//! failover may lose it.

use std::time::Duration;

use redis::{Cmd, FromRedisValue, RedisError, Script, ToRedisArgs};

use super::Connection;
use crate::config::ReplicaAck;

/// `mp_gateway_redis_replica_ack_timeouts_total{write}`: writes that too few
/// replicas acknowledged in time.
pub const REPLICA_ACK_TIMEOUTS: &str = "mp_gateway_redis_replica_ack_timeouts_total";

pub(super) fn describe() {
    metrics::describe_counter!(
        REPLICA_ACK_TIMEOUTS,
        "Writes that fewer than REDIS_MIN_REPLICAS_ACK replicas acknowledged within REDIS_REPLICA_ACK_TIMEOUT_MS (write=alarm|idempotency_claim|idempotency_record|consumer_ack); each failed its call"
    );
}

/// A write that failed, or that is on the primary only.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error(
        "only {acked} of {wanted} Redis replicas acknowledged the write within {timeout:?}; a failover may lose it"
    )]
    NotAcknowledged {
        acked: usize,
        wanted: usize,
        timeout: Duration,
    },
}

/// Runs `cmd`, then, when `ack` is set, waits for that many replicas to have
/// it. `write` names the write in the metric.
pub async fn write<T: FromRedisValue>(
    conn: &mut Connection,
    cmd: Cmd,
    ack: Option<ReplicaAck>,
    write: &'static str,
) -> Result<T, WriteError> {
    let Some(ack) = ack else {
        return Ok(cmd.query_async(conn).await?);
    };
    let mut pipeline = redis::pipe();
    pipeline
        .add_command(cmd)
        .cmd("WAIT")
        .arg(ack.replicas)
        .arg(u64::try_from(ack.timeout.as_millis()).unwrap_or(u64::MAX));
    let (value, acked): (T, usize) = pipeline.query_async(conn).await?;
    if acked < ack.replicas {
        metrics::counter!(REPLICA_ACK_TIMEOUTS, "write" => write).increment(1);
        return Err(WriteError::NotAcknowledged {
            acked,
            wanted: ack.replicas,
            timeout: ack.timeout,
        });
    }
    Ok(value)
}

/// A Lua script that writes. Without replica acknowledgement it runs as
/// `EVALSHA` (loaded once); with it, as `EVAL` in the pipeline with `WAIT`.
pub struct DurableScript {
    script: Script,
    code: &'static str,
}

/// One call of a [`DurableScript`]: its keys and arguments.
pub struct ScriptCall<'a> {
    script: &'a DurableScript,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl DurableScript {
    pub fn new(code: &'static str) -> Self {
        Self {
            script: Script::new(code),
            code,
        }
    }

    pub fn key(&self, key: impl ToRedisArgs) -> ScriptCall<'_> {
        ScriptCall {
            script: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
        .key(key)
    }
}

impl ScriptCall<'_> {
    pub fn key(mut self, key: impl ToRedisArgs) -> Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub fn arg(mut self, arg: impl ToRedisArgs) -> Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// Runs the script; see [`write`] for `ack` and `write`.
    pub async fn invoke<T: FromRedisValue>(
        self,
        conn: &mut Connection,
        ack: Option<ReplicaAck>,
        write: &'static str,
    ) -> Result<T, WriteError> {
        if ack.is_none() {
            let mut invocation = self.script.script.prepare_invoke();
            for key in &self.keys {
                invocation.key(key);
            }
            for arg in &self.args {
                invocation.arg(arg);
            }
            return Ok(invocation.invoke_async(conn).await?);
        }
        let mut eval = redis::cmd("EVAL");
        eval.arg(self.script.code)
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        self::write(conn, eval, ack, write).await
    }
}
