//! The qBittorrent front and `/metrics` through real HTTP/1.1 on 127.0.0.1, as Sonarr,
//! Radarr, Prowlarr and Prometheus use them, on the lab: login, versions, preferences; a
//! magnet, an `ed2k://` link and Torznab's synthetic-btih magnet added with a category and
//! followed to completion; one deleted with its file; bad input refused with qBittorrent's
//! codes and nothing changed; the metrics' counters moving with the download. And the gRPC
//! reflection v1alpha that the official Python client speaks.

use std::time::{Duration, Instant};

use junction_core::NetworkId;
use lab::LabFile;
use serde_json::Value;

use crate::harness::http::{Fronts, Reply};
use crate::harness::{Running, start};
use crate::lab::{MIB, gateway, search_until_complete, world};

/// Longest any one request may take.
const REQUEST_TIME: Duration = Duration::from_secs(60);
/// Longest the downloads may take to complete.
const DOWNLOAD_TIME: Duration = Duration::from_secs(120);

/// The HTTP fronts of a gateway, and a client that keeps qBittorrent's cookie.
struct Front {
    fronts: Fronts,
    cookie: Option<String>,
}

impl Front {
    async fn serve(gw: &Running) -> Front {
        Front {
            fronts: Fronts::serve(gw, REQUEST_TIME).await,
            cookie: None,
        }
    }

    async fn stop(self) {
        self.fronts.stop().await;
    }

    async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], "", b"").await
    }

    /// A form POST, as the apps send their changes.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    junction_core::link::percent_encode(k),
                    junction_core::link::percent_encode(v)
                )
            })
            .collect();
        self.request(
            "POST",
            path,
            &[],
            "application/x-www-form-urlencoded",
            body.join("&").as_bytes(),
        )
        .await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: &[u8],
    ) -> Reply {
        let length = body.len().to_string();
        let cookie = self.cookie.as_ref().map(|c| format!("SID={c}"));
        let mut all = vec![("Content-Length", length.as_str())];
        if !content_type.is_empty() {
            all.push(("Content-Type", content_type));
        }
        if let Some(c) = &cookie {
            all.push(("Cookie", c));
        }
        all.extend_from_slice(headers);
        self.fronts.request(method, path, &all, body, |_| {}).await
    }

    /// Logs in as the apps do and keeps the cookie.
    async fn login(&mut self, password: &str) -> Reply {
        let r = self
            .post(
                "/api/v2/auth/login",
                &[("username", "admin"), ("password", password)],
            )
            .await;
        if let Some(sid) = r.header("set-cookie").and_then(|c| {
            c.strip_prefix("SID=")
                .map(|v| v.split(';').next().unwrap().to_owned())
        }) {
            self.cookie = Some(sid);
        }
        r
    }

    async fn torrents(&self, query: &str) -> Vec<Value> {
        let r = self.get(&format!("/api/v2/torrents/info{query}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().as_array().unwrap().clone()
    }
}

/// The sum of a metric's samples whose line contains `filter`.
fn metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(name) && l.contains(filter))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The multipart boundary of the forms the test sends.
const BOUNDARY: &str = "XyZboundary";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbittorrent_front_adds_tracks_and_deletes_and_metrics_move() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 4, Some(4 * MIB)).await;
    let mut gw = gateway(&world, &dir.path().join("gw")).await;
    let mut front = Front::serve(&gw).await;
    search_until_complete(&mut gw, &world, "lab").await;

    let before = metrics_are_prometheus_text(&front).await;
    login_then_versions_and_preferences(&mut front).await;

    let magnet_file = world
        .files
        .iter()
        .find(|f| f.is_on(NetworkId::BITTORRENT) && f.networks().count() == 1)
        .unwrap();
    let ed2k_file = world
        .files
        .iter()
        .find(|f| {
            f.is_on(NetworkId::ED2K) && !f.is_on(NetworkId::BITTORRENT) && !f.name.contains("Ocean")
        })
        .unwrap();
    let magnet = magnet_file.magnet(world.tracker_url()).unwrap();
    let ed2k = ed2k_file.ed2k_link().unwrap();

    bad_input_is_refused_and_starts_nothing(&front, &gw, &magnet).await;
    let synthetic_hash = links_are_added_with_a_category(&front, &magnet, &ed2k).await;
    let magnet_hash = hex::encode(magnet_file.id.get(junction_core::HashKind::Btih).unwrap());
    listed_by_category(&front, &magnet_hash, &synthetic_hash).await;
    followed_to_completion(&front).await;
    properties_and_files(&front, &magnet_hash, magnet_file).await;
    deleted_with_its_file(&front, &gw, &magnet_hash, magnet_file).await;
    counters_moved_with_the_download(&front, &before).await;
    categories_persist(front, &gw).await;

    gw.stop().await;
    world.shutdown().await;
}

