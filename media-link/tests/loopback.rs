//! Two MoQ sessions over one QUIC connection on 127.0.0.1: a publisher's
//! frames reach a subscriber intact, with groups starting at keyframes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use media_link::{
    call_namespace, relay_client_config, subscribe_track, wall_micros, Broadcast, MediaObject, MoqSession,
    Side, MOQT_ALPN, VIDEO_TRACK,
};

struct Pair {
    client: MoqSession,
    server: MoqSession,
    _endpoints: (quinn::Endpoint, quinn::Endpoint),
    _dir: tempfile::TempDir,
}

async fn pair() -> Pair {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = net::Authority::load_or_create(dir.path(), "test CA").expect("CA");
    let server_id = ca.issue_server("relay", &["localhost".into()]).expect("server cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(vec![server_id.cert_der().expect("cert")], server_id.key_der().expect("key"))
        .expect("server TLS");
    tls.alpn_protocols = vec![MOQT_ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("QUIC TLS");
    let server_ep = quinn::Endpoint::server(
        quinn::ServerConfig::with_crypto(Arc::new(crypto)),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .expect("bind");
    let addr = server_ep.local_addr().expect("addr");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_id.ca_der().expect("CA der")).expect("root");
    let mut client_ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("client bind");
    client_ep.set_default_client_config(relay_client_config(roots).expect("client config"));
    let accept = {
        let server_ep = server_ep.clone();
        tokio::spawn(async move {
            let conn = server_ep.accept().await.expect("incoming").await.expect("handshake");
            MoqSession::accept(conn).await.expect("accept")
        })
    };
    let conn = client_ep.connect(addr, "localhost").expect("connect").await.expect("client handshake");
    let client = MoqSession::connect(conn).await.expect("setup");
    let server = accept.await.expect("join");
    Pair { client, server, _endpoints: (server_ep, client_ep), _dir: dir }
}

fn frame(i: u64, keyframe: bool) -> MediaObject {
    MediaObject {
        keyframe,
        pts_us: i * 33_333,
        sent_at_us: wall_micros(),
        data: Bytes::from(vec![i as u8; 3000]),
    }
}

#[tokio::test]
async fn frames_reach_the_subscriber_in_groups_that_start_at_keyframes() {
    let pair = pair().await;
    let ns = call_namespace("f1", 7, Side::Resident);
    let (_broadcast, mut senders) =
        Broadcast::start(&pair.client, ns.clone(), &[VIDEO_TRACK]).expect("publish");
    let mut sub = subscribe_track(pair.server.subscriber.clone(), ns, VIDEO_TRACK, Duration::from_secs(5))
        .await
        .expect("subscribe");
    let video = &mut senders[0];
    // A delta frame before any keyframe cannot be decoded: it is skipped.
    video.send(&frame(0, false)).expect("send");
    for i in 1..=60u64 {
        video.send(&frame(i, i % 30 == 1)).expect("send");
    }
    assert_eq!(video.skipped(), 1);
    assert_eq!(video.sent(), 60);
    let mut got = Vec::new();
    while got.len() < 60 {
        let frame = tokio::time::timeout(Duration::from_secs(5), sub.frames.recv())
            .await
            .expect("frames keep coming")
            .expect("subscription open");
        got.push(frame);
    }
    got.sort_by_key(|f| f.object.pts_us);
    for (i, f) in got.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(f.object.pts_us, n * 33_333);
        assert_eq!(f.object.data.len(), 3000);
        assert!(f.object.data.iter().all(|b| *b == n as u8));
        assert_eq!(f.group_id, (n - 1) / 30, "frame {n} in the group of its keyframe");
    }
    assert!(got[0].object.keyframe && got[30].object.keyframe && !got[1].object.keyframe);
}

#[tokio::test]
async fn closing_the_publisher_session_ends_the_subscription() {
    let pair = pair().await;
    let ns = call_namespace("f1", 8, Side::Contact);
    let (_broadcast, mut senders) =
        Broadcast::start(&pair.client, ns.clone(), &[VIDEO_TRACK]).expect("publish");
    let mut sub = subscribe_track(pair.server.subscriber.clone(), ns, VIDEO_TRACK, Duration::from_secs(5))
        .await
        .expect("subscribe");
    senders[0].send(&frame(1, true)).expect("send");
    assert!(tokio::time::timeout(Duration::from_secs(5), sub.frames.recv())
        .await
        .expect("first frame")
        .is_some());
    pair.client.close(1, "call over");
    let end =
        tokio::time::timeout(Duration::from_secs(2), async { while sub.frames.recv().await.is_some() {} })
            .await;
    assert!(end.is_ok(), "the subscription ends within 2 s of the publisher closing");
}

#[tokio::test]
async fn a_subscription_to_nothing_gives_up_after_its_patience() {
    let pair = pair().await;
    let started = std::time::Instant::now();
    let result = subscribe_track(
        pair.server.subscriber.clone(),
        call_namespace("f1", 9, Side::Contact),
        VIDEO_TRACK,
        Duration::from_millis(500),
    )
    .await;
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
}
