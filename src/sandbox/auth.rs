//! MP's gateway check: the APISIX `hmac-auth` headers and signature. Anything
//! wrong is a 401 with APISIX's body, before any handler runs.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use percent_encoding::percent_decode_str;
use secrecy::ExposeSecret;

use super::state::Shared;
use super::wire;
use crate::mp::signing::{ALGORITHM, SigningInput, canonical_query, parse_query};

const ACCESS_KEY: &str = "X-HMAC-ACCESS-KEY";
const ALGORITHM_HEADER: &str = "X-HMAC-ALGORITHM";
const SIGNED_HEADERS: &str = "X-HMAC-SIGNED-HEADERS";
const SIGNATURE: &str = "X-HMAC-SIGNATURE";

/// Middleware: lets the request through only if its signature verifies.
pub(crate) async fn require_signature(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if verifies(&shared, &request) {
        next.run(request).await
    } else {
        wire::unauthorized()
    }
}

fn verifies(shared: &Shared, request: &Request) -> bool {
    let headers = request.headers();
    let (Some(access_key), Some(algorithm), Some(signed), Some(signature)) = (
        header(headers, ACCESS_KEY),
        header(headers, ALGORITHM_HEADER),
        header(headers, SIGNED_HEADERS),
        header(headers, SIGNATURE),
    ) else {
        return false;
    };
    if access_key != shared.config.access_key || algorithm != ALGORITHM {
        return false;
    }
    let Some(signed_headers) = signed_header_values(headers, signed) else {
        return false;
    };
    let Ok(path) = percent_decode_str(request.uri().path()).decode_utf8() else {
        return false;
    };
    let query = canonical_query(parse_query(request.uri().query().unwrap_or("")));
    let input = SigningInput {
        method: request.method().as_str(),
        path: &path,
        canonical_query: &query,
        access_key,
        date: header(headers, "Date"),
        signed_headers: &signed_headers,
    };
    let secret = shared.config.secret_key.expose_secret().as_bytes();
    input.verify(secret, signature)
}

/// The `(name, value)` pairs named in `X-HMAC-SIGNED-HEADERS`, in its order
/// and spelling; `None` if one of them is missing from the request.
fn signed_header_values<'a>(
    headers: &'a HeaderMap,
    names: &'a str,
) -> Option<Vec<(&'a str, &'a str)>> {
    names
        .split(';')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| Some((name, header(headers, name)?)))
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}
