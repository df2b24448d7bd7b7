//! The edge's MoQ bridge under load (issue 5 item 7): N concurrent video
//! calls at 1.5 Mbit/s each way through the edge versus the same calls
//! straight to the relay, in the same run, plus a minimal raw quinn
//! forwarder carrying the same traffic as the yardstick for throughput.
//!
//! Processes (all on 127.0.0.1):
//! - `moq-relay-ietf` 0.8.0, the central relay;
//! - the bridge node: this binary re-executed with `BRIDGE_BENCH_ROLE=bridge`,
//!   a 1-thread tokio runtime that accepts tablet MoQ connections and runs
//!   the real [`edge_agent::bridge::forward_call`] for each, upstream through
//!   a share of a [`media_link::RelayUplinks`] session. Authorization is replaced by a fixed
//!   `MediaGrant { call_id, kind: Video }` and tablets present no client
//!   certificate; everything after admission is the production path, and
//!   the node logs as the service does ([`edge_agent::logging`], so
//!   `RUST_LOG` applies);
//! - the raw forwarder: this binary with `BRIDGE_BENCH_ROLE=raw-forwarder`, a
//!   1-thread runtime that accepts a QUIC connection, opens one to a sink and
//!   copies every unidirectional stream across chunk by chunk (no MoQ);
//! - this process: the load generator (tablets, contacts, raw peers).
//!
//! Each call: the tablet publishes `facility/F/call/<id>/resident` track
//! `video` and follows the contact's; the contact (on the relay) publishes
//! `.../contact` and follows the resident's. 30 objects/s of 6,250 bytes
//! (1.5 Mbit/s), a new group every 60 objects. As with calls placed
//! independently, the calls' frames are spread over a frame period and
//! their group starts over a group period ([`Cadence`]). "Direct": the
//! tablet connects to the relay; "edge": the tablet connects to the bridge
//! node.
//!
//! Figures:
//! - latency of an object = `received_at_us - sent_at_us` (one wall clock);
//!   added latency = edge percentile - direct percentile, per direction;
//!   group starts (first objects of groups) are also reported apart;
//! - node cores = (utime + stime) of the node process over the measured
//!   window / window length (from `/proc/<pid>/stat`);
//! - calls per core = N / bridge cores (extrapolated to a fully used core);
//! - CPU per Mbit/s = bridge CPU-ms per second / forwarded Mbit/s (payload
//!   bytes of objects delivered in both directions);
//! - memory per call = (bridge VmRSS at N calls - VmRSS before any call) / N;
//! - throughput ratio = (bridge forwarded Mbit/s per core) / (raw forwarder
//!   forwarded Mbit/s per core), both at the largest N with the same
//!   objects, object rate, group size and directions. Goal >= 0.5.
//!
//! Run with `cargo bench -p edge-agent --bench bridge` (or `cargo xtask
//! bench`). `BRIDGE_BENCH_CALLS=25,50,100` sets the steps of N;
//! `BRIDGE_BENCH_NODE_THREADS=<n>` runs the node on n worker threads;
//! `BRIDGE_BENCH_NODE_RCVBUF=<bytes>` sets the receive buffer of the node's
//! listening socket (default: what the edge's tablet port asks for,
//! `net::quic::SERVER_RECV_BUFFER`). The load generator's sockets get 4 MiB
//! so that the harness does not drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use edge_agent::bridge::{forward_call, MediaGrant};
use edge_core::call::CallId;
use media_link::{
    call_namespace, follow_track, parse_call_namespace, relay_client_config, wall_micros, Broadcast,
    FollowedTrack, MediaObject, MoqSession, RelayClient, RelayUplinks, Side, TrackSender, MOQT_ALPN,
    VIDEO_TRACK,
};
use proto::domain::CallKind;

const ROLE_ENV: &str = "BRIDGE_BENCH_ROLE";
const DIR_ENV: &str = "BRIDGE_BENCH_DIR";
const UPSTREAM_ENV: &str = "BRIDGE_BENCH_UPSTREAM";
const CALLS_ENV: &str = "BRIDGE_BENCH_CALLS";
/// Receive buffer (bytes) for the listening socket of the node under test;
/// unset = as the edge's tablet port.
const NODE_RCVBUF_ENV: &str = "BRIDGE_BENCH_NODE_RCVBUF";
/// Worker threads of the node under test; unset or 1 = a current-thread
/// runtime, so that its CPU is one thread's.
const NODE_THREADS_ENV: &str = "BRIDGE_BENCH_NODE_THREADS";
const DEFAULT_CALLS: &[usize] = &[25, 50, 100];

const FACILITY: &str = "bench-01";
const OBJECTS_PER_SECOND: u64 = 30;
/// 30 objects/s x 6,250 bytes x 8 = 1.5 Mbit/s per direction per call.
const OBJECT_BYTES: usize = 6_250;
const OBJECTS_PER_GROUP: u64 = 60;
const WARMUP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(8);
/// Time after the window for objects sent in it to arrive.
const GRACE: Duration = Duration::from_millis(1_000);
const RAW_ALPN: &[u8] = b"bench-raw";
/// Raw-stream object header: payload length (u32) and send time (u64).
const RAW_HEADER: usize = 12;

fn main() {
    let outcome = match std::env::var(ROLE_ENV).as_deref() {
        Ok("bridge") => child_main(|dir, upstream| Box::pin(bridge_node(dir, upstream))),
        Ok("raw-forwarder") => child_main(|dir, upstream| Box::pin(raw_forwarder(dir, upstream))),
        _ => run_bench(),
    };
    if let Err(error) = outcome {
        eprintln!("bridge benchmark failed: {error:#}");
        std::process::exit(1);
    }
}

