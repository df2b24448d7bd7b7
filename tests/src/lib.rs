//! End-to-end harness: runs the real `central-sim`, `edge-agent` and
//! `tablet-shell` binaries as separate processes on loopback, each with its
//! own state under a temporary directory.
//!
//! Owns: process orchestration for the scenarios in `tests/tests/`. Must not:
//! reach into any crate's internals; it talks to the system only through the
//! binaries' command lines and the wire protocol.

use std::{
    io::{Read, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod calls;
pub mod qemu;
pub mod tablet_vm;

pub const FACILITY: &str = "demo-ca-01";

/// The directory holding the workspace's built binaries (`cargo xtask test`
/// builds them before running the tests).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> -> target/debug/<name>
    let debug = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = debug.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Result of one CLI invocation: exit code and stdout parsed as JSON lines.
#[derive(Debug)]
pub struct CliResult {
    pub code: i32,
    pub json: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl CliResult {
    fn from(output: Output) -> CliResult {
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let json = parse_json_stream(&stdout);
        CliResult {
            code: output.status.code().unwrap_or(-1),
            json,
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
        }
    }

    /// The last JSON value printed.
    pub fn last(&self) -> &Value {
        self.json
            .last()
            .unwrap_or_else(|| panic!("no JSON output; stdout={} stderr={}", self.stdout, self.stderr))
    }
}

/// A finished command's output as a `CliResult`.
pub fn cli_result(output: Output) -> CliResult {
    CliResult::from(output)
}

/// Parses one or more JSON values printed one after another.
pub fn parse_json_stream(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text).into_iter::<Value>().filter_map(Result::ok).collect()
}

pub struct System {
    pub dir: tempfile::TempDir,
    pub central_dir: PathBuf,
    pub edge_dir: PathBuf,
    pub central_addr: SocketAddr,
    pub tablet_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub device: PathBuf,
    /// An `edge.toml` passed to every edge-agent command, when set.
    pub edge_config: Option<PathBuf>,
    central: Option<Child>,
    edge: Option<Child>,
    /// The MoQ relay calls are bridged to (see [`System::start_with_media`]).
    pub relay_addr: Option<SocketAddr>,
    relay: Option<Child>,
}

/// `moq-relay-ietf` (see [`media_link::relay_binary`]); panics with how to install it.
pub fn moq_relay_bin() -> PathBuf {
    media_link::relay_binary().unwrap_or_else(|missing| panic!("{missing}"))
}

fn run_ok(cmd: &mut Command, what: &str) -> CliResult {
    let out = CliResult::from(cmd.output().unwrap_or_else(|e| panic!("{what}: {e}")));
    assert_eq!(out.code, 0, "{what} failed: stdout={} stderr={}", out.stdout, out.stderr);
    out
}

impl System {
    /// central-sim seeded with the demo fixture, an edge agent synced from it,
    /// and one provisioned tablet (T-0001).
    pub fn start() -> System {
        Self::start_with_edge_config("")
    }

    /// As [`System::start`], with `toml` as the edge's settings file (the
    /// command-line flags for state dir and addresses still win).
    pub fn start_with_edge_config(toml: &str) -> System {
        Self::start_inner(toml, false)
    }

    /// As [`System::start`], with a `moq-relay-ietf` on loopback (using the
    /// relay certificate central-sim issued) that the edge bridges calls to
    /// and central-sim's contacts join through.
    pub fn start_with_media() -> System {
        Self::start_inner("", true)
    }

    fn start_inner(toml: &str, media: bool) -> System {
        let dir = tempfile::tempdir().unwrap();
        let central_dir = dir.path().join("central");
        let edge_dir = dir.path().join("edge");
        std::fs::create_dir_all(&edge_dir).unwrap();
        run_ok(
            Command::new(bin("central-sim")).args(["init", "--state"]).arg(&central_dir),
            "central-sim init",
        );
        std::fs::copy(central_dir.join(format!("edge-{FACILITY}.pem")), edge_dir.join("uplink.pem")).unwrap();
        let mut toml = toml.to_string();
        let mut relay = None;
        let mut relay_addr = None;
        if media {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
            let relay_dir = central_dir.join("relay");
            std::fs::copy(relay_dir.join("ca.crt"), edge_dir.join("relay-ca.pem")).unwrap();
            let log = std::fs::File::create(dir.path().join("relay.log")).unwrap();
            let child = Command::new(moq_relay_bin())
                .args(["--bind", &addr.to_string(), "--tls-cert"])
                .arg(relay_dir.join("cert.pem"))
                .arg("--tls-key")
                .arg(relay_dir.join("key.pem"))
                // Its default is a fixed path under /tmp shared by every relay.
                .arg("--coordinator-file")
                .arg(dir.path().join("relay-coordinator.json"))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("starting moq-relay-ietf");
            relay = Some(child);
            relay_addr = Some(addr);
            toml.push_str(&format!("media_relay = \"{addr}\"\n"));
        }
        let edge_config = (!toml.is_empty()).then(|| {
            let path = dir.path().join("edge.toml");
            std::fs::write(&path, toml).unwrap();
            path
        });
        let mut system = System {
            central_addr: SocketAddr::from(([127, 0, 0, 1], free_udp_port())),
            tablet_addr: SocketAddr::from(([127, 0, 0, 1], free_udp_port())),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], free_tcp_port())),
            device: edge_dir.join("T-0001.pem"),
            edge_config,
            central_dir,
            edge_dir,
            dir,
            central: None,
            edge: None,
            relay_addr,
            relay,
        };
        system.provision("T-0001");
        system.start_central();
        system.start_edge();
        system.wait_metric("edge_cached_contacts", Duration::from_secs(30), |n| n > 0.0);
        system
    }

    pub fn provision(&self, name: &str) -> PathBuf {
        let out = self.edge_dir.join(format!("{name}.pem"));
        run_ok(
            self.edge_cmd().args(["provision-device", "--name", name, "--out"]).arg(&out),
            "edge-agent provision-device",
        );
        if self.edge.is_some() {
            // The running agent picks up new devices from the database within
            // its watch interval (200 ms).
            std::thread::sleep(Duration::from_millis(500));
        }
        out
    }

    pub fn start_central(&mut self) {
        assert!(self.central.is_none(), "central-sim already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("central.log"))
            .unwrap();
        let child = Command::new(bin("central-sim"))
            .args(["serve", "--state"])
            .arg(&self.central_dir)
            .args(["--listen", &self.central_addr.to_string()])
            .args(self.relay_addr.iter().flat_map(|addr| ["--media-relay".to_string(), addr.to_string()]))
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.central = Some(child);
    }

    pub fn stop_central(&mut self) {
        if let Some(mut child) = self.central.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start_edge(&mut self) {
        assert!(self.edge.is_none(), "edge-agent already running");
        // Appended, so a log survives the restarts of a fault test.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("edge.log"))
            .unwrap();
        let child = self
            .edge_cmd()
            .arg("run")
            // The shipped default filter (`edge_agent::logging`), as on a
            // box, and to the log file even when the tests run under systemd.
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.edge = Some(child);
        let addr = self.metrics_addr;
        wait_until("edge-agent metrics endpoint", Duration::from_secs(20), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }

    /// `kill -9` (std's `Child::kill` sends SIGKILL): no shutdown code runs.
    pub fn kill_edge(&mut self) {
        if let Some(mut child) = self.edge.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of each process log (edge, central, relay),
    /// for assertion messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for name in ["edge.log", "central.log", "relay.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!("\n--- {name} ---\n{}", all[all.len().saturating_sub(lines)..].join("\n")));
        }
        out
    }

    /// The edge agent's log so far (for assertion messages).
    pub fn edge_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("edge.log")).unwrap_or_default()
    }

    pub fn edge_cmd(&self) -> Command {
        let mut cmd = Command::new(bin("edge-agent"));
        if let Some(config) = &self.edge_config {
            cmd.arg("--config").arg(config);
        }
        cmd.arg("--state-dir")
            .arg(&self.edge_dir)
            .args(["--tablet-listen", &self.tablet_addr.to_string()])
            .args(["--metrics-listen", &self.metrics_addr.to_string()])
            .args(["--central", &self.central_addr.to_string()]);
        cmd
    }

    pub fn edge_cli(&self, args: &[&str]) -> CliResult {
        CliResult::from(self.edge_cmd().args(args).output().unwrap())
    }

    pub fn central_admin(&self, args: &[&str]) -> CliResult {
        let out = Command::new(bin("central-sim"))
            .args(["admin", "--state"])
            .arg(&self.central_dir)
            .args(args)
            .output()
            .unwrap();
        let result = CliResult::from(out);
        assert_eq!(result.code, 0, "central-sim admin {args:?}: {} {}", result.stdout, result.stderr);
        result
    }

    pub fn tablet_cmd(&self, bundle: &Path) -> Command {
        let mut cmd = Command::new(bin("tablet-shell"));
        cmd.args(["cli", "--edge", &self.tablet_addr.to_string(), "--cert"]).arg(bundle);
        cmd
    }

    /// Logs `resident` in with `pin` on tablet T-0001 and runs `args`.
    pub fn tablet(&self, resident: &str, pin: &str, args: &[&str]) -> CliResult {
        CliResult::from(
            self.tablet_cmd(&self.device)
                .args(["--resident", resident, "--pin", pin])
                .args(args)
                .output()
                .unwrap(),
        )
    }

    /// What a thread needs to start tablet sessions on its own while this
    /// `System` restarts processes.
    pub fn tablet_launcher(&self, bundle: &Path) -> TabletLauncher {
        TabletLauncher { tablet_addr: self.tablet_addr, bundle: bundle.to_path_buf() }
    }

    pub fn central_running(&self) -> bool {
        self.central.is_some()
    }

    /// Starts an interactive `tablet-shell cli session` on its own connection.
    pub fn session(&self, bundle: &Path) -> Session {
        let child = self
            .tablet_cmd(bundle)
            .arg("session")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Session { child }
    }

    /// Sets unit `unit`'s calling hours to the whole day, every day.
    pub fn open_all_day(&self, unit: &str) {
        for weekday in 1..=7 {
            self.central_admin(&[
                "schedule",
                "--unit",
                unit,
                "--weekday",
                &weekday.to_string(),
                "--windows",
                "00:00-24:00",
            ]);
        }
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        scrape_metric(self.metrics_addr, name)
    }

    pub fn wait_metric(&self, name: &str, timeout: Duration, pred: impl Fn(f64) -> bool) {
        let addr = self.metrics_addr;
        wait_until(&format!("metric {name}"), timeout, || scrape_metric(addr, name).is_some_and(&pred));
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.kill_edge();
        self.stop_central();
        if let Some(mut relay) = self.relay.take() {
            let _ = relay.kill();
            let _ = relay.wait();
        }
    }
}

