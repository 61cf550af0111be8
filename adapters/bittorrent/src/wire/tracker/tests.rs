//! Tracker tests: BEP 15 byte layouts, HTTP query and response forms, round trips.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use proptest::prelude::*;

use super::http::*;
use super::udp::{self, Announce, Family, Request, Response};
use super::{Event, ScrapeStats};
use crate::error::TrackerError;
use crate::wire::id::{InfoHash, PeerId};

fn announce_req() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([0x12; 20]),
        peer_id: PeerId(*b"-JN0001-abcdefghijkl"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Event::Started,
        compact: true,
        numwant: Some(50),
        key: Some(0xDEAD_BEEF),
        tracker_id: None,
    }
}

#[test]
fn http_announce_url() {
    let mut r = announce_req();
    r.info_hash = InfoHash(*b"\x00\x01 abcdefghijklm~-._");
    let url = r.to_url("http://t.example:6969/announce");
    assert_eq!(
        url,
        "http://t.example:6969/announce?info_hash=%00%01%20abcdefghijklm~-._&peer_id=-JN0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1&event=started&numwant=50&key=DEADBEEF"
    );
    assert!(
        r.to_url("http://t/a?passkey=x")
            .starts_with("http://t/a?passkey=x&info_hash=")
    );
    let back = AnnounceRequest::from_query(url.split_once('?').unwrap().1).unwrap();
    assert_eq!(back, r);
    assert_eq!(
        AnnounceRequest::from_query("peer_id=x&port=1"),
        Err(TrackerError::Invalid {
            key: "peer_id",
            why: "malformed value"
        })
    );
    assert_eq!(
        AnnounceRequest::from_query("port=1"),
        Err(TrackerError::Missing("info_hash"))
    );
}

#[test]
fn http_announce_responses() {
    let body = b"d8:completei5e10:incompletei3e8:intervali1800e12:min intervali60e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x506:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe215:warning message4:hmm.e";
    let r = AnnounceResponse::parse(body).unwrap();
    assert_eq!(r.interval, 1800);
    assert_eq!(r.min_interval, Some(60));
    assert_eq!((r.complete, r.incomplete), (Some(5), Some(3)));
    assert_eq!(r.warning.as_deref(), Some("hmm."));
    let want: Vec<SocketAddr> = vec![
        "127.0.0.1:6881".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
        "[::1]:6882".parse().unwrap(),
    ];
    assert_eq!(r.peers, want);
    assert_eq!(AnnounceResponse::parse(&r.encode()).unwrap(), r);

    // Dictionary peer list (BEP 3); a host name entry is skipped.
    let dict = b"d8:intervali900e5:peersld2:ip9:127.0.0.17:peer id20:-JN0001-abcdefghijkl4:porti6881eed2:ip9:peer.host4:porti1eed2:ip3:::14:porti2eeee";
    let r = AnnounceResponse::parse(dict).unwrap();
    assert_eq!(
        r.peers,
        vec![
            "127.0.0.1:6881".parse::<SocketAddr>().unwrap(),
            "[::1]:2".parse().unwrap()
        ]
    );

    assert_eq!(
        AnnounceResponse::parse(b"d14:failure reason12:unregisterede"),
        Err(TrackerError::Failure("unregistered".into()))
    );
    // Bad compact length, missing interval, negative interval, non-canonical bencode.
    assert!(matches!(
        AnnounceResponse::parse(b"d8:intervali1e5:peers5:abcdee"),
        Err(TrackerError::Compact(_))
    ));
    assert!(matches!(
        AnnounceResponse::parse(b"d8:intervali1e6:peers67:abcdefge"),
        Err(TrackerError::Compact(_))
    ));
    assert_eq!(
        AnnounceResponse::parse(b"d5:peers0:e"),
        Err(TrackerError::Missing("interval"))
    );
    assert!(AnnounceResponse::parse(b"d8:intervali-1ee").is_err());
    assert!(AnnounceResponse::parse(b"d8:intervali01ee").is_err());
    assert!(AnnounceResponse::parse(b"d5:peers0:8:intervali1ee").is_err());
}

#[test]
fn scrape_urls_and_responses() {
    assert_eq!(
        scrape_url("http://t.example/announce").as_deref(),
        Some("http://t.example/scrape")
    );
    assert_eq!(
        scrape_url("http://t.example/x/announce.php?k=1").as_deref(),
        Some("http://t.example/x/scrape.php?k=1")
    );
    assert_eq!(scrape_url("http://t.example/a"), None);
    assert_eq!(scrape_url("http://t.example/announce/x"), None);
    let h = InfoHash(*b"aaaaaaaaaaaaaaaaaaaa");
    assert_eq!(
        scrape_request_url("http://t/scrape", &[h, h]),
        "http://t/scrape?info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=aaaaaaaaaaaaaaaaaaaa"
    );
    let body =
        b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei5e10:downloadedi50e10:incompletei10eeee";
    let files = parse_scrape(body).unwrap();
    let stats = ScrapeStats {
        complete: 5,
        downloaded: 50,
        incomplete: 10,
    };
    assert_eq!(files, vec![(h, stats)]);
    assert_eq!(encode_scrape(&files), body);
    assert!(parse_scrape(b"d5:filesd3:abcdeee").is_err());
    assert_eq!(
        parse_scrape(&encode_failure("no")),
        Err(TrackerError::Failure("no".into()))
    );
}

