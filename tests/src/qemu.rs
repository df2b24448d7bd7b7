//! The QEMU tier: boots the aarch64 edge image built by `cargo xtask image`
//! under `qemu-system-aarch64` (TCG, UEFI firmware, systemd-boot) and drives
//! it from the host the way a facility would: central-sim on the host, the
//! guest reaching it through QEMU's user network (10.0.2.2), and tablets
//! (`tablet-shell cli`) reaching the guest through a forwarded UDP port.
//!
//! Must not: log into the guest or change its disk while it runs. What the
//! tests learn about the guest comes from the tablet API, central-sim and
//! the serial console.

use std::{
    collections::BTreeMap,
    io::{Read, Seek, SeekFrom},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{bin, free_udp_port, CliResult, FACILITY};

/// The guest sees the host's loopback at this address (QEMU user networking).
const HOST_FROM_GUEST: &str = "10.0.2.2";
/// Where the agent in the guest listens for tablets.
const GUEST_TABLET_PORT: u16 = 7443;
const UEFI_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";
const UEFI_VARS: &str = "/usr/share/AAVMF/AAVMF_VARS.fd";
/// The line the boot health check prints once the agent answers.
pub const READY: &str = "FACILITY-EDGE READY";

/// A built image: `target/images/edge/<version>/`.
#[derive(Clone)]
pub struct EdgeImage {
    pub dir: PathBuf,
    pub layout: BTreeMap<String, String>,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

impl EdgeImage {
    pub fn built(name: &str) -> EdgeImage {
        let dir = workspace_root().join("target/images/edge").join(name);
        let layout_path = dir.join("layout.env");
        let text = std::fs::read_to_string(&layout_path).unwrap_or_else(|e| {
            panic!("{}: {e}; build the image first: cargo xtask image edge", layout_path.display())
        });
        let layout = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EdgeImage { dir, layout }
    }

    pub fn version(&self) -> &str {
        &self.layout["IMAGE_VERSION"]
    }

    /// `release/facility-edge-VERSION.EXT`.
    pub fn release_file(&self, ext: &str) -> PathBuf {
        self.dir.join("release").join(format!("facility-edge-{}.{ext}", self.version()))
    }

    /// The development release key's public half (what the image trusts).
    pub fn release_public_key(&self) -> PathBuf {
        workspace_root().join("target/images/keys/release-dev.key.pub")
    }
}

/// central-sim on the host, seeded with the demo facility.
pub struct Central {
    pub dir: PathBuf,
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl Central {
    pub fn init(dir: &Path) -> Central {
        let out = Command::new(bin("central-sim")).args(["init", "--state"]).arg(dir).output().unwrap();
        assert!(out.status.success(), "central-sim init: {}", String::from_utf8_lossy(&out.stderr));
        Central {
            dir: dir.to_path_buf(),
            addr: SocketAddr::from(([127, 0, 0, 1], free_udp_port())),
            child: None,
        }
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "central-sim already running");
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("serve.log")).unwrap();
        let child = Command::new(bin("central-sim"))
            .args(["serve", "--state"])
            .arg(&self.dir)
            .args(["--listen", &self.addr.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn admin(&self, args: &[&str]) -> CliResult {
        let out =
            Command::new(bin("central-sim")).args(["admin", "--state"]).arg(&self.dir).args(args).output();
        let result = CliResult::from(out.unwrap());
        assert_eq!(result.code, 0, "central-sim admin {args:?}: {} {}", result.stdout, result.stderr);
        result
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A provisioning kit prepared on an "IT workstation" (the host): settings,
/// the uplink identity central issued, the facility CA and the devices
/// registered with it. `devices` maps a device name to its bundle.
pub struct Kit {
    pub dir: PathBuf,
    pub devices: BTreeMap<String, PathBuf>,
}

impl Kit {
    pub fn prepare(dir: &Path, central: &Central, devices: &[&str]) -> Kit {
        let kit = dir.join("kit");
        std::fs::create_dir_all(&kit).unwrap();
        std::fs::copy(central.dir.join(format!("edge-{FACILITY}.pem")), kit.join("uplink.pem")).unwrap();
        let mut bundles = BTreeMap::new();
        for name in devices {
            let out = dir.join(format!("{name}.pem"));
            let result = Command::new(bin("edge-agent"))
                .arg("--state-dir")
                .arg(&kit)
                .args(["provision-device", "--name", name, "--out"])
                .arg(&out)
                .output()
                .unwrap();
            assert!(result.status.success(), "provision-device: {}", String::from_utf8_lossy(&result.stderr));
            bundles.insert(name.to_string(), out);
        }
        let port = central.addr.port();
        std::fs::write(
            kit.join("edge.toml"),
            format!(
                "facility = \"{FACILITY}\"\ntablet_listen = \"0.0.0.0:{GUEST_TABLET_PORT}\"\n\
                 server_names = [\"localhost\", \"127.0.0.1\"]\n\
                 central_addr = \"{HOST_FROM_GUEST}:{port}\"\ncentral_server_name = \"localhost\"\n\
                 update_check_secs = 5\nhealth_timeout_secs = 30\n"
            ),
        )
        .unwrap();
        Kit { dir: kit, devices: bundles }
    }
}

/// One edge box: its own copy of the disk and UEFI variables, a console log
/// that survives reboots, and QEMU when it is powered on.
pub struct EdgeVm {
    pub dir: PathBuf,
    pub disk: PathBuf,
    pub tablet_addr: SocketAddr,
    console: PathBuf,
    boot_mark: u64,
    qemu: Option<Child>,
}

impl EdgeVm {
    /// Flashes `image` onto a fresh disk and puts `kit` on its data partition,
    /// as facility IT would before the first power-on.
    pub fn create(dir: &Path, image: &EdgeImage, kit: &Kit) -> EdgeVm {
        let disk = flash_board_disk(
            dir,
            &image.dir,
            &image.release_file("img.zst"),
            &image.release_public_key(),
            &kit.dir,
        );
        EdgeVm {
            dir: dir.to_path_buf(),
            disk,
            tablet_addr: SocketAddr::from(([127, 0, 0, 1], free_udp_port())),
            console: console_log(dir),
            boot_mark: 0,
            qemu: None,
        }
    }

    /// Powers the box on. Returns when QEMU is running; see `wait_ready`.
    pub fn power_on(&mut self) {
        assert!(self.qemu.is_none(), "already powered on");
        self.boot_mark = std::fs::metadata(&self.console).map(|m| m.len()).unwrap_or(0);
        let forward =
            format!("user,id=net0,hostfwd=udp:127.0.0.1:{}-:{GUEST_TABLET_PORT}", self.tablet_addr.port());
        let child = board_command(&self.dir, &self.disk, &forward, &[], &self.console)
            .spawn()
            .expect("qemu-system-aarch64 (cargo xtask image installs it)");
        self.qemu = Some(child);
    }

    /// Waits for the next `READY` line of this power-on (reboots inside it,
    /// as after a failed update, are part of the same power-on).
    pub fn wait_ready(&mut self, timeout: Duration) -> String {
        let started = Instant::now();
        loop {
            let text = self.console_since_power_on();
            if let Some(line) = text.lines().rev().find(|l| l.contains(READY)) {
                return line[line.find(READY).unwrap_or(0)..].trim().to_string();
            }
            if let Some(child) = self.qemu.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("QEMU exited ({status}) before the box was ready; console:\n{}", tail(&text, 60));
                }
            }
            if started.elapsed() > timeout {
                panic!("the box was not ready within {timeout:?}; console:\n{}", tail(&text, 80));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn boot(&mut self, timeout: Duration) -> (Duration, String) {
        let started = Instant::now();
        self.power_on();
        let line = self.wait_ready(timeout);
        (started.elapsed(), line)
    }

    /// Pulls the plug: QEMU is killed with SIGKILL, so nothing in the guest
    /// gets to flush or shut down.
    pub fn power_cut(&mut self) {
        if let Some(mut child) = self.qemu.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn console_since_power_on(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.console) {
            if file.seek(SeekFrom::Start(self.boot_mark)).is_ok() {
                let mut bytes = Vec::new();
                let _ = file.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        text
    }

    /// Waits until this power-on's console satisfies `done`. A box's report
    /// can reach central before the console line the test also wants: the
    /// agent reports as soon as it connects, the health check prints after.
    pub fn wait_console(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.console_since_power_on();
            if done(&text) {
                return text;
            }
            if started.elapsed() > timeout {
                panic!("{what}: not on the console within {timeout:?}; console:\n{}", tail(&text, 80));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// A `tablet-shell cli` command against this box with `device`'s bundle.
    pub fn tablet_cmd(&self, device: &Path) -> Command {
        let mut cmd = Command::new(bin("tablet-shell"));
        cmd.args(["cli", "--edge", &self.tablet_addr.to_string(), "--cert"]).arg(device);
        cmd
    }
}

impl Drop for EdgeVm {
    fn drop(&mut self) {
        self.power_cut();
    }
}

/// A blank "eMMC" of the image's size in `dir`, flashed the way facility IT
/// does: facility-flash with the release's `.img.zst` (beside its `.bmap`
/// and signed SHA256SUMS) and the provisioning kit written to the data
/// partition. Fresh UEFI variables go beside it. Returns the disk's path.
pub fn flash_board_disk(
    dir: &Path,
    image_dir: &Path,
    img_zst: &Path,
    release_key: &Path,
    kit: &Path,
) -> PathBuf {
    std::fs::create_dir_all(dir).expect("vm dir");
    let disk = dir.join("disk.img");
    let size = std::fs::metadata(image_dir.join("disk.img")).expect("disk.img").len();
    std::fs::File::create(&disk).and_then(|f| f.set_len(size)).expect("blank disk");
    std::fs::copy(UEFI_VARS, dir.join("vars.fd")).expect("UEFI variables");
    run(
        Command::new(bin("facility-flash"))
            .arg(img_zst)
            .arg(&disk)
            .arg("--yes")
            .arg("--release-key")
            .arg(release_key)
            .arg("--kit")
            .arg(kit),
        "facility-flash",
    );
    disk
}

/// The QEMU command line of the boards both images run on: the `virt`
/// machine with UEFI firmware (variables in `dir`), `disk` as its eMMC, one
/// user-mode NIC (`netdev` is the `-netdev` value, id `net0`), the serial
/// console appended to `console`, then `devices`, then the board's hardware
/// watchdog (systemd arms it) and random number generator.
pub fn board_command(dir: &Path, disk: &Path, netdev: &str, devices: &[&str], console: &Path) -> Command {
    let console = std::fs::OpenOptions::new().create(true).append(true).open(console).expect("console log");
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args(["-M", "virt", "-cpu", "cortex-a57", "-smp", "2", "-m", "1024"])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio", "-no-user-config"])
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,readonly=on,file={UEFI_CODE}"))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", dir.join("vars.fd").display()))
        .arg("-drive")
        .arg(format!("if=none,id=disk,format=raw,file={}", disk.display()))
        .args(["-device", "virtio-blk-pci,drive=disk"])
        .args(["-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,romfile="]);
    for device in devices {
        cmd.args(["-device", device]);
    }
    cmd.args(["-device", "i6300esb", "-device", "virtio-rng-pci"])
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(Stdio::null());
    cmd
}

/// Consoles are kept under target/qemu-logs (named after the VM's directory
/// and the test) so a failed CI run can be read afterwards.
pub fn console_log(dir: &Path) -> PathBuf {
    let logs = workspace_root().join("target/qemu-logs");
    let _ = std::fs::create_dir_all(&logs);
    let test = std::thread::current().name().unwrap_or("qemu").replace("::", "-");
    let vm = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let path = logs.join(format!("{test}-{vm}.console.log"));
    let _ = std::fs::remove_file(&path);
    path
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}
