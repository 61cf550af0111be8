//! The API's edges: auth, health, reflection, networks, shares, and bad requests.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use proto::v1::start_transfer_request::Source;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::harness::{channel, start};
use crate::testnet::{Behavior, TestFile, TestNet};

type Client = GatewayClient<tonic::transport::Channel>;

fn net() -> Arc<dyn DynNetwork> {
    let file = TestFile::new(
        "a.txt",
        100,
        1,
        ContentId::new(None).with(HashKind::Sha1, &[1; 20]),
    );
    Arc::new(TestNet::new(
        "testnet",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![file],
    ))
}

#[tokio::test]
async fn a_token_is_required_on_every_call_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), vec![net()], Some("s3cret")).await;
    let ch = channel(gw.addr).await;
    let mut plain = GatewayClient::new(ch.clone());
    let err = plain
        .list_networks(pb::ListNetworksRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("token"), "{}", err.message());
    let err = HealthClient::new(ch.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let mut wrong = tonic::Request::new(pb::ListNetworksRequest {});
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(
        plain.list_networks(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let mut right = tonic::Request::new(pb::ListNetworksRequest {});
    right
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let nets = plain.list_networks(right).await.unwrap().into_inner();
    assert_eq!(nets.networks.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn health_reflection_and_networks_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![net()], None).await;
    let ch = channel(gw.addr).await;
    let mut health = HealthClient::new(ch.clone());
    for service in ["", "junction.v1.Gateway", "testnet"] {
        let mut status = ServingStatus::Unknown;
        for _ in 0..50 {
            match health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
            {
                Ok(r) => {
                    status = r.into_inner().status();
                    break;
                }
                // Network entries appear with the first status round.
                Err(e) if e.code() == Code::NotFound => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(status, ServingStatus::Serving, "service {service:?}");
    }

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut refl = ServerReflectionClient::new(ch);
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = refl
        .server_reflection_info(futures::stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        resp.next().await.unwrap().unwrap().message_response
    else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"junction.v1.Gateway".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );

    let nets = gw
        .client
        .list_networks(pb::ListNetworksRequest {})
        .await
        .unwrap()
        .into_inner();
    let n = &nets.networks[0];
    assert_eq!(
        (n.id.as_str(), n.state()),
        ("testnet", pb::network::State::Online)
    );
    assert!(n.capabilities.as_ref().unwrap().any_of);
    // How peers reach it, typed as well as in words.
    assert_eq!(n.reachability, "LowID 7");
    assert_eq!(n.inbound(), pb::network::Inbound::Firewalled);
    assert_eq!(n.listening, "127.0.0.1:4662");
    assert_eq!(n.external_ip, "");
    gw.stop().await;
}

fn start_request(s: Source) -> pb::StartTransferRequest {
    pb::StartTransferRequest {
        source: Some(s),
        networks: vec![],
        files: vec![],
    }
}

#[tokio::test]
async fn bad_requests_get_actionable_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![net()], None).await;
    let c = &mut gw.client;

    bad_searches_say_what_is_wrong(c).await;
    bad_sources_say_what_is_wrong(c).await;
    unknown_transfers_are_not_found(c).await;
    bad_endpoints_and_shares_say_what_is_wrong(c).await;
    nothing_changed(c).await;
    an_offset_past_the_end_is_refused(c).await;
    gw.stop().await;
}

/// A query that does not parse, a size with an unknown unit, an unknown network.
async fn bad_searches_say_what_is_wrong(c: &mut Client) {
    let search = |q: &str| pb::SearchRequest {
        query: q.into(),
        ..Default::default()
    };
    let e = c.search(search("(unclosed")).await.err().unwrap();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("parentheses"), "{}", e.message());
    let e = c.search(search("x size>5QB")).await.err().unwrap();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("unit"),
        "{e:?}"
    );
    let e = c
        .search(pb::SearchRequest {
            query: "x".into(),
            networks: vec!["kad".into()],
            ..Default::default()
        })
        .await
        .err()
        .unwrap();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("kad"),
        "{e:?}"
    );
}

