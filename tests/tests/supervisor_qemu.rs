//! The front-panel supervisor firmware under `qemu-system-arm`
//! (`lm3s6965evb`), its UART0 on a loopback socket the real edge agent
//! opens as its panel UART. The firmware is the `test-inputs` build: UART1,
//! on a second socket, carries the key, chassis and temperature this test
//! sets (QEMU cannot toggle GPIO inputs from outside).
//!
//! `cargo xtask test` builds the firmware first and passes its path in
//! `SUPERVISOR_FIRMWARE_ELF`; without it this test builds it (which needs
//! `rustup target add thumbv7m-none-eabi`) and fails if it cannot.

use std::{
    io::Write,
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use facility_tests::{find, free_tcp_port, mentions, wait_until, System};
use serde_json::Value;

const PIN: &str = "1234";
const HEARTBEAT_TIMEOUT_SECS: u64 = 3;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The `test-inputs` firmware ELF.
fn firmware_elf() -> PathBuf {
    if let Some(path) = std::env::var_os("SUPERVISOR_FIRMWARE_ELF") {
        let path = PathBuf::from(path);
        assert!(path.exists(), "SUPERVISOR_FIRMWARE_ELF={} does not exist", path.display());
        return path;
    }
    let target_dir = workspace_root().join("target").join("firmware-test-inputs");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace_root().join("firmware").join("board"))
        .args(["build", "--release", "--features", "test-inputs", "--target-dir"])
        .arg(&target_dir)
        .status()
        .expect("running cargo to build the supervisor firmware");
    assert!(
        status.success(),
        "building the supervisor firmware failed ({status}); `cargo xtask firmware` installs the \
         thumbv7m-none-eabi target and builds it"
    );
    target_dir.join("thumbv7m-none-eabi").join("release").join("supervisor-board")
}

/// QEMU with the firmware; killed on drop.
struct Panel {
    qemu: Child,
    /// UART1: the test's switch and sensor commands.
    inputs: TcpStream,
}