/// `/metrics` is Prometheus' text format (0.0.4, not OpenMetrics), and has counted the
/// searches. Returns the text, to compare with later.
async fn metrics_are_prometheus_text(front: &Front) -> String {
    let metrics = front.get("/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .contains("version=0.0.4"),
        "{}",
        metrics.head
    );
    let before = metrics.text();
    for counter in [
        "junction_network_searches_total",
        "junction_network_received_bytes_total",
    ] {
        assert!(
            before.contains(&format!("# TYPE {counter} counter")),
            "{counter}: {before}"
        );
    }
    assert!(!before.contains("# EOF"), "{before}");
    assert!(
        metric(&before, "junction_network_searches_total", "ed2k") > 0.0,
        "{before}"
    );
    before
}

/// Not logged in: 403, as the apps expect before they log in. Logged in: the versions
/// and preferences the apps read.
async fn login_then_versions_and_preferences(front: &mut Front) {
    assert_eq!(front.get("/api/v2/app/webapiVersion").await.status, 403);
    let login = front.login("anything").await;
    assert_eq!((login.status, login.text().as_str()), (200, "Ok."));
    assert!(front.cookie.is_some(), "{}", login.head);
    let api = front.get("/api/v2/app/webapiVersion").await;
    assert_eq!(api.status, 200);
    assert!(api.text().starts_with("2."), "{}", api.text());
    assert!(
        front
            .get("/api/v2/app/version")
            .await
            .text()
            .starts_with('v')
    );
    let prefs = front.get("/api/v2/app/preferences").await.json();
    assert!(prefs["save_path"].as_str().unwrap().ends_with("downloads"));
    assert_eq!(prefs["max_ratio_enabled"], Value::Bool(false));
}

/// Bad input first: each refused with qBittorrent's code, nothing started.
async fn bad_input_is_refused_and_starts_nothing(front: &Front, gw: &Running, magnet: &str) {
    let bad = front
        .post(
            "/api/v2/torrents/add",
            &[
                ("urls", &format!("{magnet}\nmagnet:?xt=urn:btih:nothex")),
                ("category", "tv-sonarr"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("not a valid link"), "{}", bad.text());
    let multipart = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"torrents\"; filename=\"x.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\nnot bencode\r\n--{BOUNDARY}--\r\n"
    );
    let bad = front
        .request(
            "POST",
            "/api/v2/torrents/add",
            &[],
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            multipart.as_bytes(),
        )
        .await;
    assert_eq!(bad.status, 415, "{}", bad.text());
    assert!(gw.gw.transfers.list().is_empty());
    assert!(front.torrents("").await.is_empty());
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let r = front
        .get(&format!("/api/v2/torrents/properties?hash={unknown}"))
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        front
            .post(
                "/api/v2/torrents/setCategory",
                &[("hashes", unknown), ("category", "nope")]
            )
            .await
            .status,
        409
    );
    assert_eq!(
        front
            .post("/api/v2/torrents/createCategory", &[("category", "")])
            .await
            .status,
        400
    );
    assert_eq!(
        front.get("/api/v2/torrents/categories").await.json(),
        serde_json::json!({})
    );
}

