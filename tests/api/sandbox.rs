//! The MP sandbox over real HTTP: auth, catalogue, order lifecycle, traffic,
//! null data, faults and alarm callbacks, seen from a signing client.

use std::time::Duration;

use axum::Json;
use axum::routing::post;
use mp_gateway::mp::signing::{
    self, ACCEPT_LANGUAGE, ALGORITHM, CONTENT_TYPE, SIGNED_HEADERS, SigningInput,
};
use mp_gateway::sandbox::{Fault, Sandbox};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{ACCESS_KEY, SECRET_KEY, start_sandbox_with_traffic};

/// Long enough for any local request, short enough to fail a test fast.
const PATIENCE: Duration = Duration::from_secs(5);

// ---- helpers -------------------------------------------------------------

/// A client that signs like the gateway does, talking to one sandbox.
struct Mp {
    sandbox: Sandbox,
    http: reqwest::Client,
    secret: &'static str,
}

/// A sandbox whose orders in use consume `traffic_mb_per_sec`, and a client for it.
async fn start_sandbox(traffic_mb_per_sec: f64) -> Mp {
    let sandbox = start_sandbox_with_traffic(traffic_mb_per_sec).await;
    // reqwest is built without a TLS provider; plain http still needs one
    // installed before a client is built.
    mp_gateway::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    Mp {
        sandbox,
        http,
        secret: SECRET_KEY,
    }
}

