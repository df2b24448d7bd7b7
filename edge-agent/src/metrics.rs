//! Prometheus text metrics on a local address, also read by
//! `edge-agent status`. A deliberately tiny HTTP/1.1 responder: one GET, one
//! text body, connection closed after each answer.

use std::{fmt::Write as _, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::state::Shared;

/// Renders every figure the agent exposes, at `now`.
pub fn render(shared: &Shared, now: jiff::Timestamp) -> String {
    let state = shared.lock();
    let freshness = state.freshness_at(now);
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    gauge(
        "edge_uplink_up",
        "1 when the last exchange with central succeeded",
        f64::from(u8::from(freshness.uplink_up)),
    );
    gauge(
        "edge_cache_age_seconds",
        "seconds since the last successful sync with central (-1: never synced)",
        freshness.cache_age_secs.map(|s| s as f64).unwrap_or(-1.0),
    );
    gauge("edge_sync_cursor", "change-feed cursor applied", state.sync.cursor() as f64);
    gauge("edge_connected_tablets", "tablets and kiosks connected now", state.devices.len() as f64);
    gauge("edge_sessions", "resident sessions live now", state.sessions.len() as f64);
    gauge("edge_lockdowns", "lockdowns in force (facility or unit)", state.lockdowns.len() as f64);
    gauge(
        "edge_calls_live",
        "calls placed and not ended (ringing or connected)",
        state.calls.live().count() as f64,
    );
    gauge(
        "edge_call_media_legs",
        "tablet media connections bridged to the relay now",
        state.media_legs() as f64,
    );
    gauge("edge_cached_residents", "residents in the cache", state.directory.counts().residents as f64);
    gauge("edge_cached_contacts", "contacts in the cache", state.directory.counts().contacts as f64);
    gauge("edge_outbox_live", "outbox items waiting for central", state.outbox.live_len() as f64);
    gauge(
        "edge_outbox_parked",
        "outbox items central refused for good, kept with their reason",
        (state.outbox.len() - state.outbox.live_len()) as f64,
    );
    gauge(
        "edge_update_phase",
        "update download: 0 idle, 1 downloading, 2 staged for the installer, 3 failed (retried)",
        state.update.phase.gauge(),
    );
    gauge("edge_update_download_bytes", "bytes of the offered release on disk", state.update.have as f64);
    gauge("edge_update_size_bytes", "size of the release being downloaded", state.update.size as f64);
    match state.store.media_entries() {
        Ok(cached) => {
            let held: u64 = cached.iter().map(|m| m.have).sum();
            let complete = cached.iter().filter(|m| m.complete).count();
            gauge("edge_media_cache_bytes", "bytes of attachment media held on the box", held as f64);
            gauge(
                "edge_media_cached",
                "photos and VideoGrams downloaded whole, ready for tablets",
                complete as f64,
            );
        }
        // A scrape must not fail over one figure; the gauges are left out
        // so that a dashboard shows them missing rather than zero.
        Err(error) => tracing::warn!(%error, "media cache unreadable for metrics"),
    }
    crate::supervisor_link::render_metrics(&state.panel, &mut gauge);
    let c = state.counters;
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    };
    counter("edge_logins_ok_total", "successful resident logins", c.logins_ok);
    counter("edge_logins_failed_total", "failed or locked-out login attempts", c.logins_failed);
    counter("edge_calls_allowed_total", "call requests allowed", c.calls_allowed);
    counter("edge_calls_denied_total", "call requests denied", c.calls_denied);
    counter("edge_sync_batches_total", "change-feed pages applied", c.sync_batches);
    counter("edge_sync_failures_total", "failed exchanges with central", c.sync_failures);
    counter("edge_outbox_enqueued_total", "items committed to the outbox", c.outbox_enqueued);
    counter("edge_outbox_applied_total", "outbox items central applied", c.outbox_applied);
    counter("edge_outbox_parked_total", "outbox items parked", c.outbox_parked);
    counter(
        "edge_update_bytes_downloaded",
        "update bytes fetched from central by this process (a resumed download counts only the rest)",
        c.update_bytes_downloaded,
    );
    counter(
        "edge_media_downloaded_total",
        "attachment media downloaded whole and verified",
        c.media_downloaded,
    );
    counter(
        "edge_media_download_failures_total",
        "attachment media downloads that failed (retried on a later pass)",
        c.media_download_failures,
    );
    counter("edge_media_evicted_total", "cached media evicted to make room for newer mail", c.media_evicted);
    counter(
        "edge_call_media_bridged_total",
        "tablet media connections admitted and bridged to the relay",
        c.call_media_bridged,
    );
    counter(
        "edge_call_media_refused_total",
        "tablet media announcements refused (no such call of that device, no relay, relay unreachable)",
        c.call_media_refused,
    );
    out
}

pub async fn serve(listener: TcpListener, shared: Shared) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut request)).await;
            let Ok(Ok(n)) = read else { return };
            let head = String::from_utf8_lossy(&request[..n]);
            let (status, body) = if head.starts_with("GET /metrics ") || head.starts_with("GET / ") {
                ("200 OK", render(&shared, jiff::Timestamp::now()))
            } else {
                ("404 Not Found", "only GET /metrics is served here\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(error) = stream.write_all(response.as_bytes()).await {
                tracing::debug!(%peer, %error, "metrics client went away");
            }
        });
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Fetches the running agent's metrics (for `edge-agent status`).
pub fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    Ok(body)
}

/// `name value` pairs from Prometheus text, comments skipped.
pub fn parse(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}