/// Links, a .torrent and a search item that start no transfer.
async fn bad_sources_say_what_is_wrong(c: &mut Client) {
    let cases = [
        (
            Source::Link("ed2k://|file|x|12|nothex|/".into()),
            Code::InvalidArgument,
            "hash",
        ),
        (
            Source::Link("magnet:?dn=nothing".into()),
            Code::InvalidArgument,
            "magnet",
        ),
        (
            Source::Link("http://example.invalid/file".into()),
            Code::InvalidArgument,
            "not a link",
        ),
        (
            Source::Torrent(b"this is not bencode".to_vec()),
            Code::InvalidArgument,
            "bad .torrent",
        ),
        (
            Source::ItemId("no-such-item".into()),
            Code::NotFound,
            "no search item",
        ),
    ];
    for (source, code, needle) in cases {
        let e = c.start_transfer(start_request(source)).await.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(needle), "{needle}: {}", e.message());
    }
}

/// A transfer id that names nothing.
async fn unknown_transfers_are_not_found(c: &mut Client) {
    let e = c
        .get_transfer(pb::TransferRef { id: "nope".into() })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::NotFound && e.message().contains("nope"),
        "{e:?}"
    );
    let e = c
        .pause_transfer(pb::TransferRef { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

/// An unknown network, an address without a port, a path that does not exist.
async fn bad_endpoints_and_shares_say_what_is_wrong(c: &mut Client) {
    let e = c
        .add_endpoint(pb::AddEndpointRequest {
            network: "gopher".into(),
            address: "127.0.0.1:1".into(),
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("gopher"),
        "{e:?}"
    );
    let e = c
        .add_endpoint(pb::AddEndpointRequest {
            network: "testnet".into(),
            address: "nocolon".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .share(pb::ShareRequest {
            path: "/no/such/path".into(),
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("/no/such/path"),
        "{e:?}"
    );
}

/// Nothing changed: no transfer, no share.
async fn nothing_changed(c: &mut Client) {
    assert!(
        c.list_transfers(pb::ListTransfersRequest {})
            .await
            .unwrap()
            .into_inner()
            .transfers
            .is_empty()
    );
    assert!(
        c.list_shares(pb::ListSharesRequest {})
            .await
            .unwrap()
            .into_inner()
            .files
            .is_empty()
    );
}

/// An offset past the end of a real transfer.
async fn an_offset_past_the_end_is_refused(c: &mut Client) {
    // [1; 20] in base32, the hash of the test network's file.
    let t = c
        .start_transfer(start_request(Source::Link(
            "magnet:?xt=urn:sha1:AEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIB&xl=100&dn=a.txt".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    let e = c
        .read_content(pb::ReadContentRequest {
            transfer_id: t.id.clone(),
            offset: 101,
            length: 0,
        })
        .await
        .err()
        .unwrap();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("past the end"),
        "{e:?}"
    );
}

#[tokio::test]
async fn shares_are_offered_to_every_network_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    std::fs::create_dir(files.path().join("sub")).unwrap();
    std::fs::write(files.path().join("one.txt"), b"one").unwrap();
    std::fs::write(files.path().join("sub/two.txt"), b"two").unwrap();
    let mut gw = start(dir.path(), vec![net()], None).await;
    let r = gw
        .client
        .share(pb::ShareRequest {
            path: files.path().to_string_lossy().into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.files.len(), 2);
    assert!(r.files.iter().all(|f| f.networks == vec!["testnet"]));
    let listed = gw
        .client
        .list_shares(pb::ListSharesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.files.len(), 2);
    let one = listed.files.iter().find(|f| f.name == "one.txt").unwrap();
    // SHA-1("one") in base32.
    assert!(
        one.content
            .as_ref()
            .unwrap()
            .urns
            .iter()
            .any(|u| u.starts_with("urn:sha1:"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls_serves_the_api_to_a_client_that_trusts_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
    let gw = crate::harness::start_with(&dir.path().join("data"), vec![net()], |c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(key.cert.pem()))
        .domain_name("localhost");
    let url = format!("https://{}", gw.addr);
    let ch = Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let nets = GatewayClient::new(ch)
        .list_networks(pb::ListNetworksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(nets.networks.len(), 1);
    // A plain-text client gets nowhere.
    let plain = Channel::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(
            GatewayClient::new(ch)
                .list_networks(pb::ListNetworksRequest {})
                .await
                .is_err()
        );
    }
    gw.stop().await;
}
