//! A stand-in MP on a real socket that answers each endpoint with canned
//! JSON, for the shapes the sandbox never sends (nulls, unknown values).

use axum::http::{StatusCode, Uri};
use serde_json::Value;

/// Serves `answers` (an MP path suffix such as `"/queryTraffic"`, and the
/// JSON body for it) on a loopback port; returns the base URL. Any other path
/// is a 404.
pub async fn canned_mp(answers: Vec<(&'static str, Value)>) -> String {
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let found = answers
            .iter()
            .find(|(suffix, _)| uri.path().ends_with(suffix))
            .map(|(_, body)| body.clone());
        async move {
            match found {
                Some(body) => (StatusCode::OK, axum::Json(body)),
                None => (StatusCode::NOT_FOUND, axum::Json(Value::Null)),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the canned MP");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
