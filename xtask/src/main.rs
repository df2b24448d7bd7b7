//! `cargo xtask demo | test | bench | fuzz | build | test-aarch64`: orchestration only, no product logic.

mod cross;
mod firmware;
mod image;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Start central-sim, the edge agent and a scripted tablet session on embedded defaults.
    Demo {
        /// Stop everything after the scripted session instead of waiting for Ctrl-C.
        #[arg(long)]
        exit: bool,
        /// State directory (SQLite files, certificates).
        #[arg(long, default_value = "state")]
        state: PathBuf,
    },
    /// Install missing Debian packages, then run every check and test.
    Test {
        /// Skip the slow fuzz smoke run.
        #[arg(long)]
        no_fuzz: bool,
        /// Skip the aarch64 unit tests under qemu-user.
        #[arg(long)]
        no_aarch64: bool,
        /// Skip the QEMU tier (building the edge images and booting them).
        #[arg(long)]
        no_qemu: bool,
    },
    /// Run the benchmarks and print their figures.
    Bench,
    /// Fuzz the frame decoders for a while (needs cargo-fuzz; installs it).
    Fuzz {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Build without AddressSanitizer (faster to build; the decoders are
        /// safe Rust, so panics and hangs are what the fuzzer looks for).
        #[arg(long)]
        no_sanitizer: bool,
    },
    /// Build edge-agent, central-sim and tablet-shell for the boxes (see cross/README.md).
    Build {
        #[arg(long, value_enum)]
        target: cross::Arch,
        #[arg(long)]
        release: bool,
        /// Toolchain: cross (Docker) when usable, else the Docker-free one.
        #[arg(long, value_enum, default_value = "auto")]
        via: cross::Via,
    },
    /// Run the crates' tests compiled for aarch64 under qemu-user.
    TestAarch64,
    /// Build the front-panel supervisor firmware (release and the QEMU test
    /// build) and print its flash and RAM use.
    Firmware,
    /// Build a flashable aarch64 disk image (see images/README.md).
    Image {
        #[arg(value_enum, default_value = "edge")]
        kind: image::Kind,
        /// Image version X.Y.Z (default: the workspace version).
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        version: String,
        /// Test-only: bake a fault into the root file system.
        #[arg(long, value_enum)]
        fault: Option<image::Fault>,
    },
}

/// Debian packages the build and the tests need beyond a stock Rust machine. The GStreamer ones are
/// for `facility-media`: headers for gstreamer-rs, and the plugins its pipelines use (x264enc in
/// -ugly, h264parse in -bad, avdec_h264 in -libav, vp8/v4l2 in -good, opus/app/test sources in -base).
const DEBIAN_PACKAGES: &[&str] = &[
    "build-essential",
    "pkg-config",
    "sqlite3",
    "libgstreamer1.0-dev",
    "libgstreamer-plugins-base1.0-dev",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-libav",
    // The Slint kiosk: linuxkms input (libinput, udev, xkbcommon) and fonts.
    "libinput-dev",
    "libudev-dev",
    "libxkbcommon-dev",
    "libfontconfig-dev",
];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Task::Demo { exit, state } => demo(&state, exit),
        Task::Test { no_fuzz, no_aarch64, no_qemu } => test(!no_fuzz, !no_aarch64, !no_qemu),
        Task::Bench => bench(),
        Task::Fuzz { seconds, no_sanitizer } => fuzz(seconds, !no_sanitizer),
        Task::Build { target, release, via } => cross::build(target, release, via),
        Task::TestAarch64 => cross::test(),
        Task::Firmware => firmware::build().map(|_| ()),
        Task::Image { kind, version, fault } => image::build(kind, &version, fault).map(|_| ()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    eprintln!("xtask: {what} ({})", disk_free());
    let status = cmd.status().with_context(|| format!("starting: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}; {})", disk_free());
    }
    Ok(())
}