// ------------------------------------------------------------ child nodes

type NodeFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>;

/// A node process: a 1-thread runtime, its listening address on stdout, and
/// exit when the parent closes our stdin (the parent is gone or done).
fn child_main(node: fn(PathBuf, SocketAddr) -> NodeFuture) -> anyhow::Result<()> {
    // As the service logs: span bookkeeping in the media path is part of
    // what a call costs.
    edge_agent::logging::init();
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).context("BRIDGE_BENCH_DIR unset")?);
    let upstream: SocketAddr = std::env::var(UPSTREAM_ENV)
        .context("BRIDGE_BENCH_UPSTREAM unset")?
        .parse()
        .context("upstream address")?;
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
    let runtime = match node_threads() {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
    };
    runtime.block_on(node(dir, upstream))
}

fn announce_listening(endpoint: &quinn::Endpoint) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {}", endpoint.local_addr()?)?;
    out.flush()?;
    Ok(())
}

/// Receive buffer of the load generator's sockets, so that the harness is
/// not where datagrams are dropped (the node's listening socket gets what
/// the edge's tablet port asks for, [`node_rcvbuf`]). The kernel caps it at
/// `net.core.rmem_max`.
const GENERATOR_RCVBUF: usize = 4 << 20;

/// A quinn endpoint on 127.0.0.1, asking for a larger receive buffer as the
/// edge does (`net::quic::endpoint_with_recv_buffer`) when `rcvbuf` is set.
fn endpoint(server: Option<quinn::ServerConfig>, rcvbuf: Option<usize>) -> anyhow::Result<quinn::Endpoint> {
    let bind = SocketAddr::from(([127, 0, 0, 1], 0));
    if let Some(bytes) = rcvbuf {
        return Ok(net::quic::endpoint_with_recv_buffer(bind, server, bytes)?.0);
    }
    let socket = std::net::UdpSocket::bind(bind)?;
    let runtime = Arc::new(quinn::TokioRuntime);
    Ok(quinn::Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime)?)
}

fn server_endpoint(dir: &Path, alpn: &[u8], rcvbuf: Option<usize>) -> anyhow::Result<quinn::Endpoint> {
    let config = server_config(dir, alpn)?;
    endpoint(Some(config), rcvbuf)
}

fn server_config(dir: &Path, alpn: &[u8]) -> anyhow::Result<quinn::ServerConfig> {
    let bundle = net::Bundle::load(&dir.join("server.bundle"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![bundle.cert_der()?], bundle.key_der()?)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

fn node_threads() -> usize {
    std::env::var(NODE_THREADS_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(1)
}

/// The node's listening socket gets what the edge's tablet port asks for,
/// unless the environment says otherwise.
fn node_rcvbuf() -> usize {
    std::env::var(NODE_RCVBUF_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(net::quic::SERVER_RECV_BUFFER)
}

fn roots(dir: &Path) -> anyhow::Result<rustls::RootCertStore> {
    let bundle = net::Bundle::load(&dir.join("server.bundle"))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(bundle.ca_der()?)?;
    Ok(roots)
}

fn client_endpoint(config: quinn::ClientConfig, rcvbuf: Option<usize>) -> anyhow::Result<quinn::Endpoint> {
    let mut endpoint = endpoint(None, rcvbuf)?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

fn raw_client_config(roots: rustls::RootCertStore) -> anyhow::Result<quinn::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![RAW_ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// The bridge node: the edge's tablet-side MoQ accept path with a fixed
/// grant, then the production `forward_call`.
async fn bridge_node(dir: PathBuf, relay: SocketAddr) -> anyhow::Result<()> {
    // The edge's tablet port transport (net::quic::server_endpoint).
    let mut config = server_config(&dir, MOQT_ALPN)?;
    config.transport_config(net::quic::server_transport()?);
    let endpoint = endpoint(Some(config), Some(node_rcvbuf()))?;
    let relay =
        Arc::new(RelayUplinks::new(RelayClient::new(relay, "localhost".into(), &dir.join("ca.pem"))?));
    announce_listening(&endpoint)?;
    while let Some(incoming) = endpoint.accept().await {
        let relay = relay.clone();
        tokio::spawn(async move {
            if let Err(error) = bridge_one(incoming, &relay).await {
                eprintln!("bridge node: call not bridged: {error:#}");
            }
        });
    }
    Ok(())
}

async fn bridge_one(incoming: quinn::Incoming, relay: &RelayUplinks) -> anyhow::Result<()> {
    let tablet = MoqSession::accept(incoming.await?).await?;
    let mut announcements = tablet.subscriber.clone();
    let announced = tokio::time::timeout(Duration::from_secs(10), announcements.published_namespace())
        .await
        .context("no announcement within 10 s")?
        .context("session ended before announcing")?;
    let (facility, id, side) =
        parse_call_namespace(&announced.info.namespace).context("announcement is not a call namespace")?;
    if side != Side::Resident {
        bail!("a tablet announced the contact's side");
    }
    let upstream = relay.lease().await?;
    // Stands in for `EdgeState::authorize_media` (a live call of this device).
    let grant = MediaGrant { call_id: CallId(id), kind: CallKind::Video };
    forward_call(tablet, announced, upstream, grant, call_namespace(&facility, id, Side::Contact)).await;
    Ok(())
}

/// The yardstick: plain quinn, one outgoing connection per incoming one,
/// every unidirectional stream copied across in both directions.
async fn raw_forwarder(dir: PathBuf, sink: SocketAddr) -> anyhow::Result<()> {
    let endpoint = server_endpoint(&dir, RAW_ALPN, Some(node_rcvbuf()))?;
    let client = client_endpoint(raw_client_config(roots(&dir)?)?, None)?;
    announce_listening(&endpoint)?;
    while let Some(incoming) = endpoint.accept().await {
        let client = client.clone();
        tokio::spawn(async move {
            let Ok(near) = incoming.await else { return };
            let far = match client.connect(sink, "localhost") {
                Ok(connecting) => connecting.await,
                Err(_) => return,
            };
            let Ok(far) = far else {
                near.close(1u32.into(), b"sink unreachable");
                return;
            };
            let up = tokio::spawn(copy_streams(near.clone(), far.clone()));
            let down = tokio::spawn(copy_streams(far.clone(), near.clone()));
            tokio::select! {
                _ = near.closed() => {}
                _ = far.closed() => {}
            }
            up.abort();
            down.abort();
            near.close(0u32.into(), b"done");
            far.close(0u32.into(), b"done");
        });
    }
    Ok(())
}

async fn copy_streams(from: quinn::Connection, to: quinn::Connection) {
    while let Ok(mut recv) = from.accept_uni().await {
        let Ok(mut send) = to.open_uni().await else { return };
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = recv.read_chunk(usize::MAX, true).await {
                if send.write_chunk(chunk.bytes).await.is_err() {
                    return;
                }
            }
            let _ = send.finish();
        });
    }
}

// ------------------------------------------------------------ processes

/// A child process killed (and reaped) when dropped.
struct Proc {
    child: Child,
    _stdin: Option<ChildStdin>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moq_relay_bin() -> anyhow::Result<PathBuf> {
    media_link::relay_binary().map_err(anyhow::Error::msg)
}

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_relay(dir: &Path) -> anyhow::Result<(Proc, SocketAddr)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()?));
    let log = std::fs::File::create(dir.join("relay.log"))?;
    let child = Command::new(moq_relay_bin()?)
        .args(["--bind", &addr.to_string(), "--tls-cert"])
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .arg("--coordinator-file")
        .arg(dir.join("coordinator.json"))
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting moq-relay-ietf")?;
    Ok((Proc { child, _stdin: None }, addr))
}

fn start_node(role: &str, dir: &Path, upstream: SocketAddr) -> anyhow::Result<(Proc, SocketAddr)> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(ROLE_ENV, role)
        .env(DIR_ENV, dir)
        .env(UPSTREAM_ENV, upstream.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting the {role} node"))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let proc = Proc { child, _stdin: stdin };
    let mut line = String::new();
    BufReader::new(stdout.context("child stdout")?).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("the {role} node did not start (said {line:?})"))?;
    Ok((proc, addr))
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("odd /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()? as f64)
    };
    Ok((field(11)? + field(12)?) / ticks_per_second)
}

/// Resident set size in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("odd VmRSS")?.parse()?)
}