impl Mp {
    async fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> reqwest::Response {
        let raw_query = query
            .iter()
            .map(|(k, v)| {
                let (k, v) = (signing::encode_component(k), signing::encode_component(v));
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join("&");
        self.send(reqwest::Method::GET, endpoint, &raw_query, None)
            .await
    }

    async fn post(&self, endpoint: &str, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, endpoint, "", Some(body.to_string()))
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        endpoint: &str,
        raw_query: &str,
        body: Option<String>,
    ) -> reqwest::Response {
        let path = format!("/mp-api/api/esim/{endpoint}");
        let canonical = signing::canonical_query(signing::parse_query(raw_query));
        let signature = SigningInput {
            method: method.as_str(),
            path: &path,
            canonical_query: &canonical,
            access_key: ACCESS_KEY,
            date: None,
            signed_headers: signing::MP_SIGNED_HEADER_VALUES,
        }
        .signature(self.secret.as_bytes());
        let mut url = format!("{}{path}", self.sandbox.base_url());
        if !raw_query.is_empty() {
            url = format!("{url}?{raw_query}");
        }
        let mut request = self
            .http
            .request(method, url)
            .headers(hmac_headers(SIGNED_HEADERS, &signature))
            .header("Accept-Language", ACCEPT_LANGUAGE)
            .header("Content-Type", CONTENT_TYPE);
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.unwrap()
    }

    /// The envelope of a GET that must answer HTTP 200.
    async fn get_json(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        envelope(self.get(endpoint, query).await).await
    }

    /// The envelope of a POST that must answer HTTP 200.
    async fn post_json(&self, endpoint: &str, body: Value) -> Value {
        envelope(self.post(endpoint, body).await).await
    }

    /// Creates an order of product 5 (1024 MB) and returns its orderCode.
    async fn create_order(&self, activate: &str) -> String {
        let answer = self
            .post_json(
                "v2/activationCode",
                json!({"productId": 5, "activateFlag": activate}),
            )
            .await;
        assert_eq!(answer["code"], 200, "{answer}");
        answer["data"]["orderCode"].as_str().unwrap().to_owned()
    }

    async fn traffic(&self, order_code: &str) -> Value {
        let answer = self
            .get_json("queryTraffic", &[("orderCode", order_code)])
            .await;
        answer["data"][0].clone()
    }
}

/// The `X-HMAC-*` headers of a request signed with our access key.
fn hmac_headers(signed_headers: &str, signature: &str) -> reqwest::header::HeaderMap {
    [
        ("x-hmac-access-key", ACCESS_KEY),
        ("x-hmac-algorithm", ALGORITHM),
        ("x-hmac-signed-headers", signed_headers),
        ("x-hmac-signature", signature),
    ]
    .into_iter()
    .map(|(name, value)| {
        let value = value.parse().expect("an ASCII header value");
        (reqwest::header::HeaderName::from_static(name), value)
    })
    .collect()
}

async fn envelope(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn megabytes(value: &Value) -> f64 {
    value.as_str().unwrap().parse().unwrap()
}

/// A tiny callback receiver: every JSON body POSTed to it lands on the channel.
async fn start_receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/alarms",
        post(move |Json(body): Json<Value>| async move {
            let _ = tx.send(body);
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/alarms?token=t0k3n",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

// ---- auth ----------------------------------------------------------------

#[tokio::test]
async fn a_request_with_a_bad_signature_is_rejected_with_401() {
    let mut mp = start_sandbox(10.0).await;
    mp.secret = "not-the-secret";

    let response = mp.get("v2/productList", &[]).await;

    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "client request can't be validated"})
    );
    assert_eq!(mp.sandbox.total_requests(), 1);
    assert_eq!(mp.sandbox.calls("v2/productList"), 0);
}

#[tokio::test]
async fn a_request_without_hmac_headers_is_rejected_with_401() {
    let mp = start_sandbox(10.0).await;
    let url = format!("{}/mp-api/api/esim/v2/productList", mp.sandbox.base_url());

    let response = mp.http.get(url).send().await.unwrap();

    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_signature_over_a_date_and_headers_in_another_order_is_accepted() {
    let mp = start_sandbox(10.0).await;
    let path = "/mp-api/api/esim/v2/productList";
    let date = "Tue, 19 Jan 2021 11:33:20 GMT";
    let signature = SigningInput {
        method: "GET",
        path,
        canonical_query: "requestId=x",
        access_key: ACCESS_KEY,
        date: Some(date),
        signed_headers: &[("Content-Type", CONTENT_TYPE), ("X-Custom", "abc")],
    }
    .signature(SECRET_KEY.as_bytes());

    let response = mp
        .http
        .get(format!("{}{path}?requestId=x", mp.sandbox.base_url()))
        .headers(hmac_headers("Content-Type;X-Custom", &signature))
        .header("Date", date)
        .header("Content-Type", CONTENT_TYPE)
        .header("X-Custom", "abc")
        .send()
        .await
        .unwrap();

    assert_eq!(envelope(response).await["requestId"], "x");
}

#[tokio::test]
async fn a_query_changed_after_signing_is_rejected_with_401() {
    let mp = start_sandbox(10.0).await;
    let path = "/mp-api/api/esim/queryTraffic";
    let signature = SigningInput {
        method: "GET",
        path,
        canonical_query: "orderCode=ORDER_1",
        access_key: ACCESS_KEY,
        date: None,
        signed_headers: signing::MP_SIGNED_HEADER_VALUES,
    }
    .signature(SECRET_KEY.as_bytes());

    let response = mp
        .http
        .get(format!("{}{path}?orderCode=ORDER_2", mp.sandbox.base_url()))
        .headers(hmac_headers(SIGNED_HEADERS, &signature))
        .header("Accept-Language", ACCEPT_LANGUAGE)
        .header("Content-Type", CONTENT_TYPE)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(mp.sandbox.calls("queryTraffic"), 0);
}

// ---- catalogue -------------------------------------------------------------

#[tokio::test]
async fn the_sandbox_remembers_the_headers_of_the_last_call_to_each_endpoint() {
    let mp = start_sandbox(0.0).await;
    assert_eq!(
        mp.sandbox
            .last_header("v2/productList", "x-hmac-access-key"),
        None
    );
    mp.get_json("v2/productList", &[]).await;
    assert_eq!(
        mp.sandbox
            .last_header("v2/productList", "X-HMAC-ACCESS-KEY")
            .as_deref(),
        Some(ACCESS_KEY)
    );
    assert_eq!(
        mp.sandbox.last_header("v2/productList", "traceparent"),
        None
    );
    assert_eq!(
        mp.sandbox.last_header("queryTraffic", "x-hmac-access-key"),
        None
    );
}

#[tokio::test]
async fn product_list_returns_the_three_products_and_echoes_the_request_id() {
    let mp = start_sandbox(10.0).await;

    let answer = mp
        .get_json("v2/productList", &[("requestId", "req 1")])
        .await;

    assert_eq!(answer["code"], 200);
    assert_eq!(answer["msg"], "Success");
    assert_eq!(answer["requestId"], "req 1");
    let products = answer["data"].as_array().unwrap();
    let summary: Vec<(i64, i64, &str)> = products
        .iter()
        .map(|p| {
            let goods = p["goodsId"].as_i64().unwrap();
            let product = p["productId"].as_i64().unwrap();
            (goods, product, p["orderQuantity"].as_str().unwrap())
        })
        .collect();
    assert_eq!(summary, [(35, 5, "1"), (37, 6, "3,4"), (35, 8, "2")]);
    assert_eq!(products[1]["productName"], "1GB/7days");
    assert_eq!(mp.sandbox.calls("v2/productList"), 1);
    assert_eq!(
        mp.sandbox.last_request_id("v2/productList").as_deref(),
        Some("req 1")
    );
}

// ---- orders ----------------------------------------------------------------

#[tokio::test]
async fn a_created_order_can_be_queried_for_status_and_traffic() {
    let mp = start_sandbox(10.0).await;
    let created = mp
        .post_json(
            "v2/activationCode",
            json!({"goodsId": 37, "productId": 6, "orderQuantity": 4, "price": 9.99,
                   "activateFlag": "no", "requestId": "create-1"}),
        )
        .await;
    assert_eq!(created["code"], 200, "{created}");
    assert_eq!(
        mp.sandbox.last_request_id("v2/activationCode").as_deref(),
        Some("create-1")
    );
    let data = &created["data"];
    let order_code = data["orderCode"].as_str().unwrap();
    assert!(order_code.starts_with("ORDER_") && order_code.len() == 25);
    assert!(data["iccid"].as_str().unwrap().starts_with("8943108"));
    assert!(
        data["qrCode"]
            .as_str()
            .unwrap()
            .starts_with("LPA:1$rsp-0001.linksfield.net$")
    );

    let status = mp
        .get_json("queryOrderStatus", &[("orderCode", order_code)])
        .await;
    let order = &status["data"][0];
    assert_eq!(order["status"], "0");
    assert_eq!(order["actualStartTime"], Value::Null);
    assert_eq!(order["eid"].as_str().unwrap().len(), 32);
    assert!(order["packageCode"].as_str().unwrap().starts_with("LP14"));

    let switched = mp
        .post_json(
            "switchOrder",
            json!({"orderCode": order_code, "switchButton": "ON"}),
        )
        .await;
    assert_eq!(switched["code"], 200, "{switched}");

    let traffic = mp.traffic(order_code).await;
    // 4 cycles of 1024 MB.
    assert_eq!(traffic["packageFlow"], "4096.00");
    assert_eq!(traffic["cycle"], "4");
    assert_eq!(traffic["eid"], order["eid"]);
    let started = traffic["actualStartTime"].as_str().unwrap();
    assert_eq!(started.len(), "2025-03-07 17:11:21".len());
    assert!(
        traffic["plannedEndTime"]
            .as_str()
            .unwrap()
            .ends_with("23:59:59")
    );
}

#[tokio::test]
async fn traffic_grows_while_an_order_is_in_use_and_stops_while_suspended() {
    let mp = start_sandbox(200.0).await;
    let order_code = mp.create_order("yes").await;

    let first = megabytes(&mp.traffic(&order_code).await["packageUsedFlow"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = megabytes(&mp.traffic(&order_code).await["packageUsedFlow"]);
    assert!(second >= first + 40.0, "{first} -> {second}");

    mp.post_json(
        "switchOrder",
        json!({"orderCode": order_code, "switchButton": "SUSPEND"}),
    )
    .await;
    let suspended = megabytes(&mp.traffic(&order_code).await["packageUsedFlow"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = megabytes(&mp.traffic(&order_code).await["packageUsedFlow"]);
    assert_eq!(suspended, later);

    let daily = mp
        .get_json("v2/queryHistoryDailyTraffic", &[("orderCode", &order_code)])
        .await;
    let days = daily["data"]["dailyTraffic"].as_array().unwrap();
    let bytes: f64 = days
        .iter()
        .map(|day| day["useFlow"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        (bytes / 1048576.0 - later).abs() < 0.01,
        "{bytes} bytes vs {later} MB"
    );
}

#[tokio::test]
async fn topping_up_a_finished_order_is_a_business_error() {
    let mp = start_sandbox(10.0).await;
    let order_code = mp.create_order("yes").await;
    let topped = mp
        .post_json("v2/topUp", json!({"orderCode": order_code}))
        .await;
    assert_eq!(
        topped["data"],
        json!({"renewPeriod": 1, "orderCode": order_code})
    );

    mp.post_json(
        "switchOrder",
        json!({"orderCode": order_code, "switchButton": "OFF"}),
    )
    .await;
    let refused = mp
        .post_json("v2/topUp", json!({"orderCode": order_code}))
        .await;

    assert_eq!(refused["code"], 500);
    assert_eq!(refused["msg"], "Finished orders cannot be topped up");
    assert_eq!(refused["data"], Value::Null);
}

#[tokio::test]
async fn activation_code_refuses_unknown_products_unoffered_quantities_and_bad_iccids() {
    let mp = start_sandbox(10.0).await;
    let msg = |answer: Value| answer["msg"].as_str().unwrap().to_owned();

    let unknown = mp
        .post_json("v2/activationCode", json!({"productId": 99}))
        .await;
    assert_eq!(msg(unknown), "Product does not exist");
    let quantity = mp
        .post_json(
            "v2/activationCode",
            json!({"productId": 6, "orderQuantity": 5}),
        )
        .await;
    assert_eq!(msg(quantity), "No ICCID found");
    let bad_check_digit = mp
        .post_json(
            "v2/activationCode",
            json!({"productId": 5, "iccid": "8943108169999589680"}),
        )
        .await;
    assert_eq!(bad_check_digit["code"], 500);

    let iccid = json!({"productId": 5, "iccid": "8943108169999589689"});
    let first = mp.post_json("v2/activationCode", iccid.clone()).await;
    assert_eq!(first["data"]["iccid"], "8943108169999589689");
    let again = mp.post_json("v2/activationCode", iccid).await;
    assert_eq!(msg(again), "ICCID is already in use");
}

#[tokio::test]
async fn a_malformed_body_is_answered_with_400_not_a_crash() {
    let mp = start_sandbox(10.0).await;

    let response = mp
        .send(
            reqwest::Method::POST,
            "v2/topUp",
            "",
            Some("{not json".into()),
        )
        .await;

    assert_eq!(response.status(), 400);
    let still_alive = mp.get_json("v2/productList", &[]).await;
    assert_eq!(still_alive["code"], 200);
}

// ---- null data -----------------------------------------------------------------

#[tokio::test]
async fn an_unknown_order_answers_null_data() {
    let mp = start_sandbox(10.0).await;
    let unknown = [("orderCode", "ORDER_0000000000000000000")];

    let status = mp.get_json("queryOrderStatus", &unknown).await;
    assert_eq!(status["code"], 200);
    assert_eq!(
        status["data"],
        json!([{"eid": null, "packageCode": null, "status": null,
                "actualStartTime": null, "plannedEndTime": null}])
    );
    let traffic = mp.get_json("queryTraffic", &unknown).await;
    assert_eq!(
        traffic["data"],
        json!([{"eid": null, "packageCode": null, "packageFlow": null, "packageUsedFlow": null,
                "actualStartTime": null, "plannedEndTime": null, "cycle": null}])
    );
    let daily = mp.get_json("v2/queryHistoryDailyTraffic", &unknown).await;
    assert_eq!(
        daily["data"],
        json!({"packageCode": null, "actualStartTime": null, "plannedEndTime": null,
               "dailyTraffic": [{"flowUseTime": null, "useFlow": null}]})
    );
    let top_up = mp
        .post_json("v2/topUp", json!({"orderCode": "ORDER_0"}))
        .await;
    assert_eq!(top_up["msg"], "Order does not exist");
}

#[tokio::test]
async fn a_query_without_an_order_code_is_a_business_error() {
    let mp = start_sandbox(10.0).await;

    let answer = mp.get_json("queryTraffic", &[]).await;

    assert_eq!(answer["code"], 500);
    assert_eq!(answer["msg"], "orderCode is required");
}

// ---- faults ----------------------------------------------------------------

#[tokio::test]
async fn a_fault_makes_following_calls_fail_until_it_is_cleared() {
    let mp = start_sandbox(10.0).await;

    mp.sandbox.set_fault(Some(Fault::HttpStatus(503)));
    assert_eq!(mp.get("v2/productList", &[]).await.status(), 503);
    assert_eq!(mp.get("v2/productList", &[]).await.status(), 503);

    mp.sandbox.set_fault(Some(Fault::NotJson));
    let response = mp.get("v2/productList", &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "<html>oops</html>");

    mp.sandbox.set_fault(Some(Fault::BusinessError {
        code: 10001,
        msg: "system busy".into(),
    }));
    let answer = mp.get_json("v2/productList", &[("requestId", "r9")]).await;
    assert_eq!(
        answer,
        json!({"code": 10001, "msg": "system busy", "data": null, "requestId": "r9"})
    );

    mp.sandbox
        .set_fault(Some(Fault::Delay(Duration::from_millis(300))));
    let started = std::time::Instant::now();
    let answer = mp.get_json("v2/productList", &[]).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer["code"], 200);

    mp.sandbox.set_fault(None);
    assert_eq!(mp.get_json("v2/productList", &[]).await["code"], 200);
    assert_eq!(mp.sandbox.calls("v2/productList"), 6);
}

#[tokio::test]
async fn a_fault_set_for_n_requests_clears_itself_after_them() {
    let mp = start_sandbox(10.0).await;
    mp.sandbox.set_fault_for(2, Fault::HttpStatus(503));
    assert_eq!(mp.get("v2/productList", &[]).await.status(), 503);
    assert_eq!(mp.get("queryTraffic", &[]).await.status(), 503);
    assert_eq!(mp.get_json("v2/productList", &[]).await["code"], 200);
    assert_eq!(mp.sandbox.calls("v2/productList"), 2);
}

#[tokio::test]
async fn the_sandbox_remembers_how_many_requests_it_served_at_once() {
    let mp = start_sandbox(10.0).await;
    mp.get_json("v2/productList", &[]).await;
    mp.get_json("v2/productList", &[]).await;
    assert_eq!(mp.sandbox.max_in_flight(), 1);

    // Long enough that all three arrive while the first is still delayed.
    mp.sandbox
        .set_fault(Some(Fault::Delay(Duration::from_secs(2))));
    let three = futures::future::join_all((0..3).map(|_| mp.get("v2/productList", &[]))).await;
    assert!(three.iter().all(|r| r.status() == 200));
    assert_eq!(mp.sandbox.max_in_flight(), 3);
}

#[tokio::test]
async fn auth_is_checked_before_a_fault_applies() {
    let mut mp = start_sandbox(10.0).await;
    mp.sandbox.set_fault(Some(Fault::HttpStatus(500)));
    mp.secret = "wrong";

    assert_eq!(mp.get("v2/productList", &[]).await.status(), 401);
}

// ---- alarm callbacks -------------------------------------------------------------

#[tokio::test]
async fn an_alarm_callback_arrives_when_usage_crosses_53_percent() {
    // 1024 MB at 800 MB/s crosses 53% after about 0.7 s.
    let mp = start_sandbox(800.0).await;
    let (url, mut alarms) = start_receiver().await;
    let saved = mp
        .post_json(
            "saveAlarmCallbackInterface",
            json!({"resellerCode": ACCESS_KEY, "httpMethod": "POST", "httpUrl": url}),
        )
        .await;
    assert_eq!(saved["data"], url.as_str());
    assert_eq!(mp.sandbox.callback_url().as_deref(), Some(url.as_str()));

    let order_code = mp.create_order("yes").await;
    let alarm = tokio::time::timeout(PATIENCE, alarms.recv())
        .await
        .expect("an alarm within the patience window")
        .unwrap();

    assert_eq!(alarm["orderCode"], order_code.as_str());
    assert_eq!(alarm["packageUsedRate"], "53%");
    let status = mp
        .get_json("queryOrderStatus", &[("orderCode", &order_code)])
        .await;
    assert_eq!(alarm["eid"], status["data"][0]["eid"]);
    assert_eq!(alarm["packageCode"], status["data"][0]["packageCode"]);
    assert_eq!(alarm["requestId"].as_str().unwrap().len(), 36);
}

#[tokio::test]
async fn a_refused_alarm_callback_is_retried_until_it_is_accepted() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let mp = start_sandbox(800.0).await;
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    // Refuses the first delivery with a 503, accepts the rest.
    let app = axum::Router::new().route(
        "/alarms",
        post(move || async move {
            match seen.fetch_add(1, Ordering::SeqCst) {
                0 => axum::http::StatusCode::SERVICE_UNAVAILABLE,
                _ => axum::http::StatusCode::OK,
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alarms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    mp.post_json(
        "saveAlarmCallbackInterface",
        json!({"resellerCode": ACCESS_KEY, "httpMethod": "POST", "httpUrl": url}),
    )
    .await;

    mp.create_order("yes").await;

    let delivered = async {
        while mp.sandbox.alarms_delivered() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, delivered)
        .await
        .expect("the 53% alarm is delivered on a retry");
    assert!(attempts.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_callback_url_must_be_an_absolute_post_url_for_our_reseller_code() {
    let mp = start_sandbox(10.0).await;
    let save = |body: Value| mp.post_json("saveAlarmCallbackInterface", body);

    let wrong_reseller = save(json!({"resellerCode": "SG0", "httpMethod": "POST",
                                     "httpUrl": "http://127.0.0.1/cb"}))
    .await;
    let wrong_method = save(json!({"resellerCode": ACCESS_KEY, "httpMethod": "GET",
                                   "httpUrl": "http://127.0.0.1/cb"}))
    .await;
    let relative = save(json!({"resellerCode": ACCESS_KEY, "httpMethod": "POST",
                               "httpUrl": "/cb"}))
    .await;

    for answer in [wrong_reseller, wrong_method, relative] {
        assert_eq!(answer["code"], 500, "{answer}");
    }
    assert_eq!(mp.sandbox.callback_url(), None);
}

// ---- lifecycle -------------------------------------------------------------

#[tokio::test]
async fn after_shutdown_the_port_refuses_connections() {
    let mp = start_sandbox(10.0).await;
    let addr = mp.sandbox.local_addr();
    assert_eq!(mp.get_json("v2/productList", &[]).await["code"], 200);

    mp.sandbox.clone().shutdown().await;

    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_sandbox() {
    let mp = start_sandbox(10.0).await;
    let addr = mp.sandbox.local_addr();

    drop(mp);

    let closed = async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, closed)
        .await
        .expect("the port closes once no handle is left");
}
