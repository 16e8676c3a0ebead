//! MP's alarm callback body (JSON or form): any bytes parse or are refused,
//! never a panic; what parses has its required fields and a sane percentage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mp_gateway::alarms::callback_body::parse_callback;

fuzz_target!(|body: &[u8]| {
    if let Ok(report) = parse_callback(body, 0) {
        assert!(!report.eid.is_empty());
        assert!(!report.package_code.is_empty());
        assert!(!report.order_code.is_empty());
        assert!(report.used_percent <= 9999);
        assert!(!report.dedup_key().is_empty());
    }
});
