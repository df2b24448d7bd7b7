//! Puts a provisioning kit onto a freshly flashed disk's `data` partition,
//! where the box's first boot turns it into the agent's state.
//!
//! Owns: reading the GPT to find the partition by name, and writing a new
//! ext4 file system holding the kit into it (made with `mkfs.ext4 -d`, so no
//! mount or root privileges are needed on the IT workstation). Must not:
//! touch any partition other than `data`, or write anything before the kit
//! has been checked.

use std::{
    fs,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest, Sha256};

const SECTOR: u64 = 512;
const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
/// The files an edge box's kit must carry; the rest (facility CA, device
/// registrations) is optional.
pub const KIT_REQUIRED: [&str; 2] = ["edge.toml", "uplink.pem"];
/// The files a tablet's kit must carry: its device bundle (from
/// `edge-agent provision-device`) and the kiosk's settings.
pub const TABLET_KIT_REQUIRED: [&str; 2] = ["device.pem", "kiosk.env"];
/// The settings `kiosk.env` must give, and the languages the kiosk speaks.
const KIOSK_ENV_REQUIRED: [&str; 3] = ["EDGE", "ID_PREFIX", "LANG_DEFAULT"];
const KIOSK_LANGUAGES: [&str; 2] = ["en", "es"];

/// Which device a kit provisions, told by the files it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KitKind {
    Edge,
    Tablet,
}

impl KitKind {
    /// The kit's kind: a kit with `kiosk.env` is a tablet's.
    pub fn of(kit: &Path) -> KitKind {
        if kit.join("kiosk.env").exists() {
            KitKind::Tablet
        } else {
            KitKind::Edge
        }
    }

    fn required(self) -> [&'static str; 2] {
        match self {
            KitKind::Edge => KIT_REQUIRED,
            KitKind::Tablet => TABLET_KIT_REQUIRED,
        }
    }

    /// The kind of device a release image is for, told by its file name as
    /// `cargo xtask image` names releases (`facility-edge-<v>.img.zst`,
    /// `facility-tablet-<v>.img.zst`); `None` for any other name, e.g. a
    /// development build's `disk.img`.
    pub fn of_image(image: &Path) -> Option<KitKind> {
        let name = image.file_name()?.to_str()?;
        if name.starts_with("facility-edge-") {
            Some(KitKind::Edge)
        } else if name.starts_with("facility-tablet-") {
            Some(KitKind::Tablet)
        } else {
            None
        }
    }

