//! The canonical query that is signed: parsing any raw query and canonicalising
//! it must not panic, and the canonical form must be a fixed point (MP's
//! gateway canonicalises what we send again; both must sign the same string).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mp_gateway::mp::signing::{canonical_query, parse_query};

fuzz_target!(|raw: &str| {
    let once = canonical_query(parse_query(raw));
    let twice = canonical_query(parse_query(&once));
    assert_eq!(once, twice, "canonical form of {raw:?} is not stable");
});
