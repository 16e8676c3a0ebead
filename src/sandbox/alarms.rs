//! The alarm sender: a background task that notices when orders cross a
//! usage threshold and POSTs MP's callback to the registered URL, retrying
//! in its own task so request handling never waits on a slow receiver.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval, sleep};

use super::orders::Alarm;
use super::state::{Shared, lock};
use super::wire::AlarmCallback;

/// How often usage is checked; thresholds are noticed at most this late.
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// Deliveries per alarm before it is given up.
const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled after each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// A receiver slower than this counts as a failed attempt.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP client for callbacks. It ignores proxy settings because the
/// sandbox's receivers are local test servers.
pub(crate) fn client() -> std::io::Result<reqwest::Client> {
    // reqwest is built without a TLS provider; one must be installed before
    // a client exists. If the application installed its own, this is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(DELIVERY_TIMEOUT)
        .build()
        .map_err(std::io::Error::other)
}

/// Runs until `stopped` turns true or its sender is dropped.
pub(crate) async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut ticks = interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        // Alarms are consumed even with no URL registered: MP does not
        // replay old alarms to a URL saved later.
        let due = lock(&shared.orders).due_alarms(Utc::now());
        let url = lock(&shared.callback_url).clone();
        if let (Some(url), false) = (url, due.is_empty()) {
            // One task per batch keeps an order's 53% ahead of its 84%.
            tokio::spawn(deliver_all(shared.clone(), url, due));
        }
    }
}

async fn deliver_all(shared: Arc<Shared>, url: String, alarms: Vec<Alarm>) {
    for alarm in alarms {
        if deliver(&shared.http, &url, &callback(alarm)).await {
            shared.stats.count_alarm_delivered();
        }
    }
}

/// POSTs one callback until the receiver answers 2xx or attempts run out.
async fn deliver(http: &reqwest::Client, url: &str, body: &AlarmCallback) -> bool {
    let mut backoff = FIRST_BACKOFF;
    // The query may hold the receiver's CALLBACK_TOKEN: never logged.
    let shown = without_query(url);
    for attempt in 1..=ATTEMPTS {
        match http.post(url).json(body).send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) => {
                tracing::warn!(url = %shown, attempt, status = %response.status(), "sandbox alarm callback refused");
            }
            Err(error) => {
                let error = error.without_url();
                tracing::warn!(url = %shown, attempt, %error, "sandbox alarm callback failed");
            }
        }
        if attempt < ATTEMPTS {
            sleep(backoff).await;
            backoff *= 2;
        }
    }
    false
}

/// `url` without its query string, for logs.
fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

fn callback(alarm: Alarm) -> AlarmCallback {
    AlarmCallback {
        eid: alarm.eid,
        package_code: alarm.package_code,
        order_code: alarm.order_code,
        package_used_rate: format!("{}%", alarm.threshold),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_callback_url_has_no_token() {
        assert_eq!(
            without_query("http://127.0.0.1:8080/mp/alarm-callback?token=s3cret"),
            "http://127.0.0.1:8080/mp/alarm-callback"
        );
        assert_eq!(without_query("http://gw/cb"), "http://gw/cb");
    }
}
