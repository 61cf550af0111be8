//! The HTTP fronts over TLS with the gRPC API's own certificate and key (a self-signed one
//! made here), off loopback, where the token is required; and off loopback without a
//! token, where they refuse to start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::harness::http::Reply;
use crate::harness::start_with;

/// A TLS connection that trusts only `ca_pem` and checks that the certificate names `domain`.
async fn connect_tls(
    addr: SocketAddr,
    ca_pem: &str,
    domain: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls_pki_types::ServerName::try_from(domain.to_owned()).unwrap();
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// `GET path` over TLS (HTTP/1.1, `Connection: close`); the answers here have a length, so
/// the body is what follows the head.
async fn get_tls(
    addr: SocketAddr,
    ca_pem: &str,
    domain: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let work = async {
        let mut s = connect_tls(addr, ca_pem, domain)
            .await
            .unwrap_or_else(|e| panic!("TLS to {addr} as {domain}: {e}"));
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        // The server may close without a close_notify once the body is complete.
        if let Err(e) = s.read_to_end(&mut raw).await {
            assert!(!raw.is_empty(), "GET {path}: {e}");
        }
        let h = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no complete response head")
            + 4;
        let head = String::from_utf8_lossy(&raw[..h]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Reply {
            status,
            head,
            body: raw[h..].to_vec(),
        }
    };
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .unwrap_or_else(|_| panic!("GET {path} over TLS took longer than 60 s"))
}

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
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway::http::serve(gw.gw.clone(), listener, async {
        let _ = stopped.await;
    }));

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

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the HTTP server did not stop")
        .unwrap()
        .unwrap();
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
