//! Reading the gateway's `/metrics` page. The recorder is process-wide, so
//! tests compare a series before and after rather than expect a value.

use std::net::SocketAddr;

/// The value of a counter (summed over label sets matching `labels`) on `/metrics`.
pub async fn counter(http_addr: SocketAddr, name: &str, labels: &str) -> f64 {
    let text = metrics_page(http_addr).await;
    text.lines()
        .filter(|line| {
            let series = line.split_whitespace().next().unwrap_or("");
            series == name || (series.starts_with(&format!("{name}{{")) && series.contains(labels))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The sum of the samples of `name` on `/metrics` whose labels include every
/// one of `labels` (each written as on the page, e.g. `code="OK"`).
pub async fn metric(http_addr: SocketAddr, name: &str, labels: &[&str]) -> f64 {
    let text = metrics_page(http_addr).await;
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, series_labels) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|label| series_labels.contains(label)))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// The text `/metrics` serves.
pub async fn metrics_page(http_addr: SocketAddr) -> String {
    mp_gateway::tls::install_crypto_provider();
    reqwest::get(format!("http://{http_addr}/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics has a body")
}
