//! aarch64 builds for the edge box and the tablets: `cargo xtask build --target
//! aarch64` and `cargo xtask test-aarch64`.
//!
//! Owns the choice between `cross` (Docker) and the Docker-free toolchain
//! (rustup target + Debian cross gcc + qemu-user), installing the latter, and
//! checking that what comes out really is aarch64 and runs. It must not touch
//! product code, the host build, or the linker/runner settings, which live in
//! `.cargo/config.toml` so that plain `cargo build --target ...` agrees with it.

use std::{
    fs::File,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context};
use clap::ValueEnum;

use crate::{cargo, root, run};

/// Rust target triple of the edge boxes and tablets.
pub const TRIPLE: &str = "aarch64-unknown-linux-gnu";

/// Every binary that goes onto a box: the edge agent and the tablet shell
/// (central-sim is a host-side stand-in and is not built for aarch64: it
/// links GStreamer for the scripted contact's media).
const BINARIES: [&str; 2] = ["edge-agent", "tablet-shell"];

/// Debian packages of the Docker-free path: cross gcc (linker, and compiler for
/// the bundled SQLite and ring), the arm64 libc to link against and run with,
/// and the user-mode emulator cargo's runner calls.
const TOOLCHAIN_PACKAGES: [&str; 3] = ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "qemu-user-static"];

/// tablet-shell's features on a device: the kiosk UI under linuxkms and call media.
const TABLET_FEATURES: &str = "tablet-shell/ui,tablet-shell/media";

/// Emulator and library root; keep in step with `runner` in .cargo/config.toml.
const QEMU: &str = "qemu-aarch64-static";
const QEMU_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// `ELF e_machine` value of AArch64.
const EM_AARCH64: u16 = 183;

/// Crates whose unit and integration tests run under qemu-user, as (directory, package).
/// The end-to-end `tests` crate is left out: it starts edge-agent, central-sim
/// and tablet-shell as child processes, and without binfmt_misc an emulated
/// process cannot exec another aarch64 binary.
const EMULATED_TEST_CRATES: [(&str, &str); 7] = [
    ("proto", "facility-proto"),
    ("firmware/frame", "supervisor-frame"),
    ("firmware", "supervisor-firmware"),
    ("net", "facility-net"),
    ("edge-core", "edge-core"),
    ("edge-agent", "edge-agent"),
    ("tablet-shell", "tablet-shell"),
];

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Arch {
    /// aarch64-unknown-linux-gnu: the edge box and the tablets.
    Aarch64,
}

/// How to get an aarch64 toolchain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `cross` when it is installed and `docker info` answers, else docker-free.
    Auto,
    /// `cross build` in the image from Cross.toml + cross/Dockerfile.aarch64.
    Cross,
    /// rustup target + Debian cross gcc + qemu-user on this host.
    DockerFree,
}

/// `cargo xtask build --target aarch64 [--release]`.
pub fn build(arch: Arch, release: bool, via: Via) -> anyhow::Result<()> {
    build_binaries(arch, release, via, &BINARIES)
}

/// Builds only `binaries` (each a package with a binary of the same name).
pub fn build_binaries(arch: Arch, release: bool, via: Via, binaries: &[&str]) -> anyhow::Result<()> {
    let Arch::Aarch64 = arch;
    let started = Instant::now();
    let via = resolve_via(via)?;
    let mut cmd = match via {
        Via::Cross => {
            let mut cmd = Command::new("cross");
            cmd.current_dir(root());
            cmd
        }
        _ => {
            ensure_docker_free_toolchain()?;
            cargo()
        }
    };
    cmd.args(["build", "--target", TRIPLE]);
    if via == Via::DockerFree {
        let sysroot = ensure_sysroot()?;
        link_against_sysroot(&mut cmd, &sysroot);
    }
    // Default features are for the build host; on a device the kiosk runs
    // under linuxkms with call media, and without the desktop (winit) window.
    cmd.arg("--no-default-features");
    if binaries.contains(&"tablet-shell") {
        cmd.args(["--features", TABLET_FEATURES]);
    }
    for bin in binaries {
        cmd.args(["--package", bin, "--bin", bin]);
    }
    if release {
        cmd.arg("--release");
    }
    run(cmd, &format!("building {} for {TRIPLE}", binaries.join(", ")))?;
    let built_in = started.elapsed();

    let dir = target_dir().join(TRIPLE).join(if release { "release" } else { "debug" });
    for bin in binaries {
        let path = dir.join(bin);
        check_aarch64_elf(&path)?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        eprintln!("xtask:   {} ({:.1} MiB, aarch64 ELF)", path.display(), size as f64 / 1048576.0);
    }
    eprintln!("xtask: built in {:.0} s", built_in.as_secs_f64());
    if !binaries.contains(&"edge-agent") {
        Ok(())
    } else if have(QEMU, "--version") {
        smoke_test(&dir.join("edge-agent"))
    } else {
        eprintln!("xtask: {QEMU} not installed; skipped running edge-agent under emulation");
        Ok(())
    }
}

