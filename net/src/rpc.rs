//! Framed request/response over QUIC streams: one request frame and one
//! response frame per bidirectional stream, each frame checked against the
//! caller's size limit before its body is read.

use std::time::Duration;

use proto::{decode_body, encode_frame, parse_header, FrameError, HEADER_LEN};
use serde::{de::DeserializeOwned, Serialize};

/// Upper bound on one request/response exchange.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("write failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("read failed: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("stream already closed")]
    ClosedStream(#[from] quinn::ClosedStream),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl RpcError {
    /// Whether the whole connection is gone (as opposed to one bad exchange).
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            RpcError::Connection(_)
                | RpcError::Write(quinn::WriteError::ConnectionLost(_))
                | RpcError::Read(quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(_)))
        )
    }
}

pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    msg: &T,
    max: usize,
) -> Result<(), RpcError> {
    let bytes = encode_frame(msg, max)?;
    send.write_all(&bytes).await?;
    Ok(())
}

pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    max: usize,
) -> Result<T, RpcError> {
    let mut header = [0u8; HEADER_LEN];
    recv.read_exact(&mut header).await?;
    let len = parse_header(header, max)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(decode_body(&body, max)?)
}

/// One request/response on a fresh bidirectional stream, within [`CALL_TIMEOUT`].
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    conn: &quinn::Connection,
    req: &Req,
    max: usize,
) -> Result<Resp, RpcError> {
    call_within(conn, req, max, CALL_TIMEOUT).await
}

/// As [`call`], with the caller's deadline.
pub async fn call_within<Req: Serialize, Resp: DeserializeOwned>(
    conn: &quinn::Connection,
    req: &Req,
    max: usize,
    timeout: Duration,
) -> Result<Resp, RpcError> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        write_frame(&mut send, req, max).await?;
        send.finish()?;
        read_frame(&mut recv, max).await
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| RpcError::Timeout(timeout))?
}