    fn device(self) -> &'static str {
        match self {
            KitKind::Edge => "an edge box",
            KitKind::Tablet => "a tablet",
        }
    }

    /// The service's directory on the data partition.
    fn state_dir(self) -> &'static str {
        match self {
            KitKind::Edge => "edge",
            KitKind::Tablet => "kiosk",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}: no GPT (is this a flashed Facility Edge disk?)")]
    NoGpt(PathBuf),
    #[error("GPT of {path}: {reason}")]
    BadGpt { path: PathBuf, reason: String },
    #[error("{path} has no partition named {name:?}")]
    NoPartition { path: PathBuf, name: String },
    #[error("the kit {kit} lacks {file}")]
    IncompleteKit { kit: PathBuf, file: &'static str },
    #[error("{path}: {reason}")]
    BadKioskEnv { path: PathBuf, reason: String },
    #[error("the kit {kit} is {kit_device}'s, but {image} is the image of {image_device}")]
    WrongDevice { kit: PathBuf, kit_device: &'static str, image: PathBuf, image_device: &'static str },
    #[error("mkfs.ext4 failed ({status}): {stderr}")]
    Mkfs { status: String, stderr: String },
    #[error("the kit needs {needed} bytes but the data partition holds {available}")]
    TooLarge { needed: u64, available: u64 },
    #[error("read-back of the data partition does not match what was written")]
    VerifyFailed,
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ProvisionError {
    let path = path.to_path_buf();
    move |source| ProvisionError::Io { what, path, source }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    pub name: String,
    pub first_lba: u64,
    pub last_lba: u64,
}

impl GptPartition {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    pub fn size(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }
}

/// Parses the primary GPT header (LBA 1) and its entry array. `read_at`
/// reads `len` bytes at a byte offset, so the parsing is testable on buffers.
pub fn parse_gpt(
    mut read_at: impl FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<GptPartition>, String> {
    let header = read_at(SECTOR, SECTOR as usize).map_err(|e| e.to_string())?;
    if header.get(..8) != Some(GPT_SIGNATURE.as_slice()) {
        return Err("no GPT signature".into());
    }
    let u32_at = |b: &[u8], o: usize| b.get(o..o + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
    let u64_at = |b: &[u8], o: usize| {
        b.get(o..o + 8).map(|s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
    };
    let entries_lba = u64_at(&header, 72).ok_or("short header")?;
    let count = u32_at(&header, 80).ok_or("short header")?;
    let entry_size = u32_at(&header, 84).ok_or("short header")?;
    if !(128..=4096).contains(&entry_size) || count > 1024 {
        return Err(format!("implausible entry table: {count} entries of {entry_size} bytes"));
    }
    let table =
        read_at(entries_lba * SECTOR, count as usize * entry_size as usize).map_err(|e| e.to_string())?;
    let mut partitions = Vec::new();
    for entry in table.chunks_exact(entry_size as usize) {
        if entry[..16].iter().all(|b| *b == 0) {
            continue;
        }
        let first_lba = u64_at(entry, 32).ok_or("short entry")?;
        let last_lba = u64_at(entry, 40).ok_or("short entry")?;
        let units: Vec<u16> = entry[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|u| *u != 0)
            .collect();
        if last_lba < first_lba {
            return Err(format!("entry ends before it starts ({first_lba}..{last_lba})"));
        }
        partitions.push(GptPartition { name: String::from_utf16_lossy(&units), first_lba, last_lba });
    }
    Ok(partitions)
}

pub fn find_partition(device: &Path, name: &str) -> Result<GptPartition, ProvisionError> {
    let mut file = fs::File::open(device).map_err(io("opening", device))?;
    let partitions = parse_gpt(|offset, len| {
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0; len];
        file.read_exact(&mut buf)?;
        Ok(buf)
    })
    .map_err(|reason| {
        if reason == "no GPT signature" {
            ProvisionError::NoGpt(device.to_path_buf())
        } else {
            ProvisionError::BadGpt { path: device.to_path_buf(), reason }
        }
    })?;
    partitions
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ProvisionError::NoPartition { path: device.to_path_buf(), name: name.into() })
}

/// Checks a tablet's `kiosk.env` (systemd `KEY=value` lines) before it goes
/// onto a disk: a tablet whose kiosk cannot start shows residents nothing.
pub fn check_kiosk_env(path: &Path) -> Result<(), ProvisionError> {
    let text = fs::read_to_string(path).map_err(io("reading", path))?;
    let bad = |reason: String| ProvisionError::BadKioskEnv { path: path.to_path_buf(), reason };
    let mut values = std::collections::BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) =
            line.split_once('=').ok_or_else(|| bad(format!("line {}: expected KEY=value", number + 1)))?;
        values.insert(key.trim().to_string(), value.trim().trim_matches('"').to_string());
    }
    for key in KIOSK_ENV_REQUIRED {
        if !values.contains_key(key) {
            return Err(bad(format!("{key} is not set")));
        }
    }
    let edge = &values["EDGE"];
    match edge.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {}
        _ => return Err(bad(format!("EDGE={edge:?} is not HOST:PORT"))),
    }
    let lang = &values["LANG_DEFAULT"];
    if !KIOSK_LANGUAGES.contains(&lang.as_str()) {
        return Err(bad(format!("LANG_DEFAULT={lang:?}: the kiosk speaks {}", KIOSK_LANGUAGES.join(", "))));
    }
    Ok(())
}

/// Checks that `kit` is complete (and, for a tablet, that its settings let
/// the kiosk start), so that a flash can refuse it before writing anything.
pub fn check_kit(kit: &Path) -> Result<KitKind, ProvisionError> {
    let kind = KitKind::of(kit);
    for file in kind.required() {
        if !kit.join(file).is_file() {
            return Err(ProvisionError::IncompleteKit { kit: kit.to_path_buf(), file });
        }
    }
    if kind == KitKind::Tablet {
        check_kiosk_env(&kit.join("kiosk.env"))?;
    }
    Ok(kind)
}

/// [`check_kit`], and that the kit is for the device `image` is the image of
/// (when its name says so): an edge kit on a tablet's disk, or the reverse,
/// would leave a device that never provisions itself.
pub fn check_kit_for_image(kit: &Path, image: &Path) -> Result<KitKind, ProvisionError> {
    let kind = check_kit(kit)?;
    match KitKind::of_image(image) {
        Some(image_kind) if image_kind != kind => Err(ProvisionError::WrongDevice {
            kit: kit.to_path_buf(),
            kit_device: kind.device(),
            image: image.to_path_buf(),
            image_device: image_kind.device(),
        }),
        _ => Ok(kind),
    }
}