/// A magnet and an eD2k link with a category, as Sonarr adds them (multipart), and
/// Torznab's synthetic-btih magnet for eD2k-only content, fed back through add, paused,
/// in another category. Returns the synthetic info-hash.
async fn links_are_added_with_a_category(front: &Front, magnet: &str, ed2k: &str) -> String {
    let form = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"urls\"\r\n\r\n{magnet}\n{ed2k}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\ntv-sonarr\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"paused\"\r\n\r\nfalse\r\n--{BOUNDARY}--\r\n"
    );
    let added = front
        .request(
            "POST",
            "/api/v2/torrents/add",
            &[],
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            form.as_bytes(),
        )
        .await;
    assert_eq!((added.status, added.text().as_str()), (200, "Ok."));
    // Torznab's synthetic-btih magnet for eD2k-only content, fed back through add.
    let feed = front
        .get("/torznab/api?t=search&q=ocean+waves")
        .await
        .text();
    let key = "name=\"magneturl\" value=\"";
    let at = feed.find(key).unwrap() + key.len();
    let synthetic = feed[at..at + feed[at..].find('"').unwrap()].replace("&amp;", "&");
    let synthetic_hash = synthetic
        .split("urn:btih:")
        .nth(1)
        .and_then(|h| h.get(..40))
        .unwrap_or_else(|| panic!("no btih in {synthetic}"))
        .to_ascii_lowercase();
    let r = front
        .post(
            "/api/v2/torrents/add",
            &[
                ("urls", &synthetic),
                ("category", "radarr"),
                ("stopped", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cats = front.get("/api/v2/torrents/categories").await.json();
    assert!(
        cats["tv-sonarr"].is_object() && cats["radarr"].is_object(),
        "{cats}"
    );
    synthetic_hash
}

/// Each category lists its transfers; the paused one is resumed.
async fn listed_by_category(front: &Front, magnet_hash: &str, synthetic_hash: &str) {
    let list = front.torrents("?category=tv-sonarr").await;
    assert_eq!(list.len(), 2, "{list:#?}");
    assert!(list.iter().any(|t| t["hash"] == magnet_hash), "{list:#?}");
    let radarr = front.torrents("?category=radarr").await;
    assert_eq!(radarr.len(), 1, "{radarr:#?}");
    assert_eq!(radarr[0]["hash"], synthetic_hash);
    assert_eq!(radarr[0]["state"], "pausedDL");
    let r = front
        .post("/api/v2/torrents/resume", &[("hashes", synthetic_hash)])
        .await;
    assert_eq!(r.status, 200);
}

/// Followed to completion: progress and state move as the apps read them.
async fn followed_to_completion(front: &Front) {
    let started = Instant::now();
    let mut states = std::collections::BTreeSet::new();
    loop {
        let all = front.torrents("").await;
        for t in &all {
            states.insert(t["state"].as_str().unwrap().to_owned());
            let p = t["progress"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{t}");
        }
        let done = all.len() == 3
            && all
                .iter()
                .all(|t| t["progress"] == 1.0 && t["state"] == "stalledUP");
        if done {
            for t in &all {
                assert!(t["completion_on"].as_i64().unwrap() > 0, "{t}");
                assert!(
                    std::path::Path::new(t["content_path"].as_str().unwrap()).exists(),
                    "{t}"
                );
                assert_eq!(t["eta"], 0);
            }
            break;
        }
        assert!(
            started.elapsed() < DOWNLOAD_TIME,
            "not complete after {DOWNLOAD_TIME:?}: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        states.iter().any(|s| s.ends_with("DL")),
        "never seen downloading: {states:?}"
    );
}

/// The completed magnet's properties and files.
async fn properties_and_files(front: &Front, magnet_hash: &str, magnet_file: &LabFile) {
    let props = front
        .get(&format!("/api/v2/torrents/properties?hash={magnet_hash}"))
        .await
        .json();
    assert_eq!(props["total_size"], magnet_file.size);
    let files = front
        .get(&format!("/api/v2/torrents/files?hash={magnet_hash}"))
        .await
        .json();
    assert_eq!(files[0]["name"], magnet_file.name.as_str());
    assert_eq!(files[0]["progress"], 1.0);
}

/// Deleted with its file.
async fn deleted_with_its_file(
    front: &Front,
    gw: &Running,
    magnet_hash: &str,
    magnet_file: &LabFile,
) {
    let gone = front.torrents(&format!("?hashes={magnet_hash}")).await;
    let path = gone[0]["content_path"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&magnet_file.path).unwrap()
    );
    let r = front
        .post(
            "/api/v2/torrents/delete",
            &[("hashes", magnet_hash), ("deleteFiles", "true")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !std::path::Path::new(&path).exists(),
        "{path} is still there"
    );
    assert_eq!(front.torrents("").await.len(), 2);
    assert_eq!(gw.gw.transfers.list().len(), 2);
}

/// The counters moved with the download, from the `before` text of `/metrics`.
async fn counters_moved_with_the_download(front: &Front, before: &str) {
    let after = front.get("/metrics").await.text();
    for (name, filter) in [
        ("junction_network_verified_bytes_total", "bittorrent"),
        ("junction_network_verified_bytes_total", "ed2k"),
        ("junction_network_received_bytes_total", "bittorrent"),
        ("junction_http_requests_total", "qbittorrent"),
    ] {
        assert!(
            metric(&after, name, filter) > metric(before, name, filter),
            "{name}{{{filter}}} did not move:\n{after}"
        );
    }
    assert_eq!(
        metric(&after, "junction_transfers", "state=\"complete\""),
        2.0,
        "{after}"
    );
    assert!(
        metric(&after, "junction_http_requests_total", "code=\"403\"") >= 1.0,
        "{after}"
    );
}

/// Categories persist: a new front on the same gateway still has them.
async fn categories_persist(front: Front, gw: &Running) {
    front.stop().await;
    let front = Front::serve(gw).await;
    let r = front
        .request(
            "GET",
            "/api/v2/torrents/categories",
            &[("Authorization", "Bearer anything")],
            "",
            b"",
        )
        .await;
    // A gateway without a token has no Bearer key to check: the cookie is the way in.
    assert_eq!(r.status, 403);
    let mut front = front;
    front.login("").await;
    let cats = front.get("/api/v2/torrents/categories").await.json();
    assert!(cats["tv-sonarr"].is_object(), "{cats}");
    assert_eq!(front.torrents("?category=radarr").await.len(), 1);

    front.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbittorrent_front_with_a_token_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), vec![], Some("s3cret")).await;
    let mut front = Front::serve(&gw).await;
    assert_eq!(front.get("/api/v2/app/version").await.status, 403);
    let r = front.login("wrong").await;
    assert_eq!((r.status, r.text().as_str()), (200, "Fails."));
    assert!(front.cookie.is_none());
    let bearer = |t: &'static str| [("Authorization", t)];
    let r = front
        .request(
            "GET",
            "/api/v2/app/version",
            &bearer("Bearer nope"),
            "",
            b"",
        )
        .await;
    assert_eq!(r.status, 403);
    let r = front
        .request(
            "GET",
            "/api/v2/app/version",
            &bearer("Bearer s3cret"),
            "",
            b"",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(front.login("s3cret").await.text(), "Ok.");
    assert_eq!(front.get("/api/v2/app/webapiVersion").await.status, 200);
    // /metrics is behind the token like the other fronts.
    front.cookie = None;
    assert_eq!(front.get("/metrics").await.status, 401);
    let r = front
        .request("GET", "/metrics", &bearer("Bearer s3cret"), "", b"")
        .await;
    assert_eq!(r.status, 200);
    front.stop().await;
    gw.stop().await;
}

/// What the official Python client asks: v1alpha reflection lists the services, and a file
/// descriptor comes back for the gateway's service.
#[tokio::test]
async fn reflection_v1alpha_lists_the_services() {
    use futures::StreamExt;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), vec![], None).await;
    let mut refl = ServerReflectionClient::new(crate::harness::channel(gw.addr).await);
    let ask = |m: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let mut resp = refl
        .server_reflection_info(futures::stream::iter([
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "junction.v1.Gateway".into(),
            )),
        ]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        resp.next().await.unwrap().unwrap().message_response
    else {
        panic!("no service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for s in ["junction.v1.Gateway", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == s), "{s}: {names:?}");
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        resp.next().await.unwrap().unwrap().message_response
    else {
        panic!("no file descriptor")
    };
    assert!(!files.file_descriptor_proto.is_empty());
    gw.stop().await;
}