/// Datagrams dropped so far for want of receive buffer: on the sockets
/// bound to each group of ports (127.0.0.1), then on the whole host.
fn udp_drops(groups: [&[u16]; 3]) -> [u64; 4] {
    let mut out = [0u64; 4];
    if let Ok(table) = std::fs::read_to_string("/proc/net/udp") {
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let drops = fields.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
            for (slot, group) in groups.iter().enumerate() {
                if port.is_some_and(|p| group.contains(&p)) {
                    out[slot] += drops;
                }
            }
        }
    }
    if let Ok(snmp) = std::fs::read_to_string("/proc/net/snmp") {
        let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
        if let [names, values] = udp.as_slice() {
            let column = names.split_whitespace().position(|n| n == "RcvbufErrors");
            out[3] = column
                .and_then(|c| values.split_whitespace().nth(c))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    out
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

// ------------------------------------------------------------ measuring

/// The measured window in wall-clock microseconds.
#[derive(Clone, Copy)]
struct Window {
    start_us: u64,
    end_us: u64,
    /// Senders stop here; receivers stop at `stop_recv_us`.
    stop_send_us: u64,
    stop_recv_us: u64,
}

impl Window {
    fn after_warmup() -> Window {
        let start_us = wall_micros() + WARMUP.as_micros() as u64;
        let end_us = start_us + MEASURE.as_micros() as u64;
        Window {
            start_us,
            end_us,
            stop_send_us: end_us + 200_000,
            stop_recv_us: end_us + GRACE.as_micros() as u64,
        }
    }

    fn contains(&self, at_us: u64) -> bool {
        (self.start_us..self.end_us).contains(&at_us)
    }
}

async fn sleep_until_wall(at_us: u64) {
    tokio::time::sleep(Duration::from_micros(at_us.saturating_sub(wall_micros()))).await;
}

/// One direction's figures: objects sent in the window, and the latency of
/// each of them that arrived; the first objects of groups (each a new QUIC
/// stream at every hop) are also kept apart, as the tail is made there.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    group_start_latencies_us: Mutex<Vec<u32>>,
}

impl Tally {
    fn record(&self, window: &Window, sent_at_us: u64, received_at_us: u64, starts_group: bool) {
        if window.contains(sent_at_us) {
            let latency = received_at_us.saturating_sub(sent_at_us).min(u64::from(u32::MAX)) as u32;
            if let Ok(mut all) = self.latencies_us.lock() {
                all.push(latency);
            }
            if starts_group {
                if let Ok(mut starts) = self.group_start_latencies_us.lock() {
                    starts.push(latency);
                }
            }
        }
    }

    fn finish(&self) -> Direction {
        let sorted = |list: &Mutex<Vec<u32>>| {
            let mut latencies = list.lock().map(|l| l.clone()).unwrap_or_default();
            latencies.sort_unstable();
            latencies
        };
        Direction {
            sent: self.sent.load(Ordering::Relaxed),
            latencies_us: sorted(&self.latencies_us),
            group_start_latencies_us: sorted(&self.group_start_latencies_us),
        }
    }
}

struct Direction {
    sent: u64,
    latencies_us: Vec<u32>,
    group_start_latencies_us: Vec<u32>,
}

/// The `p`th percentile of sorted latencies, in ms.
fn percentile_ms(sorted_us: &[u32], p: usize) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = (sorted_us.len() * p / 100).min(sorted_us.len() - 1);
    f64::from(sorted_us[i]) / 1000.0
}

