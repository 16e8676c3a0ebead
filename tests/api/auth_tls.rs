//! Bearer tokens on the gRPC API, TLS and mutual TLS, with certificates made at test time.

use std::path::PathBuf;

use mp_gateway::config::TlsFiles;
use mp_gateway::proto::ListProductsRequest;
use mp_gateway::proto::product_service_client::ProductServiceClient;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{TestGateway, error_reason, gateway, gateway_binary};

fn list_with_token(token: Option<&str>) -> tonic::Request<ListProductsRequest> {
    crate::support::with_token(ListProductsRequest::default(), token)
}

#[tokio::test]
async fn calls_need_one_of_the_configured_bearer_tokens_but_health_does_not() {
    let (gateway, sandbox) = gateway()
        .grpc_auth_tokens(&["team-a-token", "team-b-token"])
        .start()
        .await;
    let mut products = gateway.products();

    let missing = products
        .list_products(list_with_token(None))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(error_reason(&missing).as_deref(), Some("MISSING_TOKEN"));
    let wrong = products
        .list_products(list_with_token(Some("team-c-token")))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(error_reason(&wrong).as_deref(), Some("INVALID_TOKEN"));
    for refused in [&missing, &wrong] {
        assert!(
            !refused.message().contains("GRPC_AUTH_TOKENS"),
            "the message names no server setting: {}",
            refused.message()
        );
    }
    assert_eq!(sandbox.total_requests(), 0, "refused calls never reach MP");

    for token in ["team-a-token", "team-b-token"] {
        let reply = products
            .list_products(list_with_token(Some(token)))
            .await
            .unwrap();
        assert_eq!(reply.into_inner().products.len(), 3);
    }
    let health = HealthClient::new(gateway.channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("probes need no token");
    assert_eq!(health.into_inner().status, 1);
}

/// A CA, a server certificate for localhost signed by it, and a client certificate.
struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca.pem(),
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["client.example".into()]),
    }
}

/// The server's PEM files, written where `GRPC_TLS_*` would name them.
fn tls_config(pki: &Pki, require_client_certs: bool) -> TlsFiles {
    let dir = std::env::temp_dir().join(format!("mpgw-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    TlsFiles {
        cert: write("cert.pem", &pki.server.0),
        key: write("key.pem", &pki.server.1),
        client_ca: require_client_certs.then(|| write("ca.pem", &pki.ca_pem)),
    }
}

async fn tls_channel(
    gateway: &TestGateway,
    pki: &Pki,
    client_cert: bool,
) -> Result<Channel, tonic::transport::Error> {
    mp_gateway::tls::install_crypto_provider();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if client_cert {
        tls = tls.identity(Identity::from_pem(&pki.client.0, &pki.client.1));
    }
    Channel::from_shared(format!("https://localhost:{}", gateway.grpc_addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

#[tokio::test]
async fn grpc_is_served_over_tls_and_plaintext_clients_are_refused() {
    let pki = pki();
    let tls = tls_config(&pki, false);
    let (gateway, _sandbox) = gateway()
        .with(|config| config.grpc_tls = Some(tls))
        .start()
        .await;

    let channel = tls_channel(&gateway, &pki, false)
        .await
        .expect("TLS handshake succeeds");
    let reply = ProductServiceClient::new(channel)
        .list_products(ListProductsRequest::default())
        .await
        .unwrap();
    assert_eq!(reply.into_inner().products.len(), 3);

    let plaintext = gateway
        .products()
        .list_products(ListProductsRequest::default())
        .await;
    assert!(
        plaintext.is_err(),
        "a plaintext client cannot talk to a TLS server"
    );
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_get_in() {
    let pki = pki();
    let tls = tls_config(&pki, true);
    let (gateway, sandbox) = gateway()
        .with(|config| config.grpc_tls = Some(tls))
        .start()
        .await;

    let channel = tls_channel(&gateway, &pki, true)
        .await
        .expect("mTLS handshake succeeds");
    ProductServiceClient::new(channel)
        .list_products(ListProductsRequest::default())
        .await
        .expect("a client with a certificate is served");

    let refused = match tls_channel(&gateway, &pki, false).await {
        Err(_) => true,
        Ok(channel) => ProductServiceClient::new(channel)
            .list_products(ListProductsRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate is refused");
    assert_eq!(
        sandbox.calls("v2/productList"),
        1,
        "only the authenticated call reached MP"
    );
}

#[test]
fn the_binary_refuses_to_start_with_an_unreadable_tls_key() {
    let dir = std::env::temp_dir().join(format!("mpgw-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert: PathBuf = dir.join("cert.pem");
    std::fs::write(&cert, pki().server.0).unwrap();
    let output = gateway_binary()
        .arg("--sandbox")
        .env("GRPC_TLS_CERT", &cert)
        .env("GRPC_TLS_KEY", dir.join("missing-key.pem"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GRPC_TLS_KEY"), "{stderr}");
}