/// `cargo xtask test-aarch64`: the crates' tests compiled for aarch64 and run
/// under qemu-user through cargo's runner setting.
pub fn test() -> anyhow::Result<()> {
    let started = Instant::now();
    ensure_docker_free_toolchain()?;
    let mut cmd = cargo();
    cmd.args(["test", "--target", TRIPLE]);
    // Default features stay off for aarch64: tablet-shell's call media needs
    // an arm64 GStreamer sysroot, which this build does not assemble yet
    // (../shared/design/cross-facts.md records how one was built here).
    cmd.arg("--no-default-features");
    for (_, package) in EMULATED_TEST_CRATES {
        cmd.args(["--package", package]);
    }
    // Doctests are left out: they check documentation, not the target, and
    // each one would be another aarch64 link plus emulator start.
    cmd.args(["--lib", "--bins"]);
    let mut skipped = Vec::new();
    let mut ui_only = Vec::new();
    for (dir, _) in EMULATED_TEST_CRATES {
        for test in integration_tests(&root().join(dir))? {
            if test.needs_ui {
                ui_only.push(format!("{dir}/tests/{}", test.name));
            } else if test.spawns_binaries {
                skipped.push(format!("{dir}/tests/{}", test.name));
            } else {
                cmd.args(["--test", &test.name]);
            }
        }
    }
    if !ui_only.is_empty() {
        eprintln!(
            "xtask: not built for aarch64 (they need the kiosk's `ui` feature): {}",
            ui_only.join(", ")
        );
    }
    if !skipped.is_empty() {
        eprintln!(
            "xtask: not run under qemu-user (they exec the crate's own binaries, which needs binfmt_misc): {}",
            skipped.join(", ")
        );
    }
    eprintln!("xtask: not run under qemu-user: the end-to-end `tests` crate (starts every binary as a child process)");
    run(cmd, &format!("cargo test --target {TRIPLE} (under {QEMU})"))?;
    eprintln!("xtask: aarch64 tests passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The arm64 sysroot of Debian -dev packages (libc, Slint's linuxkms C
/// libraries, GStreamer) that device builds link against; assembled once by
/// `cross/sysroot-arm64.sh` and reused while its package list is unchanged.
pub fn ensure_sysroot() -> anyhow::Result<PathBuf> {
    crate::ensure_packages(&["debian-archive-keyring"], "fetching arm64 packages for the sysroot")?;
    let sysroot = root().join("target").join("cross").join("sysroot-arm64");
    let mut script = Command::new(root().join("cross").join("sysroot-arm64.sh"));
    script.arg(&sysroot).arg(root().join("target").join("cross").join("cache"));
    run(script, "assembling the arm64 sysroot (cross/sysroot-arm64.sh)")?;
    Ok(sysroot)
}

/// pkg-config answers from the sysroot, and the linker resolves libc's
/// absolute paths (its linker script names /lib/...) inside it. Every
/// aarch64 device build sets the same flags, so they share artefacts.
fn link_against_sysroot(cmd: &mut Command, sysroot: &Path) {
    let lib = sysroot.join("usr/lib/aarch64-linux-gnu/pkgconfig");
    let share = sysroot.join("usr/share/pkgconfig");
    cmd.env("PKG_CONFIG_SYSROOT_DIR", sysroot)
        .env("PKG_CONFIG_LIBDIR", format!("{}:{}", lib.display(), share.display()))
        .env("PKG_CONFIG_ALLOW_CROSS", "1")
        .env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            format!("-C link-arg=--sysroot={}", sysroot.display()),
        );
}

fn resolve_via(via: Via) -> anyhow::Result<Via> {
    let has_cross = || have("cross", "--version");
    // `docker info` fails when there is a client but no engine to talk to.
    let has_engine = || have("docker", "info");
    match via {
        Via::Auto if has_cross() && has_engine() => {
            eprintln!("xtask: using cross (Docker engine reachable, cross installed)");
            Ok(Via::Cross)
        }
        Via::Auto => {
            let why = if !has_cross() {
                "cross is not installed"
            } else {
                "no Docker engine answers `docker info`"
            };
            eprintln!("xtask: using the Docker-free toolchain ({why})");
            Ok(Via::DockerFree)
        }
        Via::Cross => {
            if !has_cross() {
                bail!("cross is not installed; run: cargo install cross --locked");
            }
            if !has_engine() {
                bail!("`docker info` fails: cross needs a running Docker (or Podman) engine");
            }
            eprintln!("xtask: using cross (asked for)");
            Ok(Via::Cross)
        }
        Via::DockerFree => {
            eprintln!("xtask: using the Docker-free toolchain (asked for)");
            Ok(Via::DockerFree)
        }
    }
}

/// Installs what the Docker-free path lacks, or says exactly how to.
fn ensure_docker_free_toolchain() -> anyhow::Result<()> {
    ensure_rust_target(TRIPLE)?;
    ensure_debian_packages()?;
    for (tool, package) in [("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"), (QEMU, "qemu-user-static")] {
        if !have(tool, "--version") {
            bail!("{tool} is not on PATH (Debian package {package})");
        }
    }
    if !Path::new(QEMU_SYSROOT).join("lib").join("ld-linux-aarch64.so.1").exists() {
        bail!("{QEMU_SYSROOT}/lib/ld-linux-aarch64.so.1 is missing (Debian package libc6-dev-arm64-cross)");
    }
    Ok(())
}

/// Adds `triple`'s standard library with rustup when the toolchain lacks it.
pub fn ensure_rust_target(triple: &str) -> anyhow::Result<()> {
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib").join("rustlib").join(triple).join("lib").is_dir() {
        return Ok(());
    }
    if !have("rustup", "--version") {
        bail!(
            "the Rust standard library for {triple} is missing and rustup is not installed; \
             install rustup, or on Debian use rustc-web with the arm64 libstd-rust-web-dev"
        );
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", triple]);
    run(add, &format!("rustup target add {triple}"))
}

fn ensure_debian_packages() -> anyhow::Result<()> {
    crate::ensure_packages(&TOOLCHAIN_PACKAGES, "the aarch64 toolchain")
}

/// Runs the freshly built agent under qemu-user: it must start, open (and
/// migrate) its bundled SQLite, generate keys with ring and write a device
/// bundle, which covers every C and assembly part of the cross build.
fn smoke_test(edge_agent: &Path) -> anyhow::Result<()> {
    let version = emulate(edge_agent, &["--version"])?;
    eprintln!("xtask: under {QEMU}: {}", version.trim());
    let state = target_dir().join("aarch64-smoke");
    if state.exists() {
        std::fs::remove_dir_all(&state).with_context(|| format!("clearing {}", state.display()))?;
    }
    let state_arg = state.to_string_lossy();
    let bundle = state.join("T-0001.pem");
    let bundle_arg = bundle.to_string_lossy();
    let provisioned = emulate(
        edge_agent,
        &["--state-dir", &state_arg, "provision-device", "--name", "T-0001", "--out", &bundle_arg],
    )?;
    if !bundle.is_file() {
        bail!("provision-device under {QEMU} did not write {}", bundle.display());
    }
    let devices = emulate(edge_agent, &["--state-dir", &state_arg, "devices"])?;
    if !devices.contains("T-0001") {
        bail!("edge-agent devices under {QEMU} does not list T-0001: {devices}");
    }
    emulate(edge_agent, &["--state-dir", &state_arg, "audit", "verify"])?;
    eprintln!(
        "xtask: under {QEMU}: provision-device, devices and audit verify work ({})",
        provisioned.trim()
    );
    Ok(())
}

fn emulate(binary: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(QEMU)
        .args(["-L", QEMU_SYSROOT])
        .arg(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {QEMU} {}", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} under {QEMU} failed ({}): {}",
            binary.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_aarch64_elf(path: &Path) -> anyhow::Result<()> {
    let mut header = [0u8; 20];
    File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .with_context(|| format!("reading the ELF header of {}", path.display()))?;
    // e_machine sits at offset 18, little-endian for aarch64 (EI_DATA = 1).
    let machine = u16::from_le_bytes([header[18], header[19]]);
    if &header[..4] != b"\x7fELF" || header[5] != 1 || machine != EM_AARCH64 {
        bail!("{} is not a little-endian aarch64 ELF (e_machine {machine})", path.display());
    }
    Ok(())
}

struct IntegrationTest {
    name: String,
    /// Uses `CARGO_BIN_EXE_*`, i.e. execs the crate's binary as a child process.
    spawns_binaries: bool,
    /// Drives the kiosk's Slint window (`tablet_shell::ui`).
    needs_ui: bool,
}

/// Integration test targets by cargo's auto-discovery rules: `tests/*.rs` and
/// `tests/<name>/main.rs` (other directories are shared modules).
fn integration_tests(crate_dir: &Path) -> anyhow::Result<Vec<IntegrationTest>> {
    let dir = crate_dir.join("tests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut tests = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        let (name, source) = if path.extension().is_some_and(|ext| ext == "rs") {
            (path.file_stem(), path.clone())
        } else if path.join("main.rs").is_file() {
            (path.file_name(), path.join("main.rs"))
        } else {
            continue;
        };
        let Some(name) = name.map(|n| n.to_string_lossy().into_owned()) else { continue };
        let text =
            std::fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
        // The kiosk UI's tests need the `ui` feature (Slint), which the aarch64
        // build leaves off with the other default features.
        let needs_ui = text.contains("tablet_shell::ui");
        tests.push(IntegrationTest { name, spawns_binaries: text.contains("CARGO_BIN_EXE_"), needs_ui });
    }
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tests)
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