/// Free space where the build writes. A CI run once failed at a link with
/// the linker's message cut from the log; this line tells a full disk apart.
fn disk_free() -> String {
    let target = root().join("target");
    let probe = if target.exists() { target } else { root() };
    let out = Command::new("df").args(["-P", "-BM"]).arg(&probe).output();
    let free = out.ok().and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.lines().nth(1).and_then(|line| line.split_whitespace().nth(3).map(str::to_owned))
    });
    match free {
        Some(megabytes) => format!("disk free: {megabytes}"),
        None => "disk free: unknown".to_owned(),
    }
}

/// Installs the Debian packages in `packages` that are missing, with apt-get
/// when running as root; otherwise names the exact command and fails.
pub(crate) fn ensure_packages(packages: &[&str], purpose: &str) -> anyhow::Result<()> {
    if Command::new("dpkg-query").arg("--version").output().is_err() {
        eprintln!(
            "xtask: not a Debian system; for {purpose} make sure these are installed: {}",
            packages.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|pkg| {
            let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]).output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "missing Debian packages for {purpose}; run as root:\n  \
             sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends {list}'"
        );
    }
    let mut update = Command::new("apt-get");
    update.arg("update");
    run(update, "apt-get update")?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install, &format!("apt-get install {list}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The MoQ relay central runs (an existing relay, not ours): the media
/// tests and the demo start it on loopback.
const MOQ_RELAY_VERSION: &str = "0.8.0";

/// `moq-relay-ietf` on PATH or in cargo's bin directory.
fn find_moq_relay() -> Option<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"));
    let path =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    path.into_iter().chain(cargo_bin).map(|dir| dir.join("moq-relay-ietf")).find(|c| c.is_file())
}

/// Installs the pinned relay with `cargo install` when it is missing (about
/// 12 minutes on 2 cores, once per machine).
fn ensure_moq_relay() -> anyhow::Result<PathBuf> {
    let wanted = format!("moq-relay-ietf v{MOQ_RELAY_VERSION}");
    if let Some(path) = find_moq_relay() {
        let listed = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["install", "--list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        // A relay on PATH that cargo did not install is taken as it is.
        if listed.contains(&wanted) || !listed.contains("moq-relay-ietf v") {
            return Ok(path);
        }
    }
    let mut install = cargo();
    install.args(["install", "moq-relay-ietf", "--version", MOQ_RELAY_VERSION, "--locked"]);
    run(install, &format!("cargo install {wanted} (the MoQ relay the media tests run)"))?;
    find_moq_relay().context("moq-relay-ietf was installed but is not on PATH or in ~/.cargo/bin")
}

fn test(with_fuzz: bool, with_aarch64: bool, with_qemu: bool) -> anyhow::Result<()> {
    ensure_packages(DEBIAN_PACKAGES, "the build and the tests")?;
    ensure_moq_relay()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt, "cargo fmt --check")?;
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    run(clippy, "cargo clippy")?;
    firmware::clippy()?;
    // The QEMU firmware test in `cargo test --workspace` runs this build.
    let firmware = firmware::build()?;
    // The end-to-end tests run the real binaries.
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins"]);
    run(build, "cargo build --bins")?;
    let mut tests = cargo();
    tests.args(["test", "--workspace"]).env(firmware::ELF_ENV, &firmware.test_inputs);
    run(tests, "cargo test --workspace")?;
    let mut demo = cargo();
    let demo_state = root().join("target").join("demo-smoke");
    let _ = std::fs::remove_dir_all(&demo_state);
    demo.args(["xtask", "demo", "--exit", "--state"]).arg(&demo_state);
    run(demo, "demo smoke run")?;
    if with_fuzz {
        fuzz(20, false)?;
    }
    if with_aarch64 {
        // The product ships on aarch64: its unit tests run there too, under qemu-user.
        cross::test()?;
    }
    if with_qemu {
        qemu_tier()?;
    }
    eprintln!("xtask: all checks passed");
    Ok(())
}

