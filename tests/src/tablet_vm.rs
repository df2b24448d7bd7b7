//! The tablet image under `qemu-system-aarch64`: the kiosk shell full screen
//! through DRM/KMS on a virtio GPU, touched through a virtio tablet (absolute
//! pointer) and typed at through a virtio keyboard, both driven over QMP, and
//! watched through QMP `screendump`. The edge it talks to runs on the host;
//! the guest reaches the host's loopback as 10.0.2.2.
//!
//! Must not: log into the guest or change its disk while it runs. What the
//! tests learn comes from the screen, the console and the edge.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Seek, SeekFrom, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::Child,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::qemu::{board_command, console_log, flash_board_disk, tail, workspace_root};

/// The virtio GPU's default mode, which the kiosk fills.
pub const SCREEN: (u32, u32) = (1280, 800);
/// QEMU scales absolute pointer positions to 0..=0x7fff on both axes.
const ABS_MAX: u32 = 0x7fff;
/// The line the tablet's boot health check prints once the kiosk is up.
pub const READY: &str = "FACILITY-TABLET READY";

/// A built tablet image: `target/images/tablet/<version>/`.
pub struct TabletImage {
    pub dir: PathBuf,
    pub version: String,
}

impl TabletImage {
    pub fn built(version: &str) -> TabletImage {
        let dir = workspace_root().join("target/images/tablet").join(version);
        assert!(
            dir.join("layout.env").is_file(),
            "{}: no tablet image; build it first: cargo xtask image tablet",
            dir.display()
        );
        TabletImage { dir, version: version.to_string() }
    }

    pub fn release_file(&self, ext: &str) -> PathBuf {
        self.dir.join("release").join(format!("facility-tablet-{}.{ext}", self.version))
    }
}

/// A tablet's provisioning kit: its device bundle and `kiosk.env`.
pub fn tablet_kit(dir: &Path, device_bundle: &Path, env: &BTreeMap<&str, String>) -> PathBuf {
    let kit = dir.join("tablet-kit");
    std::fs::create_dir_all(&kit).expect("kit dir");
    std::fs::copy(device_bundle, kit.join("device.pem")).expect("device bundle");
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(kit.join("kiosk.env"), text).expect("kiosk.env");
    kit
}

/// An RGB picture of the screen.
pub struct Screen {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Screen {
    /// Parses a binary PPM (P6, maxval 255), what QMP `screendump` writes.
    pub fn from_ppm(bytes: &[u8]) -> Result<Screen, String> {
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if bytes.get(at) == Some(&b'#') {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            let start = at;
            while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if start == at {
                return Err("truncated PPM header".into());
            }
            fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
        }
        at += 1; // the single whitespace byte after maxval
        let number = |i: usize| fields[i].parse::<u32>().map_err(|e| format!("PPM field {}: {e}", fields[i]));
        if fields[0] != "P6" || number(3)? != 255 {
            return Err(format!("not an 8-bit P6 PPM: {} maxval {}", fields[0], fields[3]));
        }
        let (width, height) = (number(1)?, number(2)?);
        let len = width as usize * height as usize * 3;
        let rgb = bytes.get(at..at + len).ok_or("PPM pixel data is short")?.to_vec();
        Ok(Screen { width, height, rgb })
    }

    /// Share of pixels (0..=1) whose channels differ from `other`'s by more
    /// than `threshold`; 1 when the sizes differ.
    pub fn difference(&self, other: &Screen, threshold: u8) -> f64 {
        if (self.width, self.height) != (other.width, other.height) {
            return 1.0;
        }
        let differing = self
            .rgb
            .chunks_exact(3)
            .zip(other.rgb.chunks_exact(3))
            .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > threshold))
            .count();
        differing as f64 / (self.width as f64 * self.height as f64)
    }

    /// Share of pixels that are not (near) black.
    pub fn lit(&self) -> f64 {
        let lit = self.rgb.chunks_exact(3).filter(|p| p.iter().any(|c| *c > 16)).count();
        lit as f64 / (self.width as f64 * self.height as f64).max(1.0)
    }
}

/// A QMP connection: one command at a time, asynchronous events skipped.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn connect(socket: &Path, timeout: Duration) -> Qmp {
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(e) if started.elapsed() > timeout => panic!("QMP {}: {e}", socket.display()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("QMP timeout");
        let writer = stream.try_clone().expect("QMP socket");
        let mut qmp = Qmp { reader: BufReader::new(stream), writer };
        let greeting = qmp.read_message();
        assert!(greeting.get("QMP").is_some(), "QMP greeting: {greeting}");
        qmp.execute("qmp_capabilities", json!({}));
        qmp
    }

    fn read_message(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("reading QMP");
        assert!(n > 0, "QEMU closed its QMP socket");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("QMP sent {line:?}: {e}"))
    }

    fn execute(&mut self, command: &str, arguments: Value) -> Value {
        let request = json!({"execute": command, "arguments": arguments});
        writeln!(self.writer, "{request}").expect("writing QMP");
        loop {
            let message = self.read_message();
            if message.get("event").is_some() {
                continue;
            }
            if let Some(error) = message.get("error") {
                panic!("QMP {command}: {error}");
            }
            return message.get("return").cloned().unwrap_or(Value::Null);
        }
    }
}

