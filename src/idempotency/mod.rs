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
    /// The claiming call's own random token: only it may renew its claim or
    /// replace it with the outcome (records stored before have none).
    #[serde(default)]
    token: String,
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

/// How long records live and how long a claim lives unless renewed.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyConfig {
    /// `IDEMPOTENCY_TTL_SECS`: how long an outcome is kept.
    pub ttl: Duration,
    /// How long an "in progress" claim lives unless its holder renews it (it
    /// does, every third of this, while its call runs). A claim whose holder
    /// gave up (its `SET NX` landed after it timed out, or it crashed) lapses
    /// after this, and the id may be used again.
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
            Some(redis) => IdempotencyStore::Redis(RedisRecords::new(redis)),
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
            let running = tokio::spawn(crate::trace_context::carried(async move {
                call.await.map_err(RunError::Mp)
            }));
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
                token: uuid::Uuid::new_v4().simple().to_string(),
            };
            let existing = self.store.claim(&key, &claim, self.config.lease).await?;
            let Some(existing) = existing else {
                let this = self.clone();
                let running = tokio::spawn(crate::trace_context::carried(async move {
                    this.run_claimed(key, claim, call).await
                }));
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
                State::InProgress => Err(IdempotencyError::InProgress(request_id.to_string())),
                State::Unknown => Err(IdempotencyError::OutcomeUnknown(request_id.to_string())),
            };
        }
        Err(IdempotencyError::NotFound(request_id.to_string()))
    }

    /// Runs the claimed call to its end, renewing the claim meanwhile, then
    /// stores its outcome (in the background until the store takes it).
    async fn run_claimed(
        self,
        key: String,
        claim: Record,
        call: impl Future<Output = Result<Outcome, MpError>>,
    ) -> Result<Outcome, RunError> {
        let result = tokio::select! {
            result = call => result,
            never = self.keep_claim(&key, &claim.token) => match never {},
        };
        let next = match &result {
            Ok(outcome) => Some(State::Done {
                outcome: outcome.clone(),
            }),
            Err(error) if error.outcome_unknown() => Some(State::Unknown),
            // MP surely did nothing: forget the id so a retry may try again.
            Err(_) => None,
        };
        let token = claim.token.clone();
        let record = next.map(|state| Record { state, ..claim });
        self.settle(key, &token, record, result.as_ref().ok()).await;
        result.map_err(RunError::Mp)
    }

    /// Renews the claim every third of its lease, for as long as it is polled.
    async fn keep_claim(&self, key: &str, token: &str) -> std::convert::Infallible {
        let every = self.config.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match self.store.renew(key, token, self.config.lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(
                        key,
                        "the claim of a running order call lapsed (the store was away longer than its lease) or was taken; its outcome will not replace another call's record"
                    );
                    return std::future::pending().await;
                }
                Err(error) => {
                    tracing::warn!(%error, key, "could not renew the claim of a running order call")
                }
            }
        }
    }

    /// Replaces the claim with `record` (or removes it when `None`). A record
    /// the store does not take now is retried in the background, with
    /// backoff, for as long as records are kept: a claim left behind would
    /// lapse after its lease and let a retry order again.
    async fn settle(
        &self,
        key: String,
        token: &str,
        record: Option<Record>,
        created: Option<&Outcome>,
    ) {
        let Some(record) = record else {
            if let Err(error) = self.store.settle(&key, token, None, self.config.ttl).await {
                // Nothing reached MP; the claim lapses by itself after its lease.
                tracing::warn!(%error, key, "could not release the request id of an order MP never received; it is released when its claim lapses");
            }
            return;
        };
        match self
            .store
            .settle(&key, &record.token, Some(&record), self.config.ttl)
            .await
        {
            Ok(true) => return,
            Ok(false) => {
                lost_claim(&key, &record);
                return;
            }
            Err(error) => match created {
                Some(outcome) => {
                    tracing::error!(%error, key, ?outcome, "MP carried out the order but its record could not be stored yet; retrying in the background")
                }
                None => {
                    tracing::error!(%error, key, "the outcome of an order call is unknown and could not be stored yet; retrying in the background")
                }
            },
        }
        let this = self.clone();
        tokio::spawn(async move { this.settle_later(key, record).await });
    }

    async fn settle_later(self, key: String, record: Record) {
        let give_up = Instant::now() + self.config.ttl;
        let mut pause = Duration::from_millis(100);
        let mut attempts = 1u32;
        while Instant::now() < give_up {
            tokio::time::sleep(pause).await;
            // Short pauses: once the store is back, the record must land before the claim lapses.
            pause = (pause * 2).min(Duration::from_secs(1));
            attempts += 1;
            match self
                .store
                .settle(&key, &record.token, Some(&record), self.config.ttl)
                .await
            {
                Ok(true) => {
                    tracing::info!(key, attempts, "the record of the order call is stored now");
                    return;
                }
                Ok(false) => return lost_claim(&key, &record),
                Err(error) => {
                    tracing::debug!(%error, key, "the record of the order call still cannot be stored")
                }
            }
        }
        tracing::error!(key, ?record.state, "gave up storing the record of an order call: a retry with its request id may order again");
    }
}

/// Another call holds the id now: the first claim lapsed before its outcome
/// could be stored (the store was away longer than the lease).
fn lost_claim(key: &str, record: &Record) {
    tracing::error!(key, ?record.state, "the claim lapsed before the outcome of the order call was stored, and another call holds the request id now: it may have ordered again");
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
    /// Claims `key` for `lease` unless it exists; returns the existing record if it does.
    async fn claim(
        &self,
        key: &str,
        record: &Record,
        lease: Duration,
    ) -> Result<Option<Record>, IdempotencyError> {
        match self {
            Self::Memory(store) => Ok(store.claim(key, record, lease)),
            Self::Redis(store) => store.claim(key, record, lease).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, IdempotencyError> {
        match self {
            Self::Memory(store) => Ok(store.get(key)),
            Self::Redis(store) => store.get(key).await,
        }
    }

    async fn renew(
        &self,
        key: &str,
        token: &str,
        lease: Duration,
    ) -> Result<bool, IdempotencyError> {
        match self {
            Self::Memory(store) => Ok(store.renew(key, token, lease)),
            Self::Redis(store) => store.renew(key, token, lease).await,
        }
    }

    /// Stores `record` (or removes the claim) unless another token holds `key`.
    async fn settle(
        &self,
        key: &str,
        token: &str,
        record: Option<&Record>,
        ttl: Duration,
    ) -> Result<bool, IdempotencyError> {
        match self {
            Self::Memory(store) => Ok(store.settle(key, token, record, ttl)),
            Self::Redis(store) => store.settle(key, token, record, ttl).await,
        }
    }
}