/// A long-lived tablet connection driven line by line.
pub struct Session {
    child: Child,
}

impl Session {
    /// Sends one command line and returns the JSON object it printed.
    pub fn send(&mut self, line: &str) -> Value {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let stdout = self.child.stdout.as_mut().unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap() == 1 {
            if byte[0] == b'\n' {
                break;
            }
            buf.push(byte[0]);
        }
        serde_json::from_slice(&buf)
            .unwrap_or_else(|e| panic!("bad JSON from session ({e}): {}", String::from_utf8_lossy(&buf)))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tablet-shell cli session` processes for one device bundle.
#[derive(Debug, Clone)]
pub struct TabletLauncher {
    pub tablet_addr: SocketAddr,
    pub bundle: PathBuf,
}

impl TabletLauncher {
    pub fn session(&self) -> TimedSession {
        let mut child = Command::new(bin("tablet-shell"))
            .args(["cli", "--edge", &self.tablet_addr.to_string(), "--cert"])
            .arg(&self.bundle)
            .arg("session")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        // A reader thread, so that waiting for an answer can time out: a
        // request in flight when the edge is killed is only answered (with a
        // connection error) after the QUIC idle timeout.
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        TimedSession { child, lines }
    }
}

/// A tablet session whose answers are awaited with a deadline.
pub struct TimedSession {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

/// Why no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// Nothing within the time given; the request may still be answered.
    Timeout,
    /// The session process ended.
    Gone,
}

impl TimedSession {
    /// Writes one command line; false if the process is gone.
    pub fn send_line(&mut self, line: &str) -> bool {
        let Some(stdin) = self.child.stdin.as_mut() else { return false };
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).is_ok()
    }

    /// The next JSON line the session prints, within `timeout`.
    pub fn answer(&mut self, timeout: Duration) -> Result<Value, NoAnswer> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                Ok(serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("bad JSON from session ({e}): {line}")))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(NoAnswer::Timeout),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(NoAnswer::Gone),
        }
    }

    /// Sends `line` and waits up to `timeout` for its answer.
    pub fn request(&mut self, line: &str, timeout: Duration) -> Result<Value, NoAnswer> {
        if !self.send_line(line) {
            return Err(NoAnswer::Gone);
        }
        self.answer(timeout)
    }
}

impl Drop for TimedSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} not reached within {timeout:?}");
}

pub fn scrape_metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Finds the first value stored under `key` anywhere inside `value`
/// (externally tagged enums put variant names in keys).
pub fn find<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key).or_else(|| map.values().find_map(|v| find(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}

/// Whether `needle` appears as a key or a string anywhere in `value`.
pub fn mentions(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(s) => s == needle,
        Value::Object(map) => map.iter().any(|(k, v)| k == needle || mentions(v, needle)),
        Value::Array(items) => items.iter().any(|v| mentions(v, needle)),
        _ => false,
    }
}