/// One tablet: its own disk and UEFI variables, a console log, and QEMU
/// with a display, a touch screen and a keyboard when powered on.
pub struct TabletVm {
    pub dir: PathBuf,
    /// Every screendump, kept under target/qemu-logs for a failed run.
    pub screens: PathBuf,
    disk: PathBuf,
    console: PathBuf,
    boot_mark: u64,
    qemu: Option<Child>,
    qmp: Option<Qmp>,
    shots: u32,
}

impl TabletVm {
    /// Flashes `image` onto a blank disk with `kit` on its data partition,
    /// with facility-flash, as facility IT does.
    pub fn create(dir: &Path, image: &TabletImage, kit: &Path, release_key: &Path) -> TabletVm {
        let disk = flash_board_disk(dir, &image.dir, &image.release_file("img.zst"), release_key, kit);
        let console = console_log(dir);
        let screens = console.with_extension("screens");
        let _ = std::fs::remove_dir_all(&screens);
        std::fs::create_dir_all(&screens).expect("screens dir");
        TabletVm {
            dir: dir.to_path_buf(),
            screens,
            disk,
            console,
            boot_mark: 0,
            qemu: None,
            qmp: None,
            shots: 0,
        }
    }

    pub fn power_on(&mut self) {
        assert!(self.qemu.is_none(), "already powered on");
        self.boot_mark = std::fs::metadata(&self.console).map(|m| m.len()).unwrap_or(0);
        let socket = self.dir.join("qmp.sock");
        let _ = std::fs::remove_file(&socket);
        let devices = ["virtio-gpu-pci", "virtio-tablet-pci", "virtio-keyboard-pci"];
        let child = board_command(&self.dir, &self.disk, "user,id=net0", &devices, &self.console)
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .spawn()
            .expect("qemu-system-aarch64 (cargo xtask image installs it)");
        self.qemu = Some(child);
        self.qmp = Some(Qmp::connect(&socket, Duration::from_secs(30)));
    }

    /// Waits for the console line `needle` in this power-on.
    pub fn wait_console(&mut self, needle: &str, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let text = self.console_since_power_on();
            if let Some(line) = text.lines().rev().find(|l| l.contains(needle)) {
                return line.trim().to_string();
            }
            if let Some(Ok(Some(status))) = self.qemu.as_mut().map(|c| c.try_wait()) {
                panic!("QEMU exited ({status}) before {needle:?}; console:\n{}", tail(&text, 60));
            }
            assert!(
                started.elapsed() < timeout,
                "no {needle:?} within {timeout:?}; console:\n{}",
                tail(&text, 80)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn console_since_power_on(&self) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.console) {
            if file.seek(SeekFrom::Start(self.boot_mark)).is_ok() {
                let _ = file.read_to_end(&mut bytes);
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn qmp(&mut self) -> &mut Qmp {
        self.qmp.as_mut().expect("powered on")
    }

    /// What the display shows now; also kept as `screen-N.ppm` in
    /// [`TabletVm::screens`].
    pub fn screen(&mut self) -> Screen {
        self.shots += 1;
        let path = self.screens.join(format!("screen-{:02}.ppm", self.shots));
        self.qmp().execute("screendump", json!({"filename": path.to_string_lossy()}));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Screen::from_ppm(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Polls the display until `accept` takes it; panics with the last
    /// picture's path after `timeout`.
    pub fn wait_screen(
        &mut self,
        what: &str,
        timeout: Duration,
        mut accept: impl FnMut(&Screen) -> bool,
    ) -> Screen {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if accept(&screen) {
                return screen;
            }
            if started.elapsed() > timeout {
                panic!(
                    "the display did not show {what} within {timeout:?}: see {}/screen-{:02}.ppm; console:\n{}",
                    self.screens.display(),
                    self.shots,
                    tail(&self.console_since_power_on(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A finger down and up at `(x, y)` in screen pixels.
    pub fn touch(&mut self, x: u32, y: u32) {
        let (w, h) = SCREEN;
        let abs = |v: u32, size: u32| u64::from(v.min(size - 1)) * u64::from(ABS_MAX) / u64::from(size - 1);
        let at = json!([
            {"type": "abs", "data": {"axis": "x", "value": abs(x, w)}},
            {"type": "abs", "data": {"axis": "y", "value": abs(y, h)}},
        ]);
        self.qmp().execute("input-send-event", json!({"events": at}));
        for down in [true, false] {
            self.qmp().execute(
                "input-send-event",
                json!({"events": [{"type": "btn", "data": {"button": "left", "down": down}}]}),
            );
            std::thread::sleep(Duration::from_millis(80));
        }
    }

    /// Presses `keys` together (QEMU qcodes, e.g. `ctrl`, `alt`, `f2`).
    pub fn chord(&mut self, keys: &[&str]) {
        let keys: Vec<Value> = keys.iter().map(|k| json!({"type": "qcode", "data": k})).collect();
        self.qmp().execute("send-key", json!({"keys": keys, "hold-time": 150}));
    }

    pub fn power_cut(&mut self) {
        self.qmp = None;
        if let Some(mut child) = self.qemu.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TabletVm {
    fn drop(&mut self) {
        self.power_cut();
    }
}
