//! A stand-in MP that answers each endpoint with canned JSON, for the shapes
//! the sandbox never sends (nulls, unknown values): an [`MpDouble`] by path.

use serde_json::Value;

use super::mp_double::{MpDouble, Reply};

/// Serves `answers` (an MP path suffix such as `"/queryTraffic"`, and the
/// JSON body for it) on a loopback port; returns the base URL. Any other path
/// is a 404.
pub async fn canned_mp(answers: Vec<(&'static str, Value)>) -> String {
    MpDouble::start(Reply::ByPath(answers)).await.base_url()
}
