//! MP's HMAC request signing (the APISIX `hmac-auth` scheme), as described in
//! `shared/upstream/signing.md`.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

/// The value of `X-HMAC-ALGORITHM`.
pub const ALGORITHM: &str = "hmac-sha256";
/// The headers MP signs, in order, as named in `X-HMAC-SIGNED-HEADERS`.
pub const SIGNED_HEADERS: &str = "Accept-Language;Content-Type";
/// The `Accept-Language` value the gateway sends (and signs).
pub const ACCEPT_LANGUAGE: &str = "en-US";
/// The `Content-Type` value the gateway sends (and signs).
pub const CONTENT_TYPE: &str = "application/json";

/// What `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - . _ ~ ! * ' ( )`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Percent-encodes one query key or value the way the signature expects
/// (upper-case hex; space is `%20`, `+` is `%2B`).
pub fn encode_component(raw: &str) -> String {
    utf8_percent_encode(raw, COMPONENT).to_string()
}

/// Splits a raw query string into decoded `(key, value)` pairs, as the MP
/// gateway reads them: a key without `=` has the empty value, `+` is a space.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (decode_component(key), decode_component(value))
        })
        .collect()
}

fn decode_component(raw: &str) -> String {
    percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The canonical query: pairs sorted by key then value (byte order), each
/// `key=value` percent-encoded, joined by `&`.
pub fn canonical_query<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> String
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut encoded: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One request's parts that go into the signature.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    pub method: &'a str,
    /// The decoded path, without the query.
    pub path: &'a str,
    /// Already canonical (see [`canonical_query`]).
    pub canonical_query: &'a str,
    pub access_key: &'a str,
    /// The `Date` header, if one is sent.
    pub date: Option<&'a str>,
    /// `(name as listed in X-HMAC-SIGNED-HEADERS, value)`, in that order.
    pub signed_headers: &'a [(&'a str, &'a str)],
}

impl SigningInput<'_> {
    /// The string that is HMAC'd: one `\n`-terminated line per part.
    pub fn signing_string(&self) -> String {
        let mut out = String::new();
        for line in [
            self.method,
            self.path,
            self.canonical_query,
            self.access_key,
            self.date.unwrap_or(""),
        ] {
            out.push_str(line);
            out.push('\n');
        }
        for (name, value) in self.signed_headers {
            out.push_str(name);
            out.push(':');
            out.push_str(value);
            out.push('\n');
        }
        out
    }

    /// Base64 of HMAC-SHA256(secret, signing string).
    pub fn signature(&self, secret_key: &[u8]) -> String {
        BASE64.encode(self.mac(secret_key).finalize().into_bytes())
    }

    /// Whether `signature` (base64) is the right one, compared in constant time.
    pub fn verify(&self, secret_key: &[u8], signature: &str) -> bool {
        match BASE64.decode(signature) {
            Ok(bytes) => self.mac(secret_key).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    fn mac(&self, secret_key: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret_key)
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(self.signing_string().as_bytes());
        mac
    }
}

/// The signed headers MP expects, with the values the gateway sends.
pub const MP_SIGNED_HEADER_VALUES: &[(&str, &str)] = &[
    ("Accept-Language", ACCEPT_LANGUAGE),
    ("Content-Type", CONTENT_TYPE),
];

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"my-secret-key";

    fn mp_input<'a>(path: &'a str, query: &'a str) -> SigningInput<'a> {
        SigningInput {
            method: "GET",
            path,
            canonical_query: query,
            access_key: "user-key",
            date: None,
            signed_headers: MP_SIGNED_HEADER_VALUES,
        }
    }

    #[test]
    fn linksfield_example_vector() {
        let query = canonical_query(parse_query(
            "resellerCode=SG00000010&eid=89049032000001000000128255728753",
        ));
        let input = mp_input("/mp-api/api/esim/queryOrderStatus", &query);
        assert_eq!(
            input.signature(SECRET),
            "M8w5ai017BnWLoUFjbR2zaqapxj1gXK+Unll6twlDmg="
        );
    }

    #[test]
    fn apisix_docs_vector_with_date_and_custom_headers() {
        let query = canonical_query(parse_query("name=james&age=36"));
        assert_eq!(query, "age=36&name=james");
        let input = SigningInput {
            method: "GET",
            path: "/index.html",
            canonical_query: &query,
            access_key: "user-key",
            date: Some("Tue, 19 Jan 2021 11:33:20 GMT"),
            signed_headers: &[("User-Agent", "curl/7.29.0"), ("x-custom-a", "test")],
        };
        assert_eq!(
            input.signature(SECRET),
            "8XV1GB7Tq23OJcoz6wjqTs4ZLxr9DiLoY4PxzScWGYg="
        );
    }

    #[test]
    fn product_list_vector_without_query() {
        let input = mp_input("/mp-api/api/esim/v2/productList", "");
        assert_eq!(
            input.signature(SECRET),
            "7FijpvbZmeGIIivdufjMD6KPjEsciNPtswtkZvGNrQk="
        );
    }

    #[test]
    fn canonical_query_cases_from_apisix_tests() {
        let canon = |raw| canonical_query(parse_query(raw));
        assert_eq!(canon("name=jack&age"), "age=&name=jack");
        assert_eq!(
            canon("c=&a1a=123&name=123&a&a=2&a=1"),
            "a=&a=1&a=2&a1a=123&c=&name=123"
        );
        assert_eq!(
            canon("name=LeBron%2Cjames&name2=%2c%3e"),
            "name=LeBron%2Cjames&name2=%2C%3E"
        );
    }

    #[test]
    fn components_are_encoded_like_encode_uri_component() {
        assert_eq!(encode_component("a b+c"), "a%20b%2Bc");
        assert_eq!(encode_component("-._~!*'()"), "-._~!*'()");
        assert_eq!(encode_component("é/"), "%C3%A9%2F");
    }

    #[test]
    fn verify_accepts_the_right_signature_only() {
        let input = mp_input("/mp-api/api/esim/v2/productList", "");
        assert!(input.verify(SECRET, "7FijpvbZmeGIIivdufjMD6KPjEsciNPtswtkZvGNrQk="));
        assert!(!input.verify(b"other", "7FijpvbZmeGIIivdufjMD6KPjEsciNPtswtkZvGNrQk="));
        assert!(!input.verify(SECRET, "not base64!"));
    }
}
