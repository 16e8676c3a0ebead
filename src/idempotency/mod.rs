//! No double orders: CreateOrder and TopUpOrder run at most once per
//! caller-given `request_id` (DESIGN.md section 5). The first call claims the
//! id, runs, and stores its outcome; a retry with the same parameters gets
//! that outcome without calling MP; other parameters are refused; a
//! concurrent duplicate waits for the first; an unknown outcome (MP timed
//! out) is reported as such instead of ordering again. Stored in Redis when
//! configured (shared by replicas), else in process.

mod memory_records;
pub(crate) mod metrics;
mod redis_records;

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::RequestId;
use crate::mp::MpError;
use crate::redis::Redis;
use memory_records::MemoryRecords;
use redis_records::RedisRecords;

/// What a finished CreateOrder or TopUpOrder produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Created {
        order_code: String,
        iccid: String,
        activation_code: String,
    },
    ToppedUp {
        order_code: String,
        /// Absent when MP sent null (records stored before were always a number).
        renew_period: Option<u32>,
    },
}

/// One request id's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    state: State,
    /// When the first call claimed the id (Unix milliseconds).
    claimed_at_millis: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum State {
    InProgress,
    Done {
        outcome: Outcome,
    },
    /// MP may or may not have acted; only a person (or MP's order list) can tell.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error(
        "request_id {0:?} was already used with other parameters; use a new request_id for a new request"
    )]
    Conflict(String),
    #[error(
        "a request with request_id {0:?} is still in progress; retry shortly to get its result"
    )]
    InProgress(String),
    #[error(
        "the outcome of the request with request_id {0:?} is unknown (it may have reached MP, whose answer was lost or unreadable); check the order before ordering again with a new request_id"
    )]
    OutcomeUnknown(String),
    #[error("the idempotency store is unavailable, so the request was not sent to MP: {0}")]
    Store(String),
    #[error(
        "no CreateOrder or TopUpOrder with request_id {0:?} is on record (never sent with that id, refused by MP, or older than the records are kept)"
    )]
    NotFound(String),
}

/// Stored state per request id.
#[derive(Clone)]
enum IdempotencyStore {
    Memory(MemoryRecords),
    Redis(RedisRecords),
}

/// How long records live and how long an unfinished first call is trusted.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyConfig {
    /// `IDEMPOTENCY_TTL_SECS`.
    pub ttl: Duration,
    /// After this, an in-progress record whose owner never finished (crashed)
    /// counts as an unknown outcome. The MP timeout plus a margin.
    pub lease: Duration,
}

#[derive(Clone)]
pub struct Idempotency {
    store: IdempotencyStore,
    config: IdempotencyConfig,
}