impl Panel {
    fn start(uart0_port: u16) -> Panel {
        let elf = firmware_elf();
        let inputs_port = free_tcp_port();
        let serial = |port: u16| format!("tcp:127.0.0.1:{port},server=on,wait=off");
        let qemu = Command::new("qemu-system-arm")
            .args(["-cpu", "cortex-m3", "-machine", "lm3s6965evb", "-nographic", "-monitor", "none"])
            .args(["-serial", &serial(uart0_port), "-serial", &serial(inputs_port)])
            .arg("-kernel")
            .arg(&elf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting qemu-system-arm (Debian: qemu-system-arm): {e}"));
        let mut inputs = None;
        wait_until("QEMU's UART1 socket", Duration::from_secs(20), || {
            inputs = TcpStream::connect(("127.0.0.1", inputs_port)).ok();
            inputs.is_some()
        });
        let inputs = inputs.expect("connected");
        inputs.set_nodelay(true).expect("nodelay");
        Panel { qemu, inputs }
    }

    /// `K`/`k` key on/off, `T`/`t` chassis open/closed, `H`/`C` hot/cool.
    fn set(&mut self, command: u8) {
        self.inputs.write_all(&[command]).expect("writing to QEMU's UART1");
    }

    /// The firmware's stack high-water mark in bytes (`S` → `STACK n`).
    fn stack_used(&mut self) -> usize {
        use std::io::Read;
        self.set(b'S');
        self.inputs.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while line.last() != Some(&b'\n') {
            let n = self.inputs.read(&mut byte).expect("the stack report");
            assert_eq!(n, 1, "UART1 closed");
            line.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&line);
        text.trim()
            .strip_prefix("STACK ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad report {text:?}"))
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

fn panel_events(system: &System) -> Vec<Value> {
    let status = system.edge_cli(&["status"]);
    assert_eq!(status.code, 0, "{} {}", status.stdout, status.stderr);
    status.last()["panel_events"].as_array().cloned().unwrap_or_default()
}

fn count_events(system: &System, action: &str) -> usize {
    panel_events(system).iter().filter(|row| row["action"] == action).count()
}

#[test]
fn the_panel_firmware_under_qemu_watches_the_agent_and_its_key_locks_the_facility_down() {
    let uart0_port = free_tcp_port();
    let mut panel = Panel::start(uart0_port);
    let mut system = System::start_with_edge_config(&format!(
        "[supervisor]\nuart = \"tcp:127.0.0.1:{uart0_port}\"\nheartbeat_timeout_secs = {HEARTBEAT_TIMEOUT_SECS}\n\
         boot_grace_secs = 60\nover_temp_celsius = 70\nkey_lift = \"key\"\n"
    ));
    system.open_all_day("A");

    // Heartbeats both ways: the agent sees the panel, the panel counts heartbeats.
    system.wait_metric("edge_panel_link_up", Duration::from_secs(20), |up| up == 1.0);
    system.wait_metric("edge_panel_heartbeats_seen", Duration::from_secs(10), |n| n >= 3.0);
    system.wait_metric("edge_panel_temperature_celsius", Duration::from_secs(5), |c| c == 25.0);
    assert_eq!(system.metric("edge_panel_main_board_resets"), Some(0.0));

    // A kiosk already logged in, as on a unit's wall.
    let mut kiosk = system.session(&system.device);
    assert!(mentions(&kiosk.send(&format!("login R1001 {PIN}")), "LoggedIn"));
    wait_until("a call allowed before the key", Duration::from_secs(15), || {
        mentions(&kiosk.send("call 1 voice"), "Allowed")
    });

    // Key turn → lockdown applied (the kiosk told, calls denied), five times;
    // measured from the byte written to UART1 to the kiosk's event.
    let mut latencies = Vec::new();
    for _ in 0..5 {
        panel.set(b'K');
        let turned = Instant::now();
        let event = kiosk.send("wait-event 3");
        latencies.push(turned.elapsed());
        assert!(
            mentions(&event, "LockdownChanged") && mentions(&event, "Facility"),
            "{event}\n{}",
            system.edge_log()
        );
        let denied = kiosk.send("call 1 voice");
        assert!(mentions(&denied, "Lockdown"), "{denied}");
        panel.set(b'k');
        let lifted = kiosk.send("wait-event 3");
        assert!(mentions(&lifted, "LockdownChanged") && !mentions(&lifted, "Facility"), "{lifted}");
        assert!(mentions(&kiosk.send("call 1 voice"), "Allowed"));
    }
    let worst = latencies.iter().max().copied().unwrap_or_default();
    eprintln!("key turn to lockdown applied (kiosk event): {latencies:?}, worst {worst:?}");
    assert!(worst < Duration::from_secs(1), "key to lockdown took {worst:?}");
    let lockdown_rows = panel_events(&system).iter().filter(|row| row["action"] == "lockdown.on").count();
    assert_eq!(lockdown_rows, 5, "each key turn audited once as panel:key");

    // Tamper and over-temperature reach the audit log and the metrics.
    panel.set(b'T');
    panel.set(b'H');
    wait_until("tamper and over-temperature recorded", Duration::from_secs(10), || {
        count_events(&system, "panel.tamper") == 1 && count_events(&system, "panel.over_temperature") == 1
    });
    assert_eq!(system.metric("edge_panel_over_temperature"), Some(1.0));
    assert_eq!(system.metric("edge_panel_chassis_open"), Some(1.0));
    panel.set(b't');
    panel.set(b'C');

    // The main board hangs (the agent is killed: no more heartbeats); the
    // key is turned meanwhile. The panel resets the board after the
    // timeout; the agent that comes back reports the reset and applies the
    // key the panel re-sends.
    system.kill_edge();
    panel.set(b'K');
    std::thread::sleep(Duration::from_secs(HEARTBEAT_TIMEOUT_SECS + 2));
    system.start_edge();
    system.wait_metric("edge_panel_main_board_resets", Duration::from_secs(15), |n| n == 1.0);
    system.wait_metric("edge_lockdowns", Duration::from_secs(5), |n| n == 1.0);
    wait_until("the reset recorded", Duration::from_secs(10), || {
        count_events(&system, "panel.main_board_reset") == 1
    });
    // Acknowledged: a few more status frames do not record it again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count_events(&system, "panel.main_board_reset"), 1, "{:#?}", panel_events(&system));
    assert_eq!(count_events(&system, "panel.tamper"), 1);
    let status = system.edge_cli(&["status"]);
    assert_eq!(
        find(status.last(), "edge_panel_link_up").and_then(Value::as_f64),
        Some(1.0),
        "{}",
        status.stdout
    );
    let reset = panel_events(&system).into_iter().find(|row| row["action"] == "panel.main_board_reset");
    assert_eq!(reset.as_ref().map(|row| row["detail"]["resets"].clone()), Some(Value::from(1)), "{reset:?}");

    // After every path above has run: the firmware's RAM is its stack.
    let stack = panel.stack_used();
    eprintln!("firmware stack high-water mark: {stack} bytes");
    assert!(stack < 4096, "stack {stack} bytes");
}
