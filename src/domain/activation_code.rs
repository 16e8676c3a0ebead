use std::fmt;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// An eSIM activation code as MP returns it (`qrCode`): `LPA:1$<SM-DP+ address>$<matching id>`,
/// optionally followed by `$<SM-DP+ OID>` and `$<confirmation code required flag>`
/// (GSMA SGP.22 section 4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationCode {
    full: String,
    smdp_address: String,
    matching_id: String,
}

/// Why a string is not an activation code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivationCodeError {
    #[error("does not start with \"LPA:1$\"")]
    WrongPrefix,
    #[error("has no SM-DP+ address")]
    MissingSmdpAddress,
    #[error("has no matching id part")]
    MissingMatchingId,
    #[error("has more than five '$'-separated parts")]
    TooManyParts,
    #[error("contains control characters or spaces")]
    Unprintable,
}

const APPLE_INSTALL: &str = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=";
const ANDROID_INSTALL: &str = "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=";

impl ActivationCode {
    pub fn parse(raw: &str) -> Result<Self, ActivationCodeError> {
        let full = raw.trim();
        if full.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ActivationCodeError::Unprintable);
        }
        let body = full
            .strip_prefix("LPA:")
            .ok_or(ActivationCodeError::WrongPrefix)?;
        let mut parts = body.split('$');
        if parts.next() != Some("1") {
            return Err(ActivationCodeError::WrongPrefix);
        }
        let smdp_address = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or(ActivationCodeError::MissingSmdpAddress)?;
        // SGP.22 allows an empty matching id, but the part itself must be there.
        let matching_id = parts.next().ok_or(ActivationCodeError::MissingMatchingId)?;
        if parts.count() > 2 {
            return Err(ActivationCodeError::TooManyParts);
        }
        Ok(Self {
            smdp_address: smdp_address.to_owned(),
            matching_id: matching_id.to_owned(),
            full: full.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    pub fn smdp_address(&self) -> &str {
        &self.smdp_address
    }

    pub fn matching_id(&self) -> &str {
        &self.matching_id
    }

    /// Apple's one-tap install link (iOS 17.4+).
    pub fn ios_install_url(&self) -> String {
        format!("{APPLE_INSTALL}{}", self.url_encoded())
    }

    /// Android's one-tap install link.
    pub fn android_install_url(&self) -> String {
        format!("{ANDROID_INSTALL}{}", self.url_encoded())
    }

    fn url_encoded(&self) -> String {
        utf8_percent_encode(&self.full, NON_ALPHANUMERIC).to_string()
    }
}

/// A PNG of `text`'s QR symbol (8 pixels a module, the standard 4-module
/// quiet zone). Any text: MP's `qrCode` is not always an `LPA:1$` code.
pub fn qr_png(text: &str) -> Result<Vec<u8>, QrRenderError> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::new(text.as_bytes())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (x0, y0) = ((i % modules + QUIET) * SCALE, (i / modules + QUIET) * SCALE);
        for y in y0..y0 + SCALE {
            pixels[y * side + x0..y * side + x0 + SCALE].fill(0);
        }
    }
    let side = u32::try_from(side).map_err(|_| QrRenderError::TooLarge)?;
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(png_bytes)
}

/// Why a QR PNG could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QrRenderError {
    #[error("activation code does not fit in a QR symbol: {0}")]
    Qr(#[from] qrcode::types::QrError),
    #[error("QR symbol is too large")]
    TooLarge,
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
}

impl fmt::Display for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MP_EXAMPLE: &str = "LPA:1$rsp-0001.linksfield.net$FJW99-WC5AS-CBYC9-WFTOZ";

    #[test]
    fn mp_example_splits_into_address_and_matching_id() {
        let code = ActivationCode::parse(MP_EXAMPLE).unwrap();
        assert_eq!(code.smdp_address(), "rsp-0001.linksfield.net");
        assert_eq!(code.matching_id(), "FJW99-WC5AS-CBYC9-WFTOZ");
        assert_eq!(code.as_str(), MP_EXAMPLE);
    }

    #[test]
    fn install_links_carry_the_url_encoded_code() {
        let code = ActivationCode::parse(MP_EXAMPLE).unwrap();
        let encoded = "LPA%3A1%24rsp%2D0001%2Elinksfield%2Enet%24FJW99%2DWC5AS%2DCBYC9%2DWFTOZ";
        assert_eq!(
            code.ios_install_url(),
            format!("https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={encoded}")
        );
        assert_eq!(
            code.android_install_url(),
            format!("https://esimsetup.android.com/esim_qrcode_provisioning?carddata={encoded}")
        );
    }

    #[test]
    fn optional_oid_and_confirmation_flag_are_allowed() {
        let code = ActivationCode::parse("LPA:1$smdp.example$ID$1.3.6.1$1").unwrap();
        assert_eq!(code.matching_id(), "ID");
    }

    #[test]
    fn malformed_codes_are_rejected() {
        use ActivationCodeError::*;
        let cases = [
            ("1$smdp.example$ID", WrongPrefix),
            ("LPA:2$smdp.example$ID", WrongPrefix),
            ("LPA:1$$ID", MissingSmdpAddress),
            ("LPA:1$smdp.example", MissingMatchingId),
            ("LPA:1$a$b$c$d$e", TooManyParts),
            ("LPA:1$smdp.example$ID\n2", Unprintable),
            ("LPA:1$smdp example$ID", Unprintable),
        ];
        for (raw, want) in cases {
            assert_eq!(ActivationCode::parse(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn qr_png_is_a_png_image() {
        let png = qr_png(ActivationCode::parse(MP_EXAMPLE).unwrap().as_str()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert!(info.width >= (21 + 8) * 8);
    }
}