impl Direction {
    fn percentile_ms(&self, p: usize) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }

    fn group_start_percentile_ms(&self, p: usize) -> f64 {
        percentile_ms(&self.group_start_latencies_us, p)
    }

    fn received(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        100.0 * self.sent.saturating_sub(self.received()) as f64 / self.sent as f64
    }
}

struct Run {
    up: Direction,
    down: Direction,
    /// Cores used by the node in the middle (bridge or raw forwarder).
    node_cores: f64,
    relay_cores: f64,
    generator_cores: f64,
    node_rss_kib: u64,
    /// UDP datagrams dropped in the window: node's listening socket, relay,
    /// load generator, whole host.
    drops: [u64; 4],
}

impl Run {
    /// Payload Mbit/s delivered in the window, both directions.
    fn delivered_mbit_s(&self) -> f64 {
        let objects = (self.up.received() + self.down.received()) as f64;
        objects * OBJECT_BYTES as f64 * 8.0 / MEASURE.as_secs_f64() / 1e6
    }
}

/// The processes whose CPU a run reports.
struct Watched {
    node: u32,
    relay: u32,
    ticks: f64,
    /// The node's and the relay's UDP ports.
    ports: [u16; 2],
}

struct Measured {
    cores: [f64; 3],
    node_rss_kib: u64,
    drops: [u64; 4],
}

impl Watched {
    fn sample(&self) -> anyhow::Result<[f64; 3]> {
        Ok([
            cpu_seconds(self.node, self.ticks)?,
            cpu_seconds(self.relay, self.ticks)?,
            cpu_seconds(std::process::id(), self.ticks)?,
        ])
    }

    /// Waits through the warm-up and the window; cores used by each process in it.
    async fn measure(&self, window: &Window, generator_ports: &[u16]) -> anyhow::Result<Measured> {
        let groups = [&self.ports[..1], &self.ports[1..], generator_ports];
        sleep_until_wall(window.start_us).await;
        let before = self.sample()?;
        let drops_before = udp_drops(groups);
        sleep_until_wall(window.end_us).await;
        let after = self.sample()?;
        let drops_after = udp_drops(groups);
        let node_rss_kib = rss_kib(self.node)?;
        let seconds = MEASURE.as_secs_f64();
        Ok(Measured {
            cores: [0, 1, 2].map(|i| (after[i] - before[i]) / seconds),
            node_rss_kib,
            drops: [0, 1, 2, 3].map(|i| drops_after[i].saturating_sub(drops_before[i])),
        })
    }
}

fn payload_object() -> MediaObject {
    MediaObject { keyframe: false, pts_us: 0, sent_at_us: 0, data: vec![0x5a; OBJECT_BYTES].into() }
}

fn tick_every() -> Duration {
    Duration::from_micros(1_000_000 / OBJECTS_PER_SECOND)
}

/// When one end of a call sends: its frames' offset within the frame
/// period, and where its groups start. Calls placed independently have
/// independent phases, so both are spread evenly over the calls: frames
/// over one frame period, and group starts (keyframes, each a new QUIC
/// stream at every hop) over one group period. Without the second, every
/// call would open its new stream in the same frame period every two
/// seconds, a burst that independent calls would hardly ever produce.
#[derive(Clone, Copy)]
struct Cadence {
    offset: Duration,
    /// Shifts the group starts: they fall where `n + group_phase` is a
    /// multiple of `OBJECTS_PER_GROUP` (`n` counting the objects sent).
    group_phase: u64,
}

impl Cadence {
    fn of_call(index: usize, calls: usize) -> Cadence {
        let (index, calls) = (index as u64, calls.max(1) as u64);
        let offset = Duration::from_micros(tick_every().as_micros() as u64 * index / calls);
        Cadence { offset, group_phase: index * OBJECTS_PER_GROUP / calls }
    }

    /// The other end of the same call: half a frame later, the same groups.
    fn far_end(self) -> Cadence {
        Cadence { offset: self.offset + tick_every() / 2, ..self }
    }

    /// Whether the `n`th object sent starts a group: the first one always
    /// (nothing before a keyframe can be decoded), then every
    /// `OBJECTS_PER_GROUP` objects from the phase.
    fn starts_group(&self, n: u64) -> bool {
        n == 0 || (n + self.group_phase).is_multiple_of(OBJECTS_PER_GROUP)
    }
}

// ------------------------------------------------------------ MoQ calls

struct OpenCall {
    _tablet: MoqSession,
    _contact: MoqSession,
    _broadcasts: (Broadcast, Broadcast),
}