/// Builds the edge and tablet images and boots them under qemu-system-aarch64:
/// one VM at a time, as TCG emulation wants both cores.
fn qemu_tier() -> anyhow::Result<()> {
    let started = Instant::now();
    image::build_test_images()?;
    let mut tests = cargo();
    tests.args(["test", "-p", "facility-tests", "--features", "qemu"]);
    tests.args(["--test", "qemu_edge", "--test", "qemu_tablet", "--"]);
    tests.args(["--test-threads=1", "--nocapture"]);
    run(tests, "QEMU tier: booting the edge and tablet images")?;
    eprintln!("xtask: QEMU tier passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn bench() -> anyhow::Result<()> {
    for (package, bench, what) in [
        ("edge-core", "policy", "policy decision benchmark"),
        ("edge-agent", "foundation", "snapshot and delta apply benchmark"),
        ("edge-agent", "outbox", "durable enqueue benchmark"),
        ("edge-agent", "bridge", "MoQ bridge calls benchmark (needs moq-relay-ietf)"),
        ("central-sim", "drain", "outbox drain benchmark"),
        ("tablet-shell", "kiosk", "kiosk start, memory and frame time benchmark"),
    ] {
        let mut cmd = cargo();
        cmd.args(["bench", "-p", package, "--bench", bench]);
        run(cmd, what)?;
    }
    Ok(())
}

fn fuzz(seconds: u64, sanitizer: bool) -> anyhow::Result<()> {
    let have_fuzz = cargo().args(["fuzz", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !matches!(have_fuzz, Ok(s) if s.success()) {
        let mut install = cargo();
        install.args(["install", "cargo-fuzz", "--locked"]);
        run(install, "cargo install cargo-fuzz")?;
    }
    let mut cmd = cargo();
    cmd.current_dir(root().join("fuzz"));
    cmd.args(["fuzz", "run"]);
    if sanitizer {
        // The machine has one stable toolchain; cargo-fuzz passes nightly
        // flags for sanitizer instrumentation, which RUSTC_BOOTSTRAP unlocks.
        cmd.env("RUSTC_BOOTSTRAP", "1");
    } else {
        cmd.args(["-s", "none"]);
    }
    cmd.args(["decode_frames", "--", &format!("-max_total_time={seconds}")]);
    run(cmd, &format!("fuzz decode_frames for {seconds} s"))
}

// ---------------------------------------------------------------- demo

struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (name, child) in &mut self.0 {
            // SIGTERM first so the services shut down cleanly.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = child.try_wait() {
                eprintln!("xtask: {name} did not stop; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn bin(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    target.join("debug").join(name)
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not become ready within {timeout:?}")
}

const DEMO_FACILITY: &str = "demo-ca-01";
const DEMO_CENTRAL: &str = "127.0.0.1:7400";
const DEMO_TABLETS: &str = "127.0.0.1:7443";
const DEMO_METRICS: &str = "127.0.0.1:9464";
const DEMO_RELAY: &str = "127.0.0.1:7450";
const DEMO_RESIDENT: &str = "R1001";
const DEMO_PIN: &str = "1234";
/// The housing unit of [`DEMO_RESIDENT`] in the embedded demo fixture.
const DEMO_UNIT: &str = "A";

/// Today's calling windows of the demo unit, kept so the demo can restore them.
struct TodaysHours {
    local_date: String,
    /// ISO weekday, Monday = 1, as `central-sim admin schedule` takes it.
    weekday: String,
    /// `HH:MM-HH:MM,...`, or `none`.
    windows: String,
}

/// Reads `tablet-shell cli hours`; `None` when calls are allowed now.
fn todays_hours_if_closed(output: &str) -> anyhow::Result<Option<TodaysHours>> {
    let parsed: serde_json::Value =
        serde_json::from_str(output).with_context(|| format!("tablet-shell cli hours printed {output}"))?;
    let hours = &parsed["ok"]["Hours"];
    if hours["open_now"].as_bool().context("hours without open_now")? {
        return Ok(None);
    }
    let local_date = hours["local_date"].as_str().context("hours without local_date")?.to_string();
    let date: jiff::civil::Date = local_date.parse().with_context(|| format!("local_date {local_date}"))?;
    let windows: Vec<String> = hours["today"]
        .as_array()
        .context("hours without today")?
        .iter()
        .filter_map(|w| {
            // A window that runs to midnight ends at "00:00" on the clock; the schedule says 24:00.
            let end = match w["local_end"].as_str()? {
                "00:00" => "24:00",
                end => end,
            };
            Some(format!("{}-{end}", w["local_start"].as_str()?))
        })
        .collect();
    Ok(Some(TodaysHours {
        local_date,
        weekday: date.weekday().to_monday_one_offset().to_string(),
        windows: if windows.is_empty() { "none".into() } else { windows.join(",") },
    }))
}

fn demo(state: &Path, exit: bool) -> anyhow::Result<()> {
    ensure_packages(DEBIAN_PACKAGES, "the build")?;
    let mut build = cargo();
    build.args(["build", "--quiet", "-p", "central-sim", "-p", "edge-agent", "-p", "tablet-shell"]);
    run(build, "building central-sim, edge-agent and tablet-shell")?;
    let state = if state.is_absolute() { state.to_path_buf() } else { root().join(state) };
    let central_dir = state.join("central");
    let edge_dir = state.join("edge");
    std::fs::create_dir_all(&edge_dir)?;

    let mut init = Command::new(bin("central-sim"));
    init.args(["init", "--state"]).arg(&central_dir).stdout(Stdio::null());
    run(init, "central-sim init (seeds the demo facility on first run)")?;
    let uplink = edge_dir.join("uplink.pem");
    if !uplink.exists() {
        std::fs::copy(central_dir.join(format!("edge-{DEMO_FACILITY}.pem")), &uplink)
            .context("installing the edge's uplink identity issued by central")?;
    }
    let device = edge_dir.join("devices").join("T-0001.pem");
    if !device.exists() {
        let mut provision = Command::new(bin("edge-agent"));
        provision
            .args(["--state-dir"])
            .arg(&edge_dir)
            .args(["provision-device", "--name", "T-0001", "--out"])
            .arg(&device)
            .stdout(Stdio::null());
        run(provision, "edge-agent provision-device --name T-0001")?;
    }

    let mut children = Children(Vec::new());
    let log =
        |name: &str| std::fs::File::create(state.join(name)).with_context(|| format!("creating {name}"));
    // Calls carry media when the relay central uses is installed.
    let relay = find_moq_relay();
    let edge_config = state.join("edge.toml");
    match &relay {
        Some(relay) => {
            let relay_dir = central_dir.join("relay");
            std::fs::copy(relay_dir.join("ca.crt"), edge_dir.join("relay-ca.pem"))
                .context("installing the relay's CA for the edge")?;
            std::fs::write(&edge_config, format!("media_relay = \"{DEMO_RELAY}\"\n"))?;
            let child = Command::new(relay)
                .args(["--bind", DEMO_RELAY, "--tls-cert"])
                .arg(relay_dir.join("cert.pem"))
                .arg("--tls-key")
                .arg(relay_dir.join("key.pem"))
                .arg("--coordinator-file")
                .arg(state.join("relay-coordinator.json"))
                .stderr(log("moq-relay.log")?)
                .spawn()
                .context("starting moq-relay-ietf")?;
            children.0.push(("moq-relay-ietf".into(), child));
        }
        None => {
            std::fs::write(&edge_config, "")?;
            println!(
                "note: moq-relay-ietf is not installed, so calls run without media \
                 (cargo install moq-relay-ietf --version {MOQ_RELAY_VERSION} --locked)"
            );
        }
    }
    let mut central = Command::new(bin("central-sim"));
    central.args(["serve", "--state"]).arg(&central_dir).args(["--listen", DEMO_CENTRAL]);
    if relay.is_some() {
        central.args(["--media-relay", DEMO_RELAY]);
    }
    let central = central.stderr(log("central-sim.log")?).spawn().context("starting central-sim")?;
    children.0.push(("central-sim".into(), central));
    let edge = Command::new(bin("edge-agent"))
        .arg("--config")
        .arg(&edge_config)
        .args(["--state-dir"])
        .arg(&edge_dir)
        .args(["--tablet-listen", DEMO_TABLETS, "--metrics-listen", DEMO_METRICS, "--central", DEMO_CENTRAL])
        .arg("run")
        .stderr(log("edge-agent.log")?)
        .spawn()
        .context("starting edge-agent")?;
    children.0.push(("edge-agent".into(), edge));

    let metrics_addr = DEMO_METRICS.parse()?;
    wait_for("the edge agent", Duration::from_secs(20), || {
        std::net::TcpStream::connect_timeout(&metrics_addr, Duration::from_millis(200)).is_ok()
    })?;
    wait_for("the first sync with central", Duration::from_secs(30), || {
        scrape_metric(metrics_addr, "edge_cached_contacts").is_some_and(|n| n > 0.0)
    })?;

    let tablet = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(bin("tablet-shell"))
            .args(["cli", "--edge", DEMO_TABLETS, "--cert"])
            .arg(&device)
            .args(["--resident", DEMO_RESIDENT, "--pin", DEMO_PIN])
            .args(args)
            .output()
            .context("running tablet-shell")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    println!("\n== Scripted tablet session (device T-0001, resident {DEMO_RESIDENT}) ==");
    for (title, args) in [
        ("log in", vec!["login"]),
        ("today's calling hours", vec!["hours"]),
        ("balances", vec!["balances"]),
        ("contacts with per-service availability", vec!["contacts"]),
        ("decide a video call to contact 1", vec!["call", "--contact", "1", "--kind", "video"]),
        ("inbox (mail arrives through the change feed)", vec!["messages", "inbox"]),
        ("stamps per contact", vec!["stamps", "balance"]),
    ] {
        let output = tablet(&args)?;
        if output.is_empty() {
            bail!("tablet-shell printed nothing for {title}");
        }
        let shown: String = output.chars().take(600).collect();
        println!(
            "\n-- {title}: tablet-shell cli {}\n{shown}{}",
            args.join(" "),
            if output.len() > 600 { " ..." } else { "" }
        );
    }
    if relay.is_some() {
        let admin = |args: &[&str]| -> anyhow::Result<()> {
            let mut admin = Command::new(bin("central-sim"));
            admin.args(["admin", "--state"]).arg(&central_dir).args(args).stdout(Stdio::null());
            run(admin, &format!("central-sim admin {}", args.join(" ")))
        };
        // Outside the demo unit's calling hours the call would be denied, so the demo opens
        // today's hours for the call and puts them back afterwards.
        let closed_today = todays_hours_if_closed(&tablet(&["hours"])?)?;
        let set_today = |today: &TodaysHours, windows: &str| {
            admin(&["schedule", "--unit", DEMO_UNIT, "--weekday", &today.weekday, "--windows", windows])
        };
        if let Some(today) = &closed_today {
            println!(
                "\n-- outside calling hours: unit {DEMO_UNIT} is opened all day {} for the demo call",
                today.local_date
            );
            set_today(today, "00:00-24:00")?;
            wait_for("the opened hours to reach the edge", Duration::from_secs(30), || {
                tablet(&["hours"]).is_ok_and(|out| out.contains("\"open_now\":true"))
            })?;
        }
        // The contact (played by central-sim) answers after a second and hangs up 5 s later.
        let mut script = Command::new(bin("central-sim"));
        script.args(["admin", "--state"]).arg(&central_dir);
        script.args(["call-script", "--contact", "1", "--answer-after", "1", "--hangup-after", "5"]);
        script.stdout(Stdio::null());
        run(script, "central-sim admin call-script")?;
        let args = ["call", "--contact", "1", "--kind", "video", "--place", "--media", "test"];
        let output = tablet(&args)?;
        if let Some(today) = &closed_today {
            set_today(today, &today.windows)?;
        }
        let summary = output.lines().last().unwrap_or_default();
        if !summary.contains("CallSummary") {
            bail!("the demo video call did not finish: {output}");
        }
        println!(
            "\n-- a video call with media through the edge and the relay: tablet-shell cli {}\n{summary}",
            args.join(" ")
        );
    }
    // The kiosk shell: a window when there is a display, else a scripted
    // session that writes a picture of every screen.
    let (id_prefix, id_digits) =
        DEMO_RESIDENT.split_at(DEMO_RESIDENT.find(|c: char| c.is_ascii_digit()).unwrap_or(0));
    let display = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if display && !exit {
        let shell = Command::new(bin("tablet-shell"))
            .args(["kiosk", "--edge", DEMO_TABLETS, "--cert"])
            .arg(&device)
            .args(["--id-prefix", id_prefix])
            .env("SLINT_BACKEND", "winit")
            .stderr(log("tablet-shell.log")?)
            .spawn()
            .context("starting the kiosk window")?;
        children.0.push(("tablet-shell kiosk".into(), shell));
        println!("\n-- the kiosk window is open: log in with ID {DEMO_RESIDENT} and PIN {DEMO_PIN}");
    } else {
        let pictures = state.join("screenshots");
        let out = Command::new(bin("tablet-shell"))
            .args(["screenshots", "--edge", DEMO_TABLETS, "--cert"])
            .arg(&device)
            .args(["--id-prefix", id_prefix, "--resident-digits", id_digits, "--pin", DEMO_PIN, "--out"])
            .arg(&pictures)
            .output()
            .context("running the scripted kiosk session")?;
        if !out.status.success() {
            bail!("the scripted kiosk session failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let count = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("Screenshot")).count();
        if count < 8 {
            bail!("the scripted kiosk session wrote {count} pictures; expected one per screen");
        }
        println!(
            "\n-- no display: the kiosk's scripted session wrote {count} screenshots to {}",
            pictures.display()
        );
    }
    let device_arg = device.display();
    let edge_arg = edge_dir.display();
    let central_arg = central_dir.display();
    let state_arg = state.display();
    println!(
        "\n== The demo is running ==\n\
         central-sim on {DEMO_CENTRAL}, edge agent tablets on {DEMO_TABLETS}, metrics on http://{DEMO_METRICS}/metrics\n\
         Logs: {state_arg}/edge-agent.log and {state_arg}/central-sim.log\n\n\
         Try, in another terminal:\n\
         \x20 target/debug/tablet-shell cli --edge {DEMO_TABLETS} --cert {device_arg} --resident {DEMO_RESIDENT} --pin {DEMO_PIN} contacts\n\
         \x20 target/debug/edge-agent --state-dir {edge_arg} status\n\
         \x20 target/debug/edge-agent --state-dir {edge_arg} lockdown on      (then place a call: denied at once)\n\
         \x20 target/debug/edge-agent --state-dir {edge_arg} lockdown off\n\
         \x20 target/debug/central-sim admin --state {central_arg} block --number +12135550100 --all   (contact 1: voice now refused)\n\
         \x20 target/debug/edge-agent --state-dir {edge_arg} provision-device --name T-0002\n\
         \x20 target/debug/edge-agent --state-dir {edge_arg} audit verify\n\
         \x20 target/debug/tablet-shell cli --edge {DEMO_TABLETS} --cert {device_arg} --resident {DEMO_RESIDENT} --pin {DEMO_PIN} \\\n\
         \x20     message send --contact 1 --subject Hello --body \"See you Sunday\"\n\
         \x20 target/debug/central-sim admin --state {central_arg} deliveries\n"
    );
    if exit {
        println!("Stopping the demo (--exit).");
        return Ok(());
    }
    println!("Press Ctrl-C to stop.");
    loop {
        std::thread::sleep(Duration::from_secs(1));
        for (name, child) in &mut children.0 {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{name} exited unexpectedly ({status})");
            }
        }
    }
}

fn scrape_metric(addr: std::net::SocketAddr, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
