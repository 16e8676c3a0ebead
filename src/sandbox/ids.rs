//! The identifiers MP hands out (ICCID, EID, order and package codes, the
//! LPA activation string), and the ICCID check MP applies to ours.

use chrono::{DateTime, Utc};

use crate::domain::luhn_check_digit;

use super::errors::BusinessError;
use super::wire::MP_OFFSET;

/// The issuer prefix of the ICCIDs MP's own stock carries.
const ICCID_PREFIX: &str = "8943108";
/// Where the profile is downloaded from, as in MP's example QR code.
const SMDP_ADDRESS: &str = "rsp-0001.linksfield.net";

/// An ICCID that has 18 to 22 digits and a valid Luhn check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Iccid(String);

impl Iccid {
    /// Parses a caller-supplied ICCID.
    pub fn parse(raw: &str) -> Result<Iccid, BusinessError> {
        // MP applies the same rule the gateway checks before calling it.
        crate::domain::Iccid::parse(raw)
            .map(|iccid| Iccid(iccid.as_str().to_owned()))
            .map_err(|_| BusinessError::InvalidIccid)
    }

    /// A fresh 19-digit ICCID from MP's range, check digit included.
    pub fn generate() -> Iccid {
        let body = format!("{ICCID_PREFIX}{}", random_digits(11));
        let check = luhn_check_digit(&body);
        Iccid(format!("{body}{check}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `ORDER_` and 19 digits, like MP's snowflake ids (never a leading zero).
pub(crate) fn order_code() -> String {
    format!("ORDER_{}{}", rand::random_range(1..=9u8), random_digits(18))
}

/// A 32-digit EID (GSMA: `89` then the issuer's digits).
pub(crate) fn eid() -> String {
    format!("89049032{}", random_digits(24))
}

/// `LP14`, the UTC+8 date as `yyMMdd`, then a 6-digit sequence: the shape of
/// MP's `LP14230831004073`.
pub(crate) fn package_code(now: DateTime<Utc>, sequence: u64) -> String {
    let date = now.with_timezone(&MP_OFFSET).format("%y%m%d");
    format!("LP14{date}{:06}", sequence % 1_000_000)
}

/// `LPA:1$<SM-DP+>$XXXXX-XXXXX-XXXXX-XXXXX`, what the end user scans.
pub(crate) fn qr_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let group = || -> String {
        (0..5)
            .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
            .collect()
    };
    let groups: Vec<String> = (0..4).map(|_| group()).collect();
    format!("LPA:1${SMDP_ADDRESS}${}", groups.join("-"))
}

fn random_digits(count: usize) -> String {
    (0..count)
        .map(|_| char::from(b'0' + rand::random_range(0..10u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp_example_iccid_is_accepted() {
        assert!(Iccid::parse("8943108169999589689").is_ok());
        assert_eq!(luhn_check_digit("7992739871"), 3);
    }

    #[test]
    fn generated_iccids_parse_back() {
        for _ in 0..100 {
            let iccid = Iccid::generate();
            assert_eq!(iccid.as_str().len(), 19);
            assert!(iccid.as_str().starts_with(ICCID_PREFIX));
            assert_eq!(Iccid::parse(iccid.as_str()), Ok(iccid));
        }
    }

    #[test]
    fn iccids_with_bad_length_letters_or_check_digit_are_refused() {
        let good = Iccid::generate();
        let mut bad_check = good.as_str().to_owned();
        let last = bad_check.pop().unwrap_or('0');
        bad_check.push(if last == '9' { '0' } else { '9' });
        for raw in ["", "12345", "89431081ABCDEFGHIJK", bad_check.as_str()] {
            assert_eq!(Iccid::parse(raw), Err(BusinessError::InvalidIccid), "{raw}");
        }
    }

    #[test]
    fn codes_have_mp_shapes() {
        assert_eq!(order_code().len(), "ORDER_".len() + 19);
        assert_eq!(eid().len(), 32);
        let code = package_code(Utc::now(), 42);
        assert!(code.starts_with("LP14") && code.ends_with("000042"));
        assert_eq!(code.len(), 16);
        let qr = qr_code();
        assert!(qr.starts_with("LPA:1$rsp-0001.linksfield.net$"));
        assert_eq!(qr.rsplit('$').next().map(str::len), Some(23));
    }
}
