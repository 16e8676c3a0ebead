//! MP's alarm callbacks, as MP sends them to the gateway's HTTP port.

use super::TestGateway;

/// An alarm callback body as MP sends it (MP document section 4.5.2).
pub fn callback_body(order: &str, rate: &str, request_id: &str) -> serde_json::Value {
    serde_json::json!({
        "eid": "89049032000001000000128255728753",
        "packageCode": "LP14230831004073",
        "orderCode": order,
        "packageUsedRate": rate,
        "requestId": request_id,
    })
}

/// POSTs a callback like MP does, `query` (e.g. `?token=...`) and all;
/// returns the HTTP status.
pub async fn post_callback(
    client: &reqwest::Client,
    gateway: &TestGateway,
    query: &str,
    body: &serde_json::Value,
) -> u16 {
    client
        .post(format!(
            "http://{}/mp/alarm-callback{query}",
            gateway.http_addr
        ))
        .json(body)
        .send()
        .await
        .expect("callback endpoint answers")
        .status()
        .as_u16()
}
