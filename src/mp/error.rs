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
    #[error("MP answered HTTP {0}")]
    HttpStatus(u16),
    #[error("MP sent an answer the gateway cannot read: {0}")]
    Malformed(String),
    #[error("MP refused the request: {msg} (code {code})")]
    Business { code: i64, msg: String },
    /// MP's way of saying "no such record": code 200 with every field null.
    /// Holds what was looked for, e.g. "order ORDER_1".
    #[error("MP has no record of {0}")]
    NullData(String),
}

impl MpError {
    /// Whether MP may have acted on the request although the gateway got no
    /// usable answer: a retry could then do the same thing twice.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Unreachable(_) | Self::Malformed(_) | Self::NullData(_) => {
                true
            }
            Self::HttpStatus(status) => *status >= 500,
            Self::NotSent(_) | Self::AuthFailed | Self::Business { .. } => false,
        }
    }
}