struct CallLoad {
    resident_video: TrackSender,
    contact_video: TrackSender,
    /// The contact's copy of the resident's video.
    up: FollowedTrack,
    /// The tablet's copy of the contact's video.
    down: FollowedTrack,
}

async fn open_call(
    id: u64,
    tablets: quinn::Endpoint,
    tablet_target: SocketAddr,
    contacts: quinn::Endpoint,
    relay: SocketAddr,
) -> anyhow::Result<(OpenCall, CallLoad)> {
    let tablet = MoqSession::connect(tablets.connect(tablet_target, "localhost")?.await?).await?;
    let contact = MoqSession::connect(contacts.connect(relay, "localhost")?.await?).await?;
    let resident_ns = call_namespace(FACILITY, id, Side::Resident);
    let contact_ns = call_namespace(FACILITY, id, Side::Contact);
    let (resident_broadcast, mut resident) = Broadcast::start(&tablet, resident_ns.clone(), &[VIDEO_TRACK])?;
    let (contact_broadcast, mut contact_tracks) =
        Broadcast::start(&contact, contact_ns.clone(), &[VIDEO_TRACK])?;
    let patience = Duration::from_secs(20);
    let down = follow_track(tablet.subscriber.clone(), contact_ns, VIDEO_TRACK, patience);
    let up = follow_track(contact.subscriber.clone(), resident_ns, VIDEO_TRACK, patience);
    let load = CallLoad {
        resident_video: resident.pop().context("resident track")?,
        contact_video: contact_tracks.pop().context("contact track")?,
        up,
        down,
    };
    let open =
        OpenCall { _tablet: tablet, _contact: contact, _broadcasts: (resident_broadcast, contact_broadcast) };
    Ok((open, load))
}

async fn send_video(mut sender: TrackSender, cadence: Cadence, window: Window, tally: Arc<Tally>) {
    let template = payload_object();
    tokio::time::sleep(cadence.offset).await;
    let mut tick = tokio::time::interval(tick_every());
    for n in 0u64.. {
        tick.tick().await;
        let now = wall_micros();
        if now >= window.stop_send_us {
            break;
        }
        let object = MediaObject {
            keyframe: cadence.starts_group(n),
            pts_us: n * 1_000_000 / OBJECTS_PER_SECOND,
            sent_at_us: now,
            data: template.data.clone(),
        };
        if sender.send(&object).is_err() {
            break;
        }
        if window.contains(now) {
            tally.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn receive_video(mut track: FollowedTrack, window: Window, tally: Arc<Tally>) {
    let stop = tokio::time::Instant::now()
        + Duration::from_micros(window.stop_recv_us.saturating_sub(wall_micros()));
    while let Ok(Some(frame)) = tokio::time::timeout_at(stop, track.frames.recv()).await {
        // Each group's first object is the keyframe the sender put there.
        tally.record(&window, frame.object.sent_at_us, frame.received_at_us, frame.object.keyframe);
    }
}

/// N calls with tablets connecting to `tablet_target` (the relay, or the
/// bridge node) and contacts to the relay.
async fn moq_run(
    calls: usize,
    first_id: u64,
    tablet_target: SocketAddr,
    relay: SocketAddr,
    client_config: &quinn::ClientConfig,
    watched: &Watched,
) -> anyhow::Result<Run> {
    let tablets = client_endpoint(client_config.clone(), Some(GENERATOR_RCVBUF))?;
    let contacts = client_endpoint(client_config.clone(), Some(GENERATOR_RCVBUF))?;
    let mut opening = tokio::task::JoinSet::new();
    for i in 0..calls as u64 {
        opening.spawn(open_call(first_id + i, tablets.clone(), tablet_target, contacts.clone(), relay));
    }
    let mut open = Vec::with_capacity(calls);
    let mut loads = Vec::with_capacity(calls);
    while let Some(joined) = opening.join_next().await {
        let (call, load) = joined.context("opening a call")?.context("opening a call")?;
        open.push(call);
        loads.push(load);
    }
    let window = Window::after_warmup();
    let (up, down) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, load) in loads.into_iter().enumerate() {
        let tablet = Cadence::of_call(i, calls);
        tasks.spawn(send_video(load.resident_video, tablet, window, up.clone()));
        tasks.spawn(send_video(load.contact_video, tablet.far_end(), window, down.clone()));
        tasks.spawn(receive_video(load.up, window, up.clone()));
        tasks.spawn(receive_video(load.down, window, down.clone()));
    }
    let generator_ports = [tablets.local_addr()?.port(), contacts.local_addr()?.port()];
    let Measured { cores: [node_cores, relay_cores, generator_cores], node_rss_kib, drops } =
        watched.measure(&window, &generator_ports).await?;
    while tasks.join_next().await.is_some() {}
    drop(open);
    tablets.close(0u32.into(), b"run over");
    contacts.close(0u32.into(), b"run over");
    // Let the bridge and the relay forget the calls before the next run.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    Ok(Run {
        up: up.finish(),
        down: down.finish(),
        node_cores,
        relay_cores,
        generator_cores,
        node_rss_kib,
        drops,
    })
}

// ------------------------------------------------------------ raw quinn

