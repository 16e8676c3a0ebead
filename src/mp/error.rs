use std::time::Duration;

/// Why an MP call did not produce a usable answer.
///
/// `Clone` so one shared fetch can hand its failure to every caller waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MpError {
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
    #[error("MP has no such record")]
    NullData,
}
