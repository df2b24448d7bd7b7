//! `cargo xtask image`: the flashable edge disk image and its slot artefacts.
//!
//! Owns installing the host tools the image needs, building the aarch64
//! release binaries, and calling `images/build-image.sh` (which assembles the
//! GPT image from Debian arm64 packages). Must not hold product logic or
//! decide anything about slots at run time (that is the agent's and
//! `edge-image`'s business).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context};
use clap::ValueEnum;

use crate::{cross, ensure_packages, root, run};

/// Host tools for assembling and booting images: mkfs/mtools/sfdisk write the
/// file systems and the GPT into plain files, depmod indexes the kernel
/// modules, cpio packs the initramfs, and qemu-system-aarch64 with the AAVMF
/// UEFI firmware boots the result in the tests.
pub const IMAGE_PACKAGES: &[&str] = &[
    "dosfstools",
    "mtools",
    "fdisk",
    "e2fsprogs",
    "kmod",
    "cpio",
    "zstd",
    "debian-archive-keyring",
    "qemu-system-arm",
    "qemu-efi-aarch64",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// The facility edge box.
    Edge,
}

/// A test-only fault baked into the root file system, for proving that an
/// update which does not come up is rolled back. Never used for releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// The agent binary is replaced by one that exits at once.
    BrokenAgent,
}

pub struct Built {
    pub dir: PathBuf,
    pub version: String,
}

impl Built {
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.img")
    }
}

pub fn output_dir(kind: Kind, version: &str, fault: Option<Fault>) -> PathBuf {
    let name = match fault {
        None => version.to_string(),
        Some(Fault::BrokenAgent) => format!("{version}-broken-agent"),
    };
    root().join("target").join("images").join(format!("{kind:?}").to_lowercase()).join(name)
}

/// Builds (or reuses, when the agent binary and scripts are older than the
/// image) the image of `kind` at `version`.
pub fn build(kind: Kind, version: &str, fault: Option<Fault>) -> anyhow::Result<Built> {
    check_version(version)?;
    ensure_packages(IMAGE_PACKAGES, "building and booting aarch64 images")?;
    let started = Instant::now();
    cross::build_binaries(cross::Arch::Aarch64, true, cross::Via::Auto, &["edge-agent"])?;
    let bin_dir = cross::target_dir().join(cross::TRIPLE).join("release");
    let dir = output_dir(kind, version, fault);
    let inputs = [bin_dir.join("edge-agent"), root().join("images")];
    if is_fresh(&dir.join("disk.img"), &inputs) {
        eprintln!("xtask: image {} is up to date", dir.display());
        return Ok(Built { dir, version: version.into() });
    }
    let staged = root().join("target").join("images").join("bin-staging");
    std::fs::create_dir_all(&staged)?;
    match fault {
        None => {
            std::fs::copy(bin_dir.join("edge-agent"), staged.join("edge-agent"))?;
        }
        Some(Fault::BrokenAgent) => {
            // A real aarch64 program that starts and exits 1: the unit
            // restarts it forever and the health check never sees it answer.
            broken_agent(&staged.join("edge-agent"))?;
        }
    }
    let mut script = Command::new(root().join("images").join("build-image.sh"));
    script
        .arg(format!("{kind:?}").to_lowercase())
        .arg(&staged)
        .arg(&dir)
        .arg(root().join("target").join("images").join("cache"))
        .arg(version);
    run(script, &format!("assembling the {kind:?} image {version}"))?;
    eprintln!("xtask: image built in {:.0} s: {}", started.elapsed().as_secs_f64(), dir.display());
    Ok(Built { dir, version: version.into() })
}

/// The broken agent is the root's own `false`, copied in by path: it is an
/// aarch64 ELF that the image already trusts, so the only thing wrong with
/// the update is that the service never comes up.
fn broken_agent(dest: &Path) -> anyhow::Result<()> {
    let cache = root().join("target").join("images").join("cache").join("apt").join("archives");
    let deb = std::fs::read_dir(&cache)
        .with_context(|| format!("listing {} (build the normal image first)", cache.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("coreutils_")))
        .context("coreutils arm64 package not in the image cache")?;
    let unpacked = root().join("target").join("images").join("coreutils");
    let _ = std::fs::remove_dir_all(&unpacked);
    let mut extract = Command::new("dpkg-deb");
    extract.arg("-x").arg(&deb).arg(&unpacked);
    run(extract, "unpacking the arm64 coreutils for the broken-agent test image")?;
    std::fs::copy(unpacked.join("bin").join("false"), dest).context("copying false")?;
    Ok(())
}

fn check_version(version: &str) -> anyhow::Result<()> {
    let parts: Vec<_> = version.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        bail!("image version must be X.Y.Z with digits only, got {version:?}");
    }
    Ok(())
}

fn is_fresh(output: &Path, inputs: &[PathBuf]) -> bool {
    let Ok(built) = std::fs::metadata(output).and_then(|m| m.modified()) else { return false };
    inputs.iter().all(|input| newest(input).is_some_and(|t| t <= built))
}

fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut time = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()? {
            time = time.max(newest(&entry.ok()?.path())?);
        }
    }
    Some(time)
}
