//! Every MP answer the client reads, decoded exactly as the client does:
//! `serde_json::from_slice::<wire::Envelope<_>>`, then the matching `decode::*`.
//! Any input may be an error; none may panic.
#![no_main]

use chrono::FixedOffset;
use libfuzzer_sys::fuzz_target;
use mp_gateway::mp::{MpClock, decode, wire};
use prost_types::Timestamp;
use serde_json::from_slice;

/// A time the gateway hands its callers must be one protobuf can hold.
fn assert_representable(times: &[&Option<Timestamp>]) {
    for t in times.iter().copied().flatten() {
        assert!(decode::TIMESTAMP_SECONDS.contains(&t.seconds), "{t:?}");
        assert_eq!(t.nanos, 0, "{t:?}");
    }
}

fuzz_target!(|body: &[u8]| {
    let clock = MpClock {
        zone: FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset"),
    };

    // v2/productList
    if let Ok(env) = from_slice::<wire::Envelope<Vec<wire::ProductRow>>>(body) {
        for row in env.data.unwrap_or_default() {
            let _ = decode::product(row);
        }
    }
    // v2/activationCode
    if let Ok(env) = from_slice::<wire::Envelope<wire::ActivationData>>(body)
        && let Ok(order) = decode::created_order(env.data)
    {
        // Any qrCode is kept (the order exists); only an `LPA:1$` one has parts.
        let _ = mp_gateway::domain::ActivationCode::parse(&order.activation_code);
    }
    // v2/topUp
    if let Ok(env) = from_slice::<wire::Envelope<wire::TopUpData>>(body) {
        let _ = decode::top_up(env.data);
    }
    // queryOrderStatus
    if let Ok(env) = from_slice::<wire::Envelope<Vec<wire::OrderStatusRow>>>(body)
        && let Ok(rows) = decode::non_null_rows(env.data, wire::OrderStatusRow::is_null)
    {
        for row in rows {
            if let Ok(p) = decode::order_package(row, clock) {
                assert_representable(&[&p.actual_start_time, &p.planned_end_time]);
            }
        }
    }
    // queryTraffic
    if let Ok(env) = from_slice::<wire::Envelope<Vec<wire::TrafficRow>>>(body)
        && let Ok(rows) = decode::non_null_rows(env.data, wire::TrafficRow::is_null)
    {
        for row in rows {
            if let Ok(t) = decode::package_traffic(row, clock) {
                assert_representable(&[&t.actual_start_time, &t.planned_end_time]);
            }
        }
    }
    // v2/queryHistoryDailyTraffic
    if let Ok(env) = from_slice::<wire::Envelope<wire::DailyTrafficData>>(body)
        && let Ok(daily) = decode::daily_traffic(env.data, clock)
    {
        assert_representable(&[&daily.actual_start_time, &daily.planned_end_time]);
        for day in &daily.days {
            assert_eq!(day.date, day.date.trim(), "dates are trimmed");
        }
    }
    // switchOrder and saveAlarmCallbackInterface: only the envelope is read.
    let _ = from_slice::<wire::Envelope<serde_json::Value>>(body);
});