/// The hash of the parameters that reach MP: the same id with another
/// fingerprint is another request.
pub fn fingerprint(parts: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(parts).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

impl Idempotency {
    /// Records in Redis (shared by every replica) when there is a Redis, else in process.
    pub fn new(config: IdempotencyConfig, redis: Option<&Redis>) -> Self {
        let store = match redis {
            Some(redis) => {
                IdempotencyStore::Redis(RedisRecords::new(redis.shared(), redis.key_prefix()))
            }
            None => IdempotencyStore::Memory(MemoryRecords::default()),
        };
        Self { store, config }
    }

    /// Runs `call` at most once for (`scope`, `request_id`) with this
    /// `fingerprint`; returns the first run's outcome to every repeat.
    /// `wait` bounds how long a duplicate waits for a first call in progress.
    ///
    /// Once claimed, the call and the recording of its outcome run in a task
    /// of their own: a caller that goes away (cancels, or its deadline fires)
    /// does not cut the MP call short, so a retry gets its real outcome rather
    /// than OUTCOME_UNKNOWN. The caller itself is answered by `answer_by` (its
    /// deadline, less a margin): if the call is still running then, it gets
    /// ABORTED `REQUEST_IN_PROGRESS` (a generated id, which nobody can retry:
    /// `OUTCOME_UNKNOWN`).
    pub async fn run<Fut>(
        &self,
        scope: &'static str,
        request_id: &RequestId,
        fingerprint: String,
        wait: Duration,
        answer_by: Option<Instant>,
        call: Fut,
    ) -> Result<Outcome, RunError>
    where
        Fut: Future<Output = Result<Outcome, MpError>> + Send + 'static,
    {
        if request_id.was_generated() {
            // No caller can repeat an id it never saw: nothing to record.
            let running = tokio::spawn(async move { call.await.map_err(RunError::Mp) });
            return answer(running, answer_by, || {
                IdempotencyError::OutcomeUnknown(request_id.to_string())
            })
            .await;
        }
        let key = format!("{scope}:{}", request_id.as_str());
        let give_up = Instant::now() + wait;
        let mut pause = Duration::from_millis(10);
        loop {
            let claim = Record {
                fingerprint: fingerprint.clone(),
                state: State::InProgress,
                claimed_at_millis: crate::millis::now(),
            };
            let existing = self.store.claim(&key, &claim, self.config.ttl).await?;
            let Some(existing) = existing else {
                let this = self.clone();
                let running =
                    tokio::spawn(async move { this.run_claimed(&key, claim, call).await });
                return answer(running, answer_by, || {
                    IdempotencyError::InProgress(request_id.to_string())
                })
                .await;
            };
            if existing.fingerprint != fingerprint {
                metrics::conflict(scope);
                return Err(IdempotencyError::Conflict(request_id.to_string()).into());
            }
            match existing.state {
                State::Done { outcome } => {
                    metrics::replay(scope);
                    return Ok(outcome);
                }
                State::Unknown => {
                    metrics::unknown_outcome(scope);
                    return Err(IdempotencyError::OutcomeUnknown(request_id.to_string()).into());
                }
                State::InProgress if self.lease_expired(&existing) => {
                    metrics::unknown_outcome(scope);
                    return Err(IdempotencyError::OutcomeUnknown(request_id.to_string()).into());
                }
                State::InProgress if Instant::now() + pause > give_up => {
                    return Err(IdempotencyError::InProgress(request_id.to_string()).into());
                }
                State::InProgress => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        }
    }

    /// The stored outcome of the first `scopes` entry that has a record for
    /// `request_id`, as a repeat of that call would get it, without running anything.
    pub async fn lookup(
        &self,
        scopes: &[&'static str],
        request_id: &RequestId,
    ) -> Result<Outcome, IdempotencyError> {
        for scope in scopes {
            let key = format!("{scope}:{}", request_id.as_str());
            let Some(record) = self.store.get(&key).await? else {
                continue;
            };
            return match record.state {
                State::Done { outcome } => Ok(outcome),
                State::InProgress if !self.lease_expired(&record) => {
                    Err(IdempotencyError::InProgress(request_id.to_string()))
                }
                State::InProgress | State::Unknown => {
                    Err(IdempotencyError::OutcomeUnknown(request_id.to_string()))
                }
            };
        }
        Err(IdempotencyError::NotFound(request_id.to_string()))
    }

    async fn run_claimed(
        &self,
        key: &str,
        claim: Record,
        call: impl Future<Output = Result<Outcome, MpError>>,
    ) -> Result<Outcome, RunError> {
        let result = call.await;
        let next = match &result {
            Ok(outcome) => Some(State::Done {
                outcome: outcome.clone(),
            }),
            Err(error) if error.outcome_unknown() => Some(State::Unknown),
            // MP surely did nothing: forget the id so a retry may try again.
            Err(_) => None,
        };
        let stored = match next {
            Some(state) => {
                let record = Record { state, ..claim };
                self.store.put(key, &record, self.config.ttl).await
            }
            None => self.store.remove(key).await,
        };
        if let Err(error) = stored {
            // The claim stays "in progress" and expires into "unknown" after the lease:
            // repeats are refused rather than ordering twice.
            tracing::error!(%error, key, "could not record the outcome of an idempotent call");
        }
        result.map_err(RunError::Mp)
    }

    fn lease_expired(&self, record: &Record) -> bool {
        let age = crate::millis::now().saturating_sub(record.claimed_at_millis);
        u128::try_from(age).unwrap_or(0) > self.config.lease.as_millis()
    }
}

/// The running call's result, or `late()` when `answer_by` comes first (the call goes on).
async fn answer(
    running: tokio::task::JoinHandle<Result<Outcome, RunError>>,
    answer_by: Option<Instant>,
    late: impl FnOnce() -> IdempotencyError,
) -> Result<Outcome, RunError> {
    let finished = match answer_by {
        Some(at) => match tokio::time::timeout_at(at.into(), running).await {
            Ok(finished) => finished,
            Err(_still_running) => return Err(late().into()),
        },
        None => running.await,
    };
    // The task panicked: whether MP acted is unknown.
    finished.unwrap_or_else(|panicked| {
        tracing::error!(error = %panicked, "an order call panicked");
        Err(late().into())
    })
}

/// Why an idempotent call produced no outcome.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Mp(MpError),
}

impl IdempotencyStore {
    /// Stores `record` unless the key exists; returns the existing record if it does.
    async fn claim(
        &self,
        key: &str,
        record: &Record,
        ttl: Duration,
    ) -> Result<Option<Record>, IdempotencyError> {
        match self {
            Self::Memory(store) => Ok(store.claim(key, record, ttl)),
            Self::Redis(store) => store.claim(key, record, ttl).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, IdempotencyError> {
        match self {
            Self::Memory(store) => Ok(store.get(key)),
            Self::Redis(store) => store.get(key).await,
        }
    }

    async fn put(&self, key: &str, record: &Record, ttl: Duration) -> Result<(), IdempotencyError> {
        match self {
            Self::Memory(store) => {
                store.put(key, record, ttl);
                Ok(())
            }
            Self::Redis(store) => store.put(key, record, ttl).await,
        }
    }

    async fn remove(&self, key: &str) -> Result<(), IdempotencyError> {
        match self {
            Self::Memory(store) => {
                store.remove(key);
                Ok(())
            }
            Self::Redis(store) => store.remove(key).await,
        }
    }
}