/// Replaces the `data` partition of `device` with a file system holding
/// `kit` under `provision/` (an edge box's or a tablet's, see [`KitKind`]).
/// Returns the partition written.
pub fn write_kit(device: &Path, kit: &Path, work: &Path) -> Result<GptPartition, ProvisionError> {
    let kind = check_kit(kit)?;
    let data = find_partition(device, "data")?;
    let root = work.join("data-root");
    let _ = fs::remove_dir_all(&root);
    copy_dir(kit, &root.join("provision"))?;
    fs::create_dir_all(root.join(kind.state_dir())).map_err(io("creating", &root))?;
    let needed = dir_size(&root)?;
    if needed + (8 << 20) > data.size() {
        return Err(ProvisionError::TooLarge { needed, available: data.size() });
    }
    let fs_image = work.join("data.ext4");
    let _ = fs::remove_file(&fs_image);
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "data", "-d"])
        .arg(&root)
        .arg(&fs_image)
        .arg(format!("{}k", data.size() / 1024))
        .output()
        .map_err(io("running mkfs.ext4 for", &fs_image))?;
    if !out.status.success() {
        return Err(ProvisionError::Mkfs {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let bytes = fs::read(&fs_image).map_err(io("reading", &fs_image))?;
    let mut target =
        fs::OpenOptions::new().write(true).read(true).open(device).map_err(io("opening", device))?;
    target.seek(SeekFrom::Start(data.offset())).map_err(io("seeking in", device))?;
    target.write_all(&bytes).map_err(io("writing", device))?;
    target.sync_all().map_err(io("syncing", device))?;
    target.seek(SeekFrom::Start(data.offset())).map_err(io("seeking in", device))?;
    let mut back = vec![0; bytes.len()];
    target.read_exact(&mut back).map_err(io("reading back", device))?;
    if Sha256::digest(&back) != Sha256::digest(&bytes) {
        return Err(ProvisionError::VerifyFailed);
    }
    let _ = fs::remove_dir_all(&root);
    let _ = fs::remove_file(&fs_image);
    Ok(data)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), ProvisionError> {
    fs::create_dir_all(to).map_err(io("creating", to))?;
    for entry in fs::read_dir(from).map_err(io("listing", from))? {
        let entry = entry.map_err(io("listing", from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(io("reading", &src))?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(io("copying", &src))?;
        }
    }
    Ok(())
}

fn dir_size(dir: &Path) -> Result<u64, ProvisionError> {
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(io("listing", dir))? {
        let entry = entry.map_err(io("listing", dir))?;
        let meta = entry.metadata().map_err(io("reading", &entry.path()))?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk file with a GPT written by sfdisk when it is installed (it is
    /// in the image build's packages); otherwise a hand-made table.
    fn gpt_disk(dir: &Path) -> PathBuf {
        let disk = dir.join("disk.img");
        let mut bytes = vec![0u8; 64 << 20];
        let mut header = vec![0u8; 512];
        header[..8].copy_from_slice(GPT_SIGNATURE);
        header[72..80].copy_from_slice(&2u64.to_le_bytes());
        header[80..84].copy_from_slice(&4u32.to_le_bytes());
        header[84..88].copy_from_slice(&128u32.to_le_bytes());
        bytes[512..1024].copy_from_slice(&header);
        let parts = [("esp", 2048u64, 4095u64), ("data", 4096, 4096 + (48 << 11) - 1)];
        for (i, (name, first, last)) in parts.iter().enumerate() {
            let at = 1024 + i * 128;
            bytes[at] = 1; // a non-zero type GUID
            bytes[at + 32..at + 40].copy_from_slice(&first.to_le_bytes());
            bytes[at + 40..at + 48].copy_from_slice(&last.to_le_bytes());
            for (j, unit) in name.encode_utf16().enumerate() {
                bytes[at + 56 + 2 * j..at + 58 + 2 * j].copy_from_slice(&unit.to_le_bytes());
            }
        }
        fs::write(&disk, bytes).unwrap();
        disk
    }

    #[test]
    fn finds_partitions_by_name_and_refuses_what_is_not_a_gpt() {
        let dir = tempfile::tempdir().unwrap();
        let disk = gpt_disk(dir.path());
        let data = find_partition(&disk, "data").unwrap();
        assert_eq!((data.offset(), data.size()), (4096 * 512, 48 << 20));
        assert!(matches!(find_partition(&disk, "root-c"), Err(ProvisionError::NoPartition { .. })));
        let blank = dir.path().join("blank.img");
        fs::write(&blank, vec![0u8; 1 << 20]).unwrap();
        assert!(matches!(find_partition(&blank, "data"), Err(ProvisionError::NoGpt(_))));
    }

    #[test]
    fn an_incomplete_kit_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let disk = gpt_disk(dir.path());
        let before = fs::read(&disk).unwrap();
        let kit = dir.path().join("kit");
        fs::create_dir_all(&kit).unwrap();
        fs::write(kit.join("edge.toml"), "facility = \"x\"\n").unwrap();
        let err = write_kit(&disk, &kit, dir.path()).unwrap_err();
        assert!(matches!(err, ProvisionError::IncompleteKit { file: "uplink.pem", .. }), "{err}");
        assert_eq!(fs::read(&disk).unwrap(), before);
    }

    #[test]
    fn the_kit_lands_in_the_data_partition_only() {
        assert!(
            Command::new("mkfs.ext4").arg("-V").output().is_ok(),
            "mkfs.ext4 (Debian e2fsprogs) is needed"
        );
        let dir = tempfile::tempdir().unwrap();
        let disk = gpt_disk(dir.path());
        let kit = dir.path().join("kit");
        fs::create_dir_all(kit.join("pki")).unwrap();
        fs::write(kit.join("edge.toml"), "facility = \"x\"\n").unwrap();
        fs::write(kit.join("uplink.pem"), "pem").unwrap();
        fs::write(kit.join("pki/ca.pem"), "ca").unwrap();
        let before = fs::read(&disk).unwrap();
        let data = write_kit(&disk, &kit, dir.path()).unwrap();
        let after = fs::read(&disk).unwrap();
        let (start, end) = (data.offset() as usize, (data.offset() + data.size()) as usize);
        assert_eq!(before[..start], after[..start], "bytes before the data partition changed");
        assert_eq!(before[end..], after[end..], "bytes after the data partition changed");
        // ext4 superblock magic 0xEF53 at offset 1080 of the partition.
        assert_eq!(&after[start + 1080..start + 1082], &[0x53, 0xEF]);
        let partition = dir.path().join("partition.ext4");
        fs::write(&partition, &after[start..end]).unwrap();
        let cat = Command::new("debugfs")
            .arg("-R")
            .arg("cat /provision/pki/ca.pem")
            .arg(&partition)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&cat.stdout), "ca");
    }

    #[test]
    fn a_tablet_kit_needs_its_bundle_and_settings_that_let_the_kiosk_start() {
        let dir = tempfile::tempdir().unwrap();
        let disk = gpt_disk(dir.path());
        let before = fs::read(&disk).unwrap();
        let kit = dir.path().join("kit");
        fs::create_dir_all(&kit).unwrap();
        fs::write(kit.join("kiosk.env"), "EDGE=edge.local:7443\nID_PREFIX=R\nLANG_DEFAULT=en\n").unwrap();
        assert_eq!(KitKind::of(&kit), KitKind::Tablet);
        let err = write_kit(&disk, &kit, dir.path()).unwrap_err();
        assert!(matches!(err, ProvisionError::IncompleteKit { file: "device.pem", .. }), "{err}");
        fs::write(kit.join("device.pem"), "pem").unwrap();
        for (env, why) in [
            ("EDGE=edge.local\nID_PREFIX=R\nLANG_DEFAULT=en\n", "HOST:PORT"),
            ("EDGE=edge.local:7443\nLANG_DEFAULT=en\n", "ID_PREFIX is not set"),
            ("EDGE=edge.local:7443\nID_PREFIX=R\nLANG_DEFAULT=fr\n", "speaks en, es"),
            ("EDGE=edge.local:7443\nID_PREFIX\n", "line 2"),
        ] {
            fs::write(kit.join("kiosk.env"), env).unwrap();
            let err = write_kit(&disk, &kit, dir.path()).unwrap_err();
            assert!(
                matches!(err, ProvisionError::BadKioskEnv { .. }) && err.to_string().contains(why),
                "{err}"
            );
        }
        assert_eq!(fs::read(&disk).unwrap(), before, "a refused kit wrote to the disk");
        fs::write(
            kit.join("kiosk.env"),
            "# tablet T-0001\nEDGE=10.0.2.2:7443\nID_PREFIX=\nLANG_DEFAULT=es\n",
        )
        .unwrap();
        check_kiosk_env(&kit.join("kiosk.env")).unwrap();
    }
}
