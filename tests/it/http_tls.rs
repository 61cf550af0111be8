//! The HTTP fronts over TLS with the gRPC API's own certificate and key (a self-signed one
//! made here), off loopback, where the token is required; and off loopback without a
//! token, where they refuse to start.

use std::net::SocketAddr;
use std::time::Duration;

use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::harness::start_with;
use crate::raw_http::{self, connect_tls, get_tls};

#[tokio::test]
async fn http_fronts_serve_tls_with_the_apis_certificate_and_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let ca = key.cert.pem();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &ca).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
    let gw = start_with(&dir.path().join("data"), vec![], |c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
        c.token = Some("s3cret".into());
    })
    .await;
    // Every address, so not loopback: the token is what guards it.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], listener.local_addr().unwrap().port()));
    let server = raw_http::serve(&gw.gw, listener);

    // Torznab's caps and /metrics with the token, through a client that trusts only the
    // API's certificate.
    let r = get_tls(
        addr,
        &ca,
        "localhost",
        "/torznab/api?t=caps&apikey=s3cret",
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("<caps>"), "{}", r.text());
    let r = get_tls(
        addr,
        &ca,
        "localhost",
        "/metrics",
        &[("Authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("# TYPE junction_transfers gauge"),
        "{}",
        r.text()
    );

    // Without the token, or with a wrong one, over TLS: refused.
    let r = get_tls(addr, &ca, "localhost", "/metrics", &[]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = get_tls(addr, &ca, "localhost", "/torznab/api?t=caps", &[]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains(r#"<error code="100""#), "{}", r.text());
    let r = get_tls(
        addr,
        &ca,
        "localhost",
        "/metrics",
        &[("Authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());

    // A client that trusts another certificate gets no connection.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    assert!(
        connect_tls(addr, &other.cert.pem(), "localhost")
            .await
            .is_err()
    );
    // Nor does plain HTTP get an HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut got)).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // The gRPC API serves the same certificate: one CA file is enough for both.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca))
        .domain_name("localhost");
    let ch = Channel::from_shared(format!("https://{}", gw.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = GatewayClient::with_interceptor(ch, |mut req: tonic::Request<()>| {
        req.metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        Ok(req)
    });
    c.list_networks(pb::ListNetworksRequest {}).await.unwrap();

    raw_http::stop(server).await;
    gw.stop().await;
}

#[tokio::test]
async fn http_fronts_off_loopback_without_a_token_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_with(dir.path(), vec![], |_| {}).await;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = gateway::http::serve(gw.gw.clone(), listener, std::future::pending())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("without a token"), "{msg}");
    assert!(msg.contains("gateway.token"), "{msg}");
    gw.stop().await;
}
