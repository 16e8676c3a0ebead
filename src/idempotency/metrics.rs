//! What the idempotency records did for repeated request ids.

use metrics::{counter, describe_counter};

pub const REPLAYS: &str = "mp_gateway_idempotency_replays_total";
pub const CONFLICTS: &str = "mp_gateway_idempotency_conflicts_total";
pub const UNKNOWN_OUTCOMES: &str = "mp_gateway_idempotency_unknown_outcomes_total";

/// Registers the descriptions; call once the recorder is installed.
pub fn describe() {
    describe_counter!(
        REPLAYS,
        "Repeated requests answered with the stored first result, without calling MP (rpc=CreateOrder|TopUpOrder)"
    );
    describe_counter!(
        CONFLICTS,
        "Requests refused because their request_id was used with other parameters (rpc=...)"
    );
    describe_counter!(
        UNKNOWN_OUTCOMES,
        "Repeated requests told ABORTED/OUTCOME_UNKNOWN because the first call's outcome is unknown (rpc=...)"
    );
}

pub fn replay(rpc: &'static str) {
    counter!(REPLAYS, "rpc" => rpc).increment(1);
}

pub fn conflict(rpc: &'static str) {
    counter!(CONFLICTS, "rpc" => rpc).increment(1);
}

pub fn unknown_outcome(rpc: &'static str) {
    counter!(UNKNOWN_OUTCOMES, "rpc" => rpc).increment(1);
}
