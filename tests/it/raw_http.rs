//! One HTTP/1.1 request on its own connection, plain or over TLS, for the tests of the HTTP
//! fronts that live outside `http.rs`: the status, the head and the body (de-chunked).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any one request may take, body included.
const REQUEST_TIME: Duration = Duration::from_secs(60);

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` on plain TCP.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let s = TcpStream::connect(addr).await.unwrap();
    request(s, &addr.to_string(), path, headers).await
}

/// `GET path` over TLS, trusting only `ca_pem` and checking the certificate names `domain`.
pub async fn get_tls(
    addr: SocketAddr,
    ca_pem: &str,
    domain: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let s = connect_tls(addr, ca_pem, domain)
        .await
        .unwrap_or_else(|e| panic!("TLS to {addr} as {domain}: {e}"));
    request(s, domain, path, headers).await
}

pub async fn connect_tls(
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

async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let work = async {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        // A TLS peer may close without close_notify once the body is complete.
        if let Err(e) = s.read_to_end(&mut raw).await {
            assert!(!raw.is_empty(), "GET {path}: {e}");
        }
        let h = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no complete response head")
            + 4;
        let head = String::from_utf8(raw[..h].to_vec()).unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut reply = Reply {
            status,
            head,
            body: raw[h..].to_vec(),
        };
        if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            reply.body = dechunk(&reply.body);
        }
        reply
    };
    tokio::time::timeout(REQUEST_TIME, work)
        .await
        .unwrap_or_else(|_| panic!("GET {path} took longer than {REQUEST_TIME:?}"))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}

/// The HTTP fronts of a gateway on `listener`, until the returned sender fires.
pub fn serve(
    gw: &gateway::Gateway,
    listener: tokio::net::TcpListener,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), gateway::GatewayError>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gateway::http::serve(gw.clone(), listener, async {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Stops what [`serve`] started, and fails the test if it ended in an error.
pub async fn stop(
    (stop, task): (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), gateway::GatewayError>>,
    ),
) {
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the HTTP server did not stop")
        .unwrap()
        .unwrap();
}

/// The sum of the samples of `name` whose labels contain every `label="value"` given.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