#[test]
fn bep15_connect_layout() {
    let req = Request::Connect {
        transaction_id: 0x0102_0304,
    };
    assert_eq!(
        req.to_vec(),
        [
            0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4
        ]
    );
    let resp = [0, 0, 0, 0, 1, 2, 3, 4, 8, 7, 6, 5, 4, 3, 2, 1];
    assert_eq!(
        Response::decode(&resp, Family::V4).unwrap(),
        Response::Connect {
            transaction_id: 0x0102_0304,
            connection_id: 0x0807_0605_0403_0201
        }
    );
    // Longer packets are accepted (future extensions), shorter are not.
    let mut longer = resp.to_vec();
    longer.push(9);
    assert!(Response::decode(&longer, Family::V4).is_ok());
    assert_eq!(
        Response::decode(&resp[..15], Family::V4),
        Err(TrackerError::ShortPacket { need: 16, got: 15 })
    );
    let mut bad_magic = req.to_vec();
    bad_magic[0] = 1;
    assert_eq!(
        Request::decode(&bad_magic),
        Err(TrackerError::BadField("protocol_id"))
    );
}

#[test]
fn bep15_announce_layout() {
    let a = Announce {
        connection_id: 0x1122_3344_5566_7788,
        transaction_id: 7,
        info_hash: InfoHash([0xAB; 20]),
        peer_id: PeerId([0xCD; 20]),
        downloaded: 1,
        left: 2,
        uploaded: 3,
        event: Event::Completed,
        ip: None,
        key: 0x0A0B_0C0D,
        num_want: None,
        port: 6881,
    };
    let b = Request::Announce(a.clone()).to_vec();
    assert_eq!(b.len(), 98);
    assert_eq!(&b[..8], &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    assert_eq!(&b[8..16], &[0, 0, 0, 1, 0, 0, 0, 7]);
    assert_eq!(&b[16..36], &[0xAB; 20]);
    assert_eq!(&b[36..56], &[0xCD; 20]);
    assert_eq!(
        &b[56..80],
        &[
            0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3
        ]
    );
    assert_eq!(&b[80..84], &[0, 0, 0, 1], "event completed = 1");
    assert_eq!(&b[84..88], &[0, 0, 0, 0], "ip 0 = sender");
    assert_eq!(&b[88..92], &[0x0A, 0x0B, 0x0C, 0x0D]);
    assert_eq!(&b[92..96], &[0xFF; 4], "num_want -1 = default");
    assert_eq!(&b[96..98], &[0x1A, 0xE1]);
    assert_eq!(Request::decode(&b).unwrap(), Request::Announce(a));
    assert!(Request::decode(&b[..97]).is_err());

    let resp = [
        0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0x07, 0x08, 0, 0, 0, 2, 0, 0, 0, 3, 127, 0, 0, 1, 0x1A, 0xE1,
    ];
    assert_eq!(
        Response::decode(&resp, Family::V4).unwrap(),
        Response::Announce {
            transaction_id: 7,
            interval: 1800,
            leechers: 2,
            seeders: 3,
            peers: vec!["127.0.0.1:6881".parse().unwrap()],
        }
    );
    // Over IPv6 the same bytes are a ragged 18-byte list; a 5-byte tail is bad over IPv4.
    assert!(matches!(
        Response::decode(&resp, Family::V6),
        Err(TrackerError::Compact(_))
    ));
    assert!(Response::decode(&resp[..25], Family::V4).is_err());
}

#[test]
fn bep15_scrape_and_error_layout() {
    let req = Request::Scrape {
        connection_id: 1,
        transaction_id: 2,
        info_hashes: vec![InfoHash([3; 20])],
    };
    let b = req.to_vec();
    assert_eq!(&b[..16], &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2]);
    assert_eq!(Request::decode(&b).unwrap(), req);
    let too_many = [&b[..16], &[0u8; 20 * 75][..]].concat();
    assert!(Request::decode(&too_many).is_err());

    let resp = [0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 50, 0, 0, 0, 10];
    assert_eq!(
        Response::decode(&resp, Family::V4).unwrap(),
        Response::Scrape {
            transaction_id: 2,
            stats: vec![ScrapeStats {
                complete: 5,
                downloaded: 50,
                incomplete: 10
            }]
        }
    );
    assert!(Response::decode(&resp[..19], Family::V4).is_err());
    let err = [&[0, 0, 0, 3, 0, 0, 0, 9][..], b"bad hash"].concat();
    assert_eq!(
        Response::decode(&err, Family::V4).unwrap(),
        Response::Error {
            transaction_id: 9,
            message: "bad hash".into()
        }
    );
    assert_eq!(
        Response::decode(&[0, 0, 0, 4, 0, 0, 0, 0], Family::V4),
        Err(TrackerError::UnknownAction(4))
    );
}

