//! `ActivationCode::parse` on any text; when it accepts, the parts, the install
//! links and the QR PNG must all agree with the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mp_gateway::domain::ActivationCode;
use percent_encoding::percent_decode_str;

const APPLE: &str = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=";
const ANDROID: &str = "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=";

fuzz_target!(|raw: &str| {
    let Ok(code) = ActivationCode::parse(raw) else {
        return;
    };
    let input = raw.trim();
    assert_eq!(code.as_str(), input);
    assert_eq!(code.to_string(), input);

    // `LPA:1$<smdp>$<matching id>` is the start of the input; what follows, if
    // anything, is the optional `$<oid>` and `$<confirmation flag>`.
    let head = format!("LPA:1${}${}", code.smdp_address(), code.matching_id());
    let rest = input
        .strip_prefix(head.as_str())
        .unwrap_or_else(|| panic!("{head:?} does not start {input:?}"));
    assert!(rest.is_empty() || rest.starts_with('$'), "rest {rest:?}");
    assert!(rest.matches('$').count() <= 2, "rest {rest:?}");
    assert!(!code.smdp_address().is_empty());

    for (url, prefix) in [
        (code.ios_install_url(), APPLE),
        (code.android_install_url(), ANDROID),
    ] {
        let carddata = url
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{url:?} does not start with {prefix:?}"));
        assert!(
            !carddata.contains(['&', '#', '?', '=', ' ', '$']),
            "{url:?}"
        );
        let decoded = percent_decode_str(carddata).decode_utf8();
        assert_eq!(decoded.as_deref(), Ok(input), "{url:?}");
    }

    if let Ok(png) = mp_gateway::domain::qr_png(code.as_str()) {
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    }
});