/// One end of a raw call: sends groups of objects (a uni stream per group)
/// and records the latency of what arrives.
async fn raw_peer(
    connection: quinn::Connection,
    cadence: Cadence,
    window: Window,
    sending: Arc<Tally>,
    receiving: Arc<Tally>,
) {
    let reader = tokio::spawn(raw_receive(connection.clone(), window, receiving));
    tokio::time::sleep(cadence.offset).await;
    let mut tick = tokio::time::interval(tick_every());
    let mut buf = vec![0x5a; RAW_HEADER + OBJECT_BYTES];
    buf[..4].copy_from_slice(&(OBJECT_BYTES as u32).to_be_bytes());
    let mut stream: Option<quinn::SendStream> = None;
    for n in 0u64.. {
        tick.tick().await;
        let now = wall_micros();
        if now >= window.stop_send_us {
            break;
        }
        if cadence.starts_group(n) {
            if let Some(mut done) = stream.take() {
                let _ = done.finish();
            }
            match connection.open_uni().await {
                Ok(s) => stream = Some(s),
                Err(_) => break,
            }
        }
        let Some(out) = stream.as_mut() else { break };
        buf[4..RAW_HEADER].copy_from_slice(&now.to_be_bytes());
        if out.write_all(&buf).await.is_err() {
            break;
        }
        if window.contains(now) {
            sending.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Some(mut done) = stream.take() {
        let _ = done.finish();
    }
    let _ = reader.await;
}

async fn raw_receive(connection: quinn::Connection, window: Window, tally: Arc<Tally>) {
    let stop = tokio::time::Instant::now()
        + Duration::from_micros(window.stop_recv_us.saturating_sub(wall_micros()));
    let mut readers = tokio::task::JoinSet::new();
    while let Ok(Ok(mut recv)) = tokio::time::timeout_at(stop, connection.accept_uni()).await {
        let tally = tally.clone();
        readers.spawn(async move {
            let mut header = [0u8; RAW_HEADER];
            let mut payload = Vec::new();
            let mut starts_group = true;
            while recv.read_exact(&mut header).await.is_ok() {
                let mut len = [0u8; 4];
                len.copy_from_slice(&header[..4]);
                let mut sent = [0u8; 8];
                sent.copy_from_slice(&header[4..]);
                let len = u32::from_be_bytes(len) as usize;
                if len > 1 << 20 {
                    return;
                }
                payload.resize(len, 0);
                if recv.read_exact(&mut payload).await.is_err() {
                    return;
                }
                tally.record(&window, u64::from_be_bytes(sent), wall_micros(), starts_group);
                starts_group = false;
            }
        });
    }
    readers.abort_all();
}

/// N raw calls: tablet-side peers connect to the forwarder, which connects
/// to the sink here; both ends send and receive 1.5 Mbit/s.
async fn raw_run(
    calls: usize,
    dir: &Path,
    relay: &Watched,
    client_config: quinn::ClientConfig,
) -> anyhow::Result<Run> {
    let sink = server_endpoint(dir, RAW_ALPN, Some(GENERATOR_RCVBUF))?;
    let sink_addr = sink.local_addr()?;
    let (forwarder, forwarder_addr) = start_node("raw-forwarder", dir, sink_addr)?;
    let watched = Watched {
        node: forwarder.pid(),
        relay: relay.relay,
        ticks: relay.ticks,
        ports: [forwarder_addr.port(), relay.ports[1]],
    };
    let (up, down) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let tablets = client_endpoint(client_config, Some(GENERATOR_RCVBUF))?;
    let mut connections = Vec::with_capacity(calls);
    for _ in 0..calls {
        connections.push(tablets.connect(forwarder_addr, "localhost")?.await?);
    }
    let mut far_ends = Vec::with_capacity(calls);
    for _ in 0..calls {
        let incoming = tokio::time::timeout(Duration::from_secs(5), sink.accept())
            .await
            .context("the raw forwarder did not connect to the sink")?
            .context("sink closed")?;
        far_ends.push(incoming.await?);
    }
    let window = Window::after_warmup();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (near, far)) in connections.into_iter().zip(far_ends).enumerate() {
        let tablet = Cadence::of_call(i, calls);
        tasks.spawn(raw_peer(near, tablet, window, up.clone(), down.clone()));
        tasks.spawn(raw_peer(far, tablet.far_end(), window, down.clone(), up.clone()));
    }
    let generator_ports = [tablets.local_addr()?.port(), sink_addr.port()];
    let Measured { cores: [node_cores, relay_cores, generator_cores], node_rss_kib, drops } =
        watched.measure(&window, &generator_ports).await?;
    while tasks.join_next().await.is_some() {}
    tablets.close(0u32.into(), b"run over");
    sink.close(0u32.into(), b"run over");
    drop(forwarder);
    Ok(Run {
        up: up.finish(),
        down: down.finish(),
        node_cores,
        relay_cores,
        generator_cores,
        node_rss_kib,
        drops,
    })
}

// ------------------------------------------------------------ the bench

struct Step {
    calls: usize,
    direct: Run,
    edge: Run,
    raw: Run,
}

/// Edge loss at most this (per direction) for a step to count as carrying
/// its calls.
const MAX_LOSS_PERCENT: f64 = 1.0;
const MAX_ADDED_P99_MS: f64 = 2.0;

impl Step {
    fn edge_loss(&self) -> f64 {
        self.edge.up.loss_percent().max(self.edge.down.loss_percent())
    }

    /// The edge carried the step's calls: no real loss, added p99 in bounds.
    fn carried(&self) -> bool {
        self.edge_loss() <= MAX_LOSS_PERCENT && added_p99(self) <= MAX_ADDED_P99_MS
    }

    fn calls_per_core(&self) -> f64 {
        self.calls as f64 / self.edge.node_cores
    }

    /// Bridge Mbit/s per core over raw-forwarder Mbit/s per core.
    fn throughput_ratio(&self) -> f64 {
        (self.edge.delivered_mbit_s() / self.edge.node_cores)
            / (self.raw.delivered_mbit_s() / self.raw.node_cores)
    }
}

fn run_bench() -> anyhow::Result<()> {
    let steps: Vec<usize> = match std::env::var(CALLS_ENV) {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse::<usize>().context("BRIDGE_BENCH_CALLS is a list like 25,50,100"))
            .collect::<anyhow::Result<_>>()?,
        Err(_) => DEFAULT_CALLS.to_vec(),
    };
    if steps.is_empty() || steps.contains(&0) {
        bail!("BRIDGE_BENCH_CALLS needs at least one non-zero number of calls");
    }
    let relay_bin = moq_relay_bin()?;
    let dir = tempfile::tempdir()?;
    let ca = net::Authority::load_or_create(dir.path(), "bench CA")?;
    let server = ca.issue_server("relay", &["localhost".to_string(), "127.0.0.1".to_string()])?;
    server.save(&dir.path().join("server.bundle"))?;
    std::fs::write(dir.path().join("cert.pem"), &server.cert_pem)?;
    std::fs::write(dir.path().join("key.pem"), &server.key_pem)?;
    std::fs::write(dir.path().join("ca.pem"), &server.ca_pem)?;
    let ticks = clock_ticks();

    // The bridge node connects upstream only when calls arrive, after
    // `wait_for_relay` below has seen the relay answer.
    let (relay, relay_addr) = start_relay(dir.path())?;
    let (bridge, bridge_addr) = start_node("bridge", dir.path(), relay_addr)?;
    let bridge_idle_kib = rss_kib(bridge.pid())?;
    let roots = roots(dir.path())?;
    let moq_config = relay_client_config(roots.clone())?;
    let raw_config = raw_client_config(roots)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!(
        "bridge benchmark: calls at 1.5 Mbit/s each way ({OBJECTS_PER_SECOND} objects/s x {OBJECT_BYTES} B, \
         a group per {OBJECTS_PER_GROUP} objects), {} s warm-up, {} s measured per run",
        WARMUP.as_secs(),
        MEASURE.as_secs()
    );
    println!(
        "  relay: {} ({}); bridge node and raw forwarder: child processes on a {}-thread tokio runtime",
        relay_bin.display(),
        relay_addr,
        node_threads()
    );
    println!(
        "  node listening socket receive buffer: {} bytes asked (the kernel caps it at net.core.rmem_max)",
        node_rcvbuf()
    );
    println!(
        "  {} cores shared by the load generator, the relay and the node under test: figures include that contention",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let load_before = load_average();
    let results = runtime.block_on(async {
        wait_for_relay(relay_addr, dir.path()).await?;
        let watched = Watched {
            node: bridge.pid(),
            relay: relay.pid(),
            ticks,
            ports: [bridge_addr.port(), relay_addr.port()],
        };
        let mut results = Vec::new();
        for (k, &calls) in steps.iter().enumerate() {
            let base = 1_000_000 * (k as u64 + 1);
            let direct = moq_run(calls, base, relay_addr, relay_addr, &moq_config, &watched).await?;
            let edge = moq_run(calls, base + 500_000, bridge_addr, relay_addr, &moq_config, &watched).await?;
            let raw = raw_run(calls, dir.path(), &watched, raw_config.clone()).await?;
            results.push(Step { calls, direct, edge, raw });
        }
        anyhow::Ok(results)
    })?;
    drop(bridge);
    drop(relay);
    report(&results, bridge_idle_kib);
    println!("  load average at the start / end: {load_before} / {}", load_average());
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

async fn wait_for_relay(addr: SocketAddr, dir: &Path) -> anyhow::Result<()> {
    let client = RelayClient::new(addr, "localhost".into(), &dir.join("ca.pem"))?;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match client.connect().await {
            Ok(_session) => return Ok(()),
            Err(error) if tokio::time::Instant::now() > give_up => {
                bail!("moq-relay-ietf did not answer within 10 s (see relay.log): {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn report(steps: &[Step], bridge_idle_kib: u64) {
    println!();
    println!(
        "{:>5} {:<6} {:>15} {:>15} {:>13} {:>7} {:>6} {:>6} {:>7} {:>21}",
        "calls",
        "path",
        "up p50/p99 ms",
        "down p50/p99 ms",
        "loss up/down",
        "Mbit/s",
        "node",
        "relay",
        "loadgen",
        "UDP drops n/r/g/other"
    );
    let row = |calls: usize, path: &str, run: &Run, node: bool| {
        let node_cores = if node { format!("{:.3}", run.node_cores) } else { "-".to_string() };
        let loss = format!("{:.2}%/{:.2}%", run.up.loss_percent(), run.down.loss_percent());
        let node_drops = if node { run.drops[0].to_string() } else { "-".into() };
        let other = run.drops[3].saturating_sub(run.drops[0] + run.drops[1] + run.drops[2]);
        let drops = format!("{node_drops}/{}/{}/{other}", run.drops[1], run.drops[2]);
        println!(
            "{:>5} {:<6} {:>7.2}/{:<7.2} {:>7.2}/{:<7.2} {:>13} {:>7.1} {:>6} {:>6.3} {:>7.3} {:>21}",
            calls,
            path,
            run.up.percentile_ms(50),
            run.up.percentile_ms(99),
            run.down.percentile_ms(50),
            run.down.percentile_ms(99),
            loss,
            run.delivered_mbit_s(),
            node_cores,
            run.relay_cores,
            run.generator_cores,
            drops,
        );
    };
    for step in steps {
        row(step.calls, "direct", &step.direct, false);
        row(step.calls, "edge", &step.edge, true);
        println!(
            "{:>5} {:<6} {:>+7.2}/{:<+7.2} {:>+7.2}/{:<+7.2}",
            "",
            "added",
            step.edge.up.percentile_ms(50) - step.direct.up.percentile_ms(50),
            step.edge.up.percentile_ms(99) - step.direct.up.percentile_ms(99),
            step.edge.down.percentile_ms(50) - step.direct.down.percentile_ms(50),
            step.edge.down.percentile_ms(99) - step.direct.down.percentile_ms(99),
        );
        row(step.calls, "raw", &step.raw, true);
    }
    println!(
        "  direct: tablets to the relay; edge: tablets through the bridge node; raw: quinn stream forwarder,"
    );
    println!("  no MoQ, same objects. node/relay/loadgen: cores used over the window. UDP drops: datagrams dropped");
    println!(
        "  for a full receive buffer on the node's listening socket / the relay / the load generator (4 MiB"
    );
    println!(
        "  buffers) / all other sockets on the host (the node's upstream socket, anything else running)."
    );
    println!(
        "  loss: objects sent in the window not received within {} ms after it (late counts as lost).",
        GRACE.as_millis()
    );
    println!();
    println!(
        "{:>5} {:<6} {:>23} {:>23}",
        "calls", "path", "group starts up p50/p99", "group starts down p50/p99"
    );
    for step in steps {
        for (path, run) in [("direct", &step.direct), ("edge", &step.edge), ("raw", &step.raw)] {
            println!(
                "{:>5} {:<6} {:>15.2}/{:<7.2} {:>17.2}/{:<7.2}",
                step.calls,
                path,
                run.up.group_start_percentile_ms(50),
                run.up.group_start_percentile_ms(99),
                run.down.group_start_percentile_ms(50),
                run.down.group_start_percentile_ms(99),
            );
        }
    }
    println!(
        "  group starts: latency (ms) of the first object of each group, which opens a new QUIC stream at every"
    );
    println!(
        "  hop; one object in {OBJECTS_PER_GROUP}, so they make the p99 of the whole. Group starts are spread over the"
    );
    println!("  calls as independent calls' keyframes are (see `Cadence`).");
    println!();
    println!(
        "{:>5} {:>14} {:>19} {:>15} {:>15} {:>16} {:>8}",
        "calls",
        "calls per core",
        "CPU ms/s per Mbit/s",
        "memory per call",
        "added p99 worst",
        "vs raw (Mbit/s/core)",
        "carried"
    );
    for step in steps {
        let cpu_per_mbit = 1000.0 * step.edge.node_cores / step.edge.delivered_mbit_s();
        let per_call_kib = step.edge.node_rss_kib.saturating_sub(bridge_idle_kib) as f64 / step.calls as f64;
        println!(
            "{:>5} {:>14.0} {:>19.3} {:>11.0} KiB {:>12.2} ms {:>20.2} {:>8}",
            step.calls,
            step.calls_per_core(),
            cpu_per_mbit,
            per_call_kib,
            added_p99(step),
            step.throughput_ratio(),
            if step.carried() { "yes" } else { "no" },
        );
    }
    println!("  calls per core = N / bridge cores used, extrapolated to one fully used core");
    println!("  CPU per Mbit/s = bridge CPU-ms per second / payload Mbit/s delivered (both directions)");
    println!("  memory per call = (bridge VmRSS at N calls - {bridge_idle_kib} KiB before any call) / N");
    println!("  vs raw = (bridge Mbit/s per core) / (raw quinn forwarder Mbit/s per core) at the same N;");
    println!("  carried = edge loss <= {MAX_LOSS_PERCENT}% each way and added p99 <= {MAX_ADDED_P99_MS} ms");
    println!();
    // Goals are judged at the largest N the edge carried; a figure from a
    // step where calls were losing objects would flatter the bridge.
    match steps.iter().filter(|s| s.carried()).max_by_key(|s| s.calls) {
        Some(best) => println!(
            "goals at {} calls, the largest step carried: >= 200 calls per core: {:.0} ({}); added p99 <= 2 ms: \
             {:+.2} ms (met); throughput >= 0.5 of raw quinn: {:.2} ({})",
            best.calls,
            best.calls_per_core(),
            met(best.calls_per_core() >= 200.0),
            added_p99(best),
            best.throughput_ratio(),
            met(best.throughput_ratio() >= 0.5),
        ),
        None => println!(
            "goals: NOT met: no step was carried (edge loss <= {MAX_LOSS_PERCENT}% and added p99 <= \
             {MAX_ADDED_P99_MS} ms); see the tables"
        ),
    }
    if let Some(missed) = steps.iter().find(|s| !s.carried()) {
        println!(
            "  first step not carried: {} calls (added p99 {:+.2} ms, edge loss {:.2}%)",
            missed.calls,
            added_p99(missed),
            missed.edge_loss()
        );
    }
}

fn added_p99(step: &Step) -> f64 {
    let up = step.edge.up.percentile_ms(99) - step.direct.up.percentile_ms(99);
    let down = step.edge.down.percentile_ms(99) - step.direct.down.percentile_ms(99);
    let worst = up.max(down);
    if worst.is_nan() {
        f64::INFINITY
    } else {
        worst
    }
}