#[test]
fn bep15_retry_backoff() {
    assert_eq!(udp::retry_timeout(0), Some(Duration::from_secs(15)));
    assert_eq!(udp::retry_timeout(1), Some(Duration::from_secs(30)));
    assert_eq!(udp::retry_timeout(8), Some(Duration::from_secs(3840)));
    assert_eq!(udp::retry_timeout(9), None);
    assert_eq!(udp::retry_timeout(u32::MAX), None);
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::None),
        Just(Event::Completed),
        Just(Event::Started),
        Just(Event::Stopped)
    ]
}

fn arb_request() -> impl Strategy<Value = Request> {
    let announce = (
        (
            any::<u64>(),
            any::<u32>(),
            any::<[u8; 20]>(),
            any::<[u8; 20]>(),
        ),
        (any::<u64>(), any::<u64>(), any::<u64>(), arb_event()),
        (
            proptest::option::of(any::<u32>().prop_filter("0 means none", |n| *n != 0)),
            any::<u32>(),
            proptest::option::of(0..=i32::MAX as u32),
            any::<u16>(),
        ),
    )
        .prop_map(
            |(
                (connection_id, transaction_id, ih, pid),
                (downloaded, left, uploaded, event),
                (ip, key, num_want, port),
            )| {
                Request::Announce(Announce {
                    connection_id,
                    transaction_id,
                    info_hash: InfoHash(ih),
                    peer_id: PeerId(pid),
                    downloaded,
                    left,
                    uploaded,
                    event,
                    ip: ip.map(Ipv4Addr::from),
                    key,
                    num_want,
                    port,
                })
            },
        );
    prop_oneof![
        any::<u32>().prop_map(|transaction_id| Request::Connect { transaction_id }),
        announce,
        (
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(
                any::<[u8; 20]>().prop_map(InfoHash),
                0..=udp::MAX_SCRAPE_HASHES
            )
        )
            .prop_map(
                |(connection_id, transaction_id, info_hashes)| Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes
                }
            ),
    ]
}

fn arb_response(family: Family) -> impl Strategy<Value = Response> {
    let peer = match family {
        Family::V4 => (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddr::from((ip, p)))
            .boxed(),
        Family::V6 => (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, p)| SocketAddrV6::new(Ipv6Addr::from(ip), p, 0, 0).into())
            .boxed(),
    };
    let stats = (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
        |(complete, downloaded, incomplete)| ScrapeStats {
            complete,
            downloaded,
            incomplete,
        },
    );
    prop_oneof![
        (any::<u32>(), any::<u64>()).prop_map(|(transaction_id, connection_id)| {
            Response::Connect {
                transaction_id,
                connection_id,
            }
        }),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(peer, 0..20)
        )
            .prop_map(|(transaction_id, interval, leechers, seeders, peers)| {
                Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                }
            }),
        (any::<u32>(), proptest::collection::vec(stats, 0..20)).prop_map(
            |(transaction_id, stats)| Response::Scrape {
                transaction_id,
                stats
            }
        ),
        (any::<u32>(), ".{0,40}").prop_map(|(transaction_id, message)| Response::Error {
            transaction_id,
            message
        }),
    ]
}

proptest! {
    #[test]
    fn udp_requests_round_trip(req in arb_request()) {
        prop_assert_eq!(Request::decode(&req.to_vec()).unwrap(), req);
    }

    #[test]
    fn udp_v4_responses_round_trip(resp in arb_response(Family::V4)) {
        prop_assert_eq!(Response::decode(&resp.to_vec(Family::V4), Family::V4).unwrap(), resp);
    }

    #[test]
    fn udp_v6_responses_round_trip(resp in arb_response(Family::V6)) {
        prop_assert_eq!(Response::decode(&resp.to_vec(Family::V6), Family::V6).unwrap(), resp);
    }

    #[test]
    fn http_announce_query_round_trips(
        ih in any::<[u8; 20]>(), pid in any::<[u8; 20]>(), port in any::<u16>(),
        up in any::<u64>(), down in any::<u64>(), left in any::<u64>(), event in arb_event(),
        compact in any::<bool>(), numwant in proptest::option::of(any::<u32>()), key in proptest::option::of(any::<u32>()),
        tracker_id in proptest::option::of(".{0,10}"),
    ) {
        let r = AnnounceRequest { info_hash: InfoHash(ih), peer_id: PeerId(pid), port, uploaded: up, downloaded: down, left, event, compact, numwant, key, tracker_id };
        prop_assert_eq!(AnnounceRequest::from_query(&r.to_query()).unwrap(), r);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Request::decode(&data);
        let _ = Response::decode(&data, Family::V4);
        let _ = Response::decode(&data, Family::V6);
        let _ = AnnounceResponse::parse(&data);
        let _ = parse_scrape(&data);
        let _ = AnnounceRequest::from_query(&String::from_utf8_lossy(&data));
    }
}
