//! What MP calls did, per endpoint: counted by outcome and timed.

use std::time::Instant;

use metrics::{counter, describe_counter, describe_histogram, histogram};

use super::{Endpoint, MpError};

pub const REQUESTS: &str = "mp_gateway_mp_requests_total";
pub const DURATION: &str = "mp_gateway_mp_request_duration_seconds";
pub const RETRIES: &str = "mp_gateway_mp_retries_total";
pub const UNEXPECTED_VALUES: &str = "mp_gateway_mp_unexpected_values_total";

/// Registers the descriptions; call once the recorder is installed.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "MP calls finished, by endpoint and outcome (ok, business_error, null_data, timeout, unreachable, http_error, auth_failed, malformed, overloaded, cancelled); a call's GET retries are part of it"
    );
    describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "MP call latency by endpoint, retries and waits for the MP limits included"
    );
    describe_counter!(RETRIES, "MP GETs tried again, by endpoint");
    describe_counter!(
        UNEXPECTED_VALUES,
        "Values MP sent outside the documented set (left unset, or the row skipped, instead of failing the call), by MP field"
    );
}

/// MP sent `raw` for `field`, which the gateway does not understand: counted
/// and logged, so the call can still answer with what it did understand.
pub fn unexpected_value(field: &'static str, raw: &str) {
    counter!(UNEXPECTED_VALUES, "field" => field).increment(1);
    let raw: String = raw.chars().take(200).collect();
    tracing::warn!(
        field,
        raw,
        "MP sent a value outside the documented set; left unset"
    );
}

/// The `outcome` label of a finished call.
pub fn outcome<T>(result: &Result<T, MpError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(MpError::Business { .. }) => "business_error",
        Err(MpError::NullData(_)) => "null_data",
        Err(MpError::Timeout(_)) => "timeout",
        Err(MpError::NotSent(_) | MpError::Unreachable(_)) => "unreachable",
        Err(MpError::HttpStatus { .. }) => "http_error",
        Err(MpError::AuthFailed) => "auth_failed",
        Err(MpError::Malformed(_)) => "malformed",
        Err(MpError::Overloaded { .. }) => "overloaded",
    }
}

pub fn count_retry(endpoint: Endpoint) {
    counter!(RETRIES, "endpoint" => endpoint.name()).increment(1);
}

/// One MP call being made; counted once, as `cancelled` if it is dropped
/// unfinished (the caller gave up).
pub struct CallRecord {
    endpoint: Endpoint,
    started: Instant,
    span: tracing::Span,
    finished: bool,
}

impl CallRecord {
    pub fn start(endpoint: Endpoint, span: tracing::Span) -> Self {
        Self {
            endpoint,
            started: Instant::now(),
            span,
            finished: false,
        }
    }

    pub fn finish(&mut self, outcome: &'static str) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let endpoint = self.endpoint.name();
        counter!(REQUESTS, "endpoint" => endpoint, "outcome" => outcome).increment(1);
        histogram!(DURATION, "endpoint" => endpoint).record(self.started.elapsed().as_secs_f64());
        self.span.record("outcome", outcome);
        let failed = !matches!(outcome, "ok" | "null_data" | "business_error");
        self.span
            .record("otel.status_code", if failed { "error" } else { "ok" });
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.finish("cancelled");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_failure_has_its_outcome_label() {
        let cases: [(Result<(), MpError>, &str); 9] = [
            (Ok(()), "ok"),
            (
                Err(MpError::Business {
                    code: 500,
                    msg: "no".into(),
                }),
                "business_error",
            ),
            (Err(MpError::NullData("order X".into())), "null_data"),
            (Err(MpError::Timeout(Duration::from_secs(1))), "timeout"),
            (Err(MpError::NotSent("refused".into())), "unreachable"),
            (Err(MpError::http(502)), "http_error"),
            (Err(MpError::AuthFailed), "auth_failed"),
            (Err(MpError::Malformed("html".into())), "malformed"),
            (
                Err(MpError::Overloaded {
                    limit: super::super::UpstreamLimit::Rate,
                    retry_after: Duration::from_millis(5),
                }),
                "overloaded",
            ),
        ];
        for (result, expected) in cases {
            assert_eq!(outcome(&result), expected, "{result:?}");
        }
    }
}
