use std::time::Duration;

/// Why an MP call did not produce a usable answer.
///
/// `Clone` so one shared fetch can hand its failure to every caller waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MpError {
    /// No connection could be made: the request was never sent.
    #[error("MP could not be reached: {0}")]
    NotSent(String),
    /// The connection failed while the request was under way.
    #[error("MP could not be reached: {0}")]
    Unreachable(String),
    #[error("MP did not answer within {0:?}")]
    Timeout(Duration),
    #[error("MP rejected the request signature (HTTP 401)")]
    AuthFailed,
    /// A non-2xx answer (not 401), with what MP's body said, if anything.
    #[error("MP answered HTTP {status}{}", msg.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    HttpStatus {
        status: u16,
        /// The `code` of MP's envelope, when the body was one.
        upstream_code: Option<i64>,
        /// MP's `msg`, or the body's text.
        msg: Option<String>,
    },
    #[error("MP sent an answer the gateway cannot read: {0}")]
    Malformed(String),
    #[error("MP refused the request: {msg} (code {code})")]
    Business { code: i64, msg: String },
    /// MP's way of saying "no such record": code 200 with every field null.
    /// Holds what was looked for, e.g. "order ORDER_1".
    #[error("MP has no record of {0}")]
    NullData(String),
    /// The gateway's own upstream limit refused the call: it was not sent.
    #[error("{limit}; retry in {retry_after:?}")]
    Overloaded {
        limit: UpstreamLimit,
        /// When a retry has a fair chance.
        retry_after: Duration,
    },
}

/// Which of the gateway's limits on MP calls was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamLimit {
    #[error("too many MP calls in flight (MP_MAX_CONCURRENCY)")]
    Concurrency,
    #[error("too many MP calls per second (MP_RATE_LIMIT_PER_SEC)")]
    Rate,
}

impl MpError {
    /// An HTTP status whose body said nothing readable.
    pub fn http(status: u16) -> Self {
        Self::HttpStatus {
            status,
            upstream_code: None,
            msg: None,
        }
    }

    /// Whether MP may have acted on the request although the gateway got no
    /// usable answer: a retry could then do the same thing twice.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Unreachable(_) | Self::Malformed(_) | Self::NullData(_) => {
                true
            }
            Self::HttpStatus { status, .. } => *status >= 500,
            Self::NotSent(_)
            | Self::AuthFailed
            | Self::Business { .. }
            | Self::Overloaded { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_refused_by_a_gateway_limit_was_surely_not_acted_on() {
        for limit in [UpstreamLimit::Concurrency, UpstreamLimit::Rate] {
            let error = MpError::Overloaded {
                limit,
                retry_after: Duration::from_millis(200),
            };
            assert!(!error.outcome_unknown(), "{error}");
        }
    }
}
