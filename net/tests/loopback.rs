//! mTLS over QUIC on loopback: admitted clients get answers, refused ones do not.

use std::{collections::HashSet, sync::Arc};

use net::{pki::Authority, quic, rpc};

#[derive(Debug)]
struct DenyList(HashSet<String>);

impl quic::ClientGate for DenyList {
    fn admit(&self, peer: &quic::PeerCert) -> Result<(), String> {
        if self.0.contains(&peer.fingerprint) {
            Err("revoked".into())
        } else {
            Ok(())
        }
    }
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("net-loopback-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn admitted_client_is_answered_and_refused_client_is_not() {
    let dir = temp_dir("gate");
    let ca = Authority::load_or_create(&dir, "Test CA").unwrap();
    let server_id = ca.issue_server("edge", &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let good = ca.issue_client("T-0001").unwrap();
    let revoked = ca.issue_client("T-0002").unwrap();
    let other_ca = Authority::load_or_create(&dir.join("other"), "Other CA").unwrap();
    let mut stranger = other_ca.issue_client("T-9999").unwrap();
    stranger.ca_pem = ca.ca_pem().to_string();

    let gate = Arc::new(DenyList([revoked.fingerprint().unwrap()].into_iter().collect()));
    let server =
        quic::server_endpoint("127.0.0.1:0".parse().unwrap(), &server_id, gate, quic::TABLET_ALPN).unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let who = quic::peer_cert(&conn).map(|p| p.common_name).unwrap_or_default();
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let req: String = rpc::read_frame(&mut recv, 1024).await.unwrap();
                    rpc::write_frame(&mut send, &format!("{who}:{req}"), 1024).await.unwrap();
                    send.finish().unwrap();
                }
            });
        }
    });

    let client = quic::client_endpoint(&good, quic::TABLET_ALPN).unwrap();
    let conn = quic::connect(&client, addr, "localhost").await.unwrap();
    let answer: String = rpc::call(&conn, &"ping".to_string(), 1024).await.unwrap();
    assert_eq!(answer, "T-0001:ping");

    for refused in [revoked, stranger] {
        let client = quic::client_endpoint(&refused, quic::TABLET_ALPN).unwrap();
        let outcome = async {
            let conn = quic::connect(&client, addr, "localhost").await.map_err(|e| e.to_string())?;
            rpc::call::<_, String>(&conn, &"ping".to_string(), 1024).await.map_err(|e| e.to_string())
        }
        .await;
        assert!(outcome.is_err(), "a refused certificate must not get an answer: {outcome:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn oversized_frame_is_refused_before_reading_it() {
    let dir = temp_dir("size");
    let ca = Authority::load_or_create(&dir, "Test CA").unwrap();
    let server_id = ca.issue_server("edge", &["localhost".into()]).unwrap();
    let client_id = ca.issue_client("T-0001").unwrap();
    let server = quic::server_endpoint(
        "127.0.0.1:0".parse().unwrap(),
        &server_id,
        Arc::new(quic::AnyValidClient),
        b"t",
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let conn = server.accept().await.unwrap().await.unwrap();
        let (_send, mut recv) = conn.accept_bi().await.unwrap();
        let outcome: Result<String, _> = rpc::read_frame(&mut recv, 16).await;
        let _ = tx.send(outcome.map_err(|e| e.to_string()));
    });
    let client = quic::client_endpoint(&client_id, b"t").unwrap();
    let conn = quic::connect(&client, addr, "localhost").await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    rpc::write_frame(&mut send, &"x".repeat(100), 1024).await.unwrap();
    send.finish().unwrap();
    let outcome = rx.await.unwrap();
    assert!(outcome.unwrap_err().contains("exceeds the limit"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The grant a socket reports is what the capped-buffer warning compares
/// with the request: the whole request within net.core.rmem_max, the limit
/// beyond it.
#[tokio::test]
async fn receive_buffer_grant_is_what_the_kernel_allowed() {
    // Linux only; the limit is per network namespace, so read it here.
    let limit: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .expect("net.core.rmem_max is readable on Linux")
        .trim()
        .parse()
        .expect("a number");
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let within = limit / 2;
    let (_endpoint, granted) = quic::endpoint_with_recv_buffer(loopback, None, within).unwrap();
    assert_eq!(granted, within);
    // The kernel doubles the request into an int: stay below that.
    let beyond = (limit + (1 << 20)).min(i32::MAX as usize / 2);
    if beyond > limit {
        let (_endpoint, granted) = quic::endpoint_with_recv_buffer(loopback, None, beyond).unwrap();
        assert_eq!(granted, limit, "a request beyond net.core.rmem_max is capped to it");
    }
}
