//! Properties of the parsers, checked on generated input: what a valid value
//! looks like round-trips, and what breaks one is caught.

use mp_gateway::domain::{ActivationCode, Iccid, Price, luhn_check_digit};
use mp_gateway::mp::signing::{canonical_query, parse_query};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use proptest::sample::Index;

const APPLE_INSTALL: &str = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=";
const ANDROID_INSTALL: &str = "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=";

/// 18 to 22 digits: a 17-21 digit payload and its Luhn check digit.
fn valid_iccid() -> impl Strategy<Value = String> {
    "[0-9]{17,21}".prop_map(|payload| {
        let check = luhn_check_digit(&payload);
        format!("{payload}{check}")
    })
}

/// A hostname: dot-separated labels of letters and digits, hyphens inside.
fn smdp_address() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,14}[a-zA-Z0-9])?", 1..5)
        .prop_map(|labels| labels.join("."))
}

fn matching_id() -> impl Strategy<Value = String> {
    "[A-Z0-9-]{0,40}"
}

proptest! {
    #[test]
    fn a_payload_completed_by_its_luhn_check_digit_is_a_valid_iccid(iccid in valid_iccid()) {
        let parsed = Iccid::parse(&iccid).map(|i| i.as_str().to_owned());
        prop_assert_eq!(parsed, Ok(iccid));
    }

    #[test]
    fn changing_any_single_digit_of_a_valid_iccid_makes_it_fail(
        iccid in valid_iccid(),
        position in any::<Index>(),
        shift in 1u8..10,
    ) {
        let mut digits = iccid.into_bytes();
        let i = position.index(digits.len());
        digits[i] = b'0' + (digits[i] - b'0' + shift) % 10;
        let changed = String::from_utf8(digits).expect("digits stay ASCII");
        prop_assert!(Iccid::parse(&changed).is_err(), "{} was accepted", changed);
    }

    #[test]
    fn an_lpa_string_parses_back_to_its_address_and_matching_id(
        smdp in smdp_address(),
        id in matching_id(),
    ) {
        let raw = format!("LPA:1${smdp}${id}");
        let code = ActivationCode::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(code.smdp_address(), smdp.as_str());
        prop_assert_eq!(code.matching_id(), id.as_str());
        prop_assert_eq!(code.as_str(), raw.as_str());
    }

    #[test]
    fn an_lpa_string_with_oid_and_confirmation_flag_keeps_its_matching_id(
        smdp in smdp_address(),
        id in matching_id(),
        oid in "[0-9]{1,3}(\\.[0-9]{1,3}){0,5}",
        flag in "[01]",
    ) {
        let raw = format!("LPA:1${smdp}${id}${oid}${flag}");
        let code = ActivationCode::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(code.smdp_address(), smdp.as_str());
        prop_assert_eq!(code.matching_id(), id.as_str());
    }

    #[test]
    fn install_urls_percent_decode_back_to_the_activation_code(
        smdp in smdp_address(),
        id in matching_id(),
    ) {
        let raw = format!("LPA:1${smdp}${id}");
        let code = ActivationCode::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (url, prefix) in [
            (code.ios_install_url(), APPLE_INSTALL),
            (code.android_install_url(), ANDROID_INSTALL),
        ] {
            let carddata = url.strip_prefix(prefix).ok_or_else(|| TestCaseError::fail(url.clone()))?;
            let decoded = percent_decode_str(carddata).decode_utf8();
            prop_assert_eq!(decoded.as_deref(), Ok(raw.as_str()));
        }
    }

    // `[0-9]` rather than `\d`: proptest's `\d` is Unicode and yields digits
    // such as '٣' that no price may hold.
    #[test]
    fn a_plain_decimal_price_parses_and_keeps_its_text(raw in "(0|[1-9][0-9]{0,14})(\\.[0-9]{1,6})?") {
        let parsed = Price::parse(&raw).map(|p| p.as_str().to_owned());
        prop_assert_eq!(parsed, Ok(raw));
    }

    #[test]
    fn any_text_is_parsed_or_rejected_without_a_panic(raw in any::<String>()) {
        let _ = Iccid::parse(&raw);
        let _ = Price::parse(&raw);
        let _ = ActivationCode::parse(&raw);
    }

    #[test]
    fn canonicalising_a_canonical_query_changes_nothing(raw in "[a-zA-Z0-9=&%+ é~*'()._-]{0,60}") {
        let once = canonical_query(parse_query(&raw));
        let twice = canonical_query(parse_query(&once));
        prop_assert_eq!(once, twice);
    }
}
