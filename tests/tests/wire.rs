//! Hostile input at the tablet API: malformed, oversized and wrong-version
//! frames get a typed error and change nothing.

use std::time::Duration;

use facility_tests::System;
use net::{quic, rpc, Bundle};
use proto::{
    tablet::{ApiError, TabletRequest, TabletResponse},
    MAX_TABLET_FRAME,
};

async fn raw_exchange(conn: &quinn::Connection, bytes: &[u8]) -> Result<TabletResponse, rpc::RpcError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(bytes).await?;
    send.finish()?;
    rpc::read_frame(&mut recv, MAX_TABLET_FRAME).await
}

#[test]
fn malformed_frames_get_typed_errors_and_the_connection_keeps_working() {
    let system = System::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bundle = Bundle::load(&system.device).unwrap();
        let endpoint = quic::client_endpoint(&bundle, quic::TABLET_ALPN).unwrap();
        let conn = quic::connect(&endpoint, system.tablet_addr, "localhost").await.unwrap();

        // Garbage body with a valid header.
        let mut garbage = vec![0, 0, 0, 5, proto::PROTOCOL_VERSION, 0xff, 0xff, 0xff, 0xff];
        let answer = raw_exchange(&conn, &garbage).await.unwrap();
        assert!(matches!(answer, TabletResponse::Error(ApiError::Malformed(_))), "{answer:?}");

        // A version this edge does not speak.
        garbage[4] = 99;
        let answer = raw_exchange(&conn, &garbage).await.unwrap();
        assert!(
            matches!(answer, TabletResponse::Error(ApiError::Malformed(ref m)) if m.contains("version")),
            "{answer:?}"
        );

        // A header announcing 1 GiB is refused before anything is read.
        let answer = raw_exchange(&conn, &[0x40, 0, 0, 0, 1]).await.unwrap();
        assert!(
            matches!(answer, TabletResponse::Error(ApiError::Malformed(ref m)) if m.contains("limit")),
            "{answer:?}"
        );

        // Unknown resident and wrong PIN are typed, and the same connection still serves.
        let answer: TabletResponse = rpc::call(
            &conn,
            &TabletRequest::Login { resident: proto::domain::ResidentId::new("nobody"), pin: "1".into() },
            MAX_TABLET_FRAME,
        )
        .await
        .unwrap();
        assert!(matches!(answer, TabletResponse::Error(ApiError::BadCredentials { .. })), "{answer:?}");
        let answer: TabletResponse =
            rpc::call(&conn, &TabletRequest::Contacts, MAX_TABLET_FRAME).await.unwrap();
        assert_eq!(answer, TabletResponse::Error(ApiError::NotLoggedIn));
        conn.close(0u32.into(), b"done");
        tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await.ok();
    });
}
