//! `cargo xtask image`: the flashable edge and tablet disk images and their
//! release artefacts.
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
    "binutils-aarch64-linux-gnu",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// The facility edge box.
    Edge,
    /// A resident tablet or wall kiosk: the kiosk shell full screen.
    Tablet,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Edge => "edge",
            Kind::Tablet => "tablet",
        }
    }

    /// The one program of ours on the image.
    fn binary(self) -> &'static str {
        match self {
            Kind::Edge => "edge-agent",
            Kind::Tablet => "tablet-shell",
        }
    }

    /// What the image's update bundles must name in `compatible`.
    pub fn compatible(self) -> &'static str {
        match self {
            Kind::Edge => COMPATIBLE,
            Kind::Tablet => "facility-tablet-aarch64",
        }
    }
}

/// A test-only fault baked into the root file system, for proving that an
/// update which does not come up is rolled back. Never used for releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// The agent binary is replaced by one that exits at once.
    BrokenAgent,
}

pub fn output_dir(kind: Kind, version: &str, fault: Option<Fault>) -> PathBuf {
    let name = match fault {
        None => version.to_string(),
        Some(Fault::BrokenAgent) => format!("{version}-broken-agent"),
    };
    root().join("target").join("images").join(kind.name()).join(name)
}

/// The images the QEMU tier boots: the release under test, an update that
/// does not come up (the rollback scenario) and a newer good one.
pub fn build_test_images() -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    build(Kind::Edge, version, None)?;
    build(Kind::Edge, &bump_patch(version, 1)?, Some(Fault::BrokenAgent))?;
    build(Kind::Edge, &bump_patch(version, 2)?, None)?;
    build(Kind::Tablet, version, None)?;
    Ok(())
}

fn bump_patch(version: &str, by: u64) -> anyhow::Result<String> {
    check_version(version)?;
    let (rest, patch) = version.rsplit_once('.').context("version")?;
    Ok(format!("{rest}.{}", patch.parse::<u64>()? + by))
}

/// Builds (or reuses, when the agent binary and scripts are older than the
/// image) the image of `kind` at `version`.
pub fn build(kind: Kind, version: &str, fault: Option<Fault>) -> anyhow::Result<PathBuf> {
    check_version(version)?;
    ensure_packages(IMAGE_PACKAGES, "building and booting aarch64 images")?;
    let started = Instant::now();
    let binary = kind.binary();
    cross::build_binaries(cross::Arch::Aarch64, true, cross::Via::Auto, &[binary])?;
    let bin_dir = cross::target_dir().join(cross::TRIPLE).join("release");
    let dir = output_dir(kind, version, fault);
    let key = release_key()?;
    let inputs = [
        bin_dir.join(binary),
        root().join("images"),
        root().join("cross").join("arm64-apt.sh"),
        edge_image::keys::public_key_path(&key),
    ];
    if is_fresh(&dir.join("release").join(SUMS), &inputs) {
        eprintln!("xtask: image {} is up to date", dir.display());
        return Ok(dir);
    }
    let staged = root().join("target").join("images").join("bin-staging");
    std::fs::create_dir_all(&staged)?;
    match fault {
        None => {
            std::fs::copy(bin_dir.join(binary), staged.join(binary))?;
        }
        Some(Fault::BrokenAgent) => {
            // A real aarch64 program that starts and exits 1: the unit
            // restarts it forever and the health check never sees it answer.
            broken_agent(&staged.join("edge-agent"))?;
        }
    }
    let mut script = Command::new(root().join("images").join("build-image.sh"));
    script
        .arg(kind.name())
        .arg(&staged)
        .arg(&dir)
        .arg(root().join("target").join("images").join("cache"))
        .arg(version)
        .env("UPDATE_KEY", edge_image::keys::public_key_path(&key))
        .env("COMPATIBLE", kind.compatible());
    run(script, &format!("assembling the {} image {version}", kind.name()))?;
    release_artefacts(kind, &dir, version, &key)?;
    eprintln!("xtask: image built in {:.0} s: {}", started.elapsed().as_secs_f64(), dir.display());
    Ok(dir)
}

/// What a box accepts in an update bundle's `compatible` field.
pub const COMPATIBLE: &str = "facility-edge-aarch64";
const SUMS: &str = "SHA256SUMS";

/// The release signing key: `FACILITY_RELEASE_KEY` names it for real
/// releases; otherwise a development key is made once under target/ (its
/// public half is baked into the images built here, so they trust only it).
fn release_key() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FACILITY_RELEASE_KEY") {
        return Ok(PathBuf::from(path));
    }
    let path = root().join("target").join("images").join("keys").join("release-dev.key");
    if !path.exists() {
        std::fs::create_dir_all(path.parent().context("key dir")?)?;
        edge_image::generate_signing_key(&path).context("generating the development release key")?;
        eprintln!("xtask: generated a development release key: {}", path.display());
    }
    Ok(path)
}

/// `release/`: the flashable `.img.zst` with its `.bmap`, for edge boxes the
/// signed update bundle (this version's root, kernel and initramfs), and
/// `SHA256SUMS` with its ed25519 signature over them. Tablets have no update
/// agent yet, so their release is the image alone.
fn release_artefacts(kind: Kind, dir: &Path, version: &str, key_path: &Path) -> anyhow::Result<()> {
    let release = dir.join("release");
    let _ = std::fs::remove_dir_all(&release);
    std::fs::create_dir_all(&release)?;
    let name = format!("facility-{}-{version}", kind.name());
    let key = edge_image::load_signing_key(key_path).context("loading the release key")?;

    let bmap = edge_image::create_bmap(&dir.join("disk.img")).context("mapping the disk image")?;
    let bmap_path = release.join(format!("{name}.img.bmap"));
    std::fs::write(&bmap_path, bmap.to_xml())?;

    let zst = release.join(format!("{name}.img.zst"));
    let mut zstd = Command::new("zstd");
    zstd.args(["-q", "-f", "-T0", "-6", "--sparse"]).arg(dir.join("disk.img")).arg("-o").arg(&zst);
    run(zstd, "compressing the disk image")?;

    let mut signed = vec![zst.clone(), bmap_path];
    let bundle = release.join(format!("{name}.bundle"));
    if kind == Kind::Edge {
        let parsed: edge_image::Version = version.parse().context("image version")?;
        edge_image::BundleBuilder::new(parsed, kind.compatible())
            .image(edge_image::ImageName::Rootfs, &dir.join("rootfs.ext4"))
            .image(edge_image::ImageName::Kernel, &dir.join("vmlinuz"))
            .image(edge_image::ImageName::Initrd, &dir.join("initrd.img"))
            .write(&bundle, &key)
            .context("writing the update bundle")?;
        signed.push(bundle.clone());
    }
    edge_image::sums::write_sums(&signed, Some(&key)).context("writing SHA256SUMS")?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len() as f64 / 1048576.0).unwrap_or(0.0);
    let bundle_size =
        if kind == Kind::Edge { format!(", {:.0} MiB bundle", size(&bundle)) } else { String::new() };
    eprintln!(
        "xtask: release {name}: disk {:.0} MiB raw ({:.0} MiB mapped), {:.0} MiB .img.zst{bundle_size}",
        size(&dir.join("disk.img")),
        bmap.mapped_bytes() as f64 / 1048576.0,
        size(&zst),
    );
    Ok(())
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
