//! Writing whole-disk images to a device, guided by a bmap, and reading back what
//! was written. The safety decisions (is the device in use?) are pure functions
//! over `/proc/self/mounts` text and the partition list so they are tested without
//! a disk.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use ed25519_dalek::VerifyingKey;

use crate::bmap::{create_bmap, find_bmap, Bmap, BmapError};
use crate::bundle::read_full;
use crate::sums::{check_file, load_sums, SumsError};

const CHUNK: usize = 1 << 20;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error(transparent)]
    Bmap(#[from] BmapError),
    #[error(transparent)]
    Sums(#[from] SumsError),
    #[error("{device} is mounted at {mountpoint}; unmount it first")]
    DeviceMounted { device: String, mountpoint: String },
    #[error("{device} holds the running root filesystem; refusing to overwrite it")]
    RunningRootDisk { device: String },
    #[error("{device} holds {size} bytes but the image is {needed} bytes")]
    DeviceTooSmall { device: String, needed: u64, size: u64 },
    #[error("{image}: no bmap found next to it (tried NAME.img.bmap and NAME.bmap); pass --bmap")]
    NoBmap { image: PathBuf },
    #[error("image ends at byte {got} but the bmap says it has {expected} bytes")]
    ImageTooShort { expected: u64, got: u64 },
    #[error("image blocks {first}-{last} do not match the bmap checksum: the image or the bmap is damaged")]
    ImageChecksumMismatch { first: u64, last: u64 },
    #[error("verification failed: blocks {first}-{last} on the target differ from the image")]
    VerifyMismatch { first: u64, last: u64 },
}

fn io_ctx(context: impl std::fmt::Display) -> impl FnOnce(io::Error) -> FlashError {
    let context = context.to_string();
    move |source| FlashError::Io { context, source }
}

/// Decodes the octal escapes (`\040` for space) the kernel uses in mounts fields.
fn unescape_mount_field(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Refuses a target disk that is, or has a partition that is, mounted, and above all
/// the disk that holds `/`. `disk` and `partitions` are kernel names (`sdb`,
/// `sdb1`); `root_disk` is the kernel name of the disk holding `/`, when known.
pub fn check_device_free(
    disk: &str,
    partitions: &[String],
    mounts: &str,
    root_disk: Option<&str>,
) -> Result<(), FlashError> {
    let mut names: HashSet<&str> = partitions.iter().map(String::as_str).collect();
    names.insert(disk);
    if root_disk == Some(disk) {
        return Err(FlashError::RunningRootDisk { device: format!("/dev/{disk}") });
    }
    let mut mounted = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(src), Some(mnt)) = (fields.next(), fields.next()) else { continue };
        let src = unescape_mount_field(src);
        let Some(base) = src.strip_prefix("/dev/").map(|s| s.rsplit('/').next().unwrap_or(s)) else {
            continue;
        };
        if names.contains(base) {
            let mnt = unescape_mount_field(mnt);
            if mnt == "/" {
                return Err(FlashError::RunningRootDisk { device: src });
            }
            mounted.push((src, mnt));
        }
    }
    match mounted.into_iter().next() {
        Some((device, mountpoint)) => Err(FlashError::DeviceMounted { device, mountpoint }),
        None => Ok(()),
    }
}

/// `device_size` is `None` for a regular file, which grows to fit.
pub fn check_size(device: &str, device_size: Option<u64>, image_size: u64) -> Result<(), FlashError> {
    match device_size {
        Some(size) if size < image_size => {
            Err(FlashError::DeviceTooSmall { device: device.to_owned(), needed: image_size, size })
        }
        _ => Ok(()),
    }
}

/// What is known about a flash target.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    pub path: PathBuf,
    /// Kernel name (`sdb`) for a block device; `None` for a regular file.
    pub kernel_name: Option<String>,
    pub size: Option<u64>,
    pub model: Option<String>,
    pub partitions: Vec<String>,
}

fn read_trimmed(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Looks the target up in /sys. Symlinks such as `/dev/disk/by-id/...` are
/// resolved first so the mounts check compares kernel names.
pub fn inspect_target(path: &Path) -> Result<TargetInfo, FlashError> {
    let real = fs::canonicalize(path).map_err(io_ctx(path.display()))?;
    let meta = fs::metadata(&real).map_err(io_ctx(real.display()))?;
    if !meta.file_type().is_block_device() {
        return Ok(TargetInfo {
            path: real,
            kernel_name: None,
            size: None,
            model: None,
            partitions: Vec::new(),
        });
    }
    let name = real.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let sys = Path::new("/sys/class/block").join(&name);
    let size = read_trimmed(&sys.join("size")).and_then(|s| s.parse::<u64>().ok()).map(|s| s * 512);
    let model = match (read_trimmed(&sys.join("device/vendor")), read_trimmed(&sys.join("device/model"))) {
        (Some(v), Some(m)) => Some(format!("{v} {m}")),
        (v, m) => m.or(v),
    };
    let mut partitions = Vec::new();
    if let Ok(rd) = fs::read_dir(&sys) {
        for e in rd.flatten() {
            if e.path().join("partition").exists() {
                partitions.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    partitions.sort();
    Ok(TargetInfo { path: real, kernel_name: Some(name), size, model, partitions })
}

/// Kernel name of the disk holding `/`, from the root's device number via
/// /sys/dev/block; `None` for roots not on a block device (overlay, nfs, tmpfs).
pub fn root_disk_name() -> Option<String> {
    let dev = fs::metadata("/").ok()?.dev();
    let node = format!("/sys/dev/block/{}:{}", libc::major(dev), libc::minor(dev));
    let real = fs::canonicalize(node).ok()?;
    let disk = if real.join("partition").exists() { real.parent()? } else { real.as_path() };
    disk.file_name()?.to_str().map(str::to_owned)
}

/// Opens an image for streaming, decoding zstd when the file starts with its magic
/// (so a renamed file still works).
pub fn open_image(path: &Path) -> Result<Box<dyn Read>, FlashError> {
    let mut f = File::open(path).map_err(io_ctx(path.display()))?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).map_err(io_ctx(path.display()))?;
    let f = File::open(path).map_err(io_ctx(path.display()))?;
    if n == 4 && magic == ZSTD_MAGIC {
        let d = zstd::stream::read::Decoder::new(f).map_err(io_ctx(format!("{}: zstd", path.display())))?;
        Ok(Box::new(d))
    } else {
        Ok(Box::new(BufReader::with_capacity(CHUNK, f)))
    }
}

/// Streams `source` (the raw image bytes) and writes only the bmap's mapped ranges
/// to `target` at their offsets; unmapped bytes are read through and dropped. Each
/// range's sha256 is checked as it streams. Ends with fsync.
pub fn write_mapped(
    source: &mut dyn Read,
    bmap: &Bmap,
    target: &File,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), FlashError> {
    let total = bmap.mapped_bytes();
    let mut done = 0u64;
    let mut pos = 0u64;
    let mut buf = vec![0u8; CHUNK];
    for r in &bmap.ranges {
        let (start, end) = bmap.byte_span(r);
        let skip = start - pos;
        let skipped = io::copy(&mut source.take(skip), &mut io::sink()).map_err(io_ctx("reading image"))?;
        if skipped != skip {
            return Err(FlashError::ImageTooShort { expected: bmap.image_size, got: pos + skipped });
        }
        pos = start;
        let mut h = Sha256::new();
        while pos < end {
            let want = ((end - pos) as usize).min(CHUNK);
            let n = read_full(&mut &mut *source, &mut buf[..want]).map_err(io_ctx("reading image"))?;
            if n < want {
                return Err(FlashError::ImageTooShort { expected: bmap.image_size, got: pos + n as u64 });
            }
            h.update(&buf[..n]);
            target.write_all_at(&buf[..n], pos).map_err(io_ctx(format!("writing target at byte {pos}")))?;
            pos += n as u64;
            done += n as u64;
            progress(done, total);
        }
        if h.finalize().as_slice() != r.sha256 {
            return Err(FlashError::ImageChecksumMismatch { first: r.first, last: r.last });
        }
    }
    target.sync_all().map_err(io_ctx("fsync target"))?;
    Ok(())
}

/// Reads every mapped range back from `target` and compares its sha256 with the
/// bmap. For block devices the page cache is dropped first, so the bytes come from
/// the medium rather than from memory.
pub fn verify_mapped(
    target: &File,
    bmap: &Bmap,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), FlashError> {
    // SAFETY: posix_fadvise only takes integers; an error here just means the
    // read-back may come from cache, which the caller cannot fix either.
    unsafe {
        libc::posix_fadvise(target.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
    let total = bmap.mapped_bytes();
    let mut done = 0u64;
    let mut buf = vec![0u8; CHUNK];
    for r in &bmap.ranges {
        let (start, end) = bmap.byte_span(r);
        let mut h = Sha256::new();
        let mut pos = start;
        while pos < end {
            let n = ((end - pos) as usize).min(CHUNK);
            match target.read_exact_at(&mut buf[..n], pos) {
                Ok(()) => {}
                // A target shorter than the range cannot hold the image.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(FlashError::VerifyMismatch { first: r.first, last: r.last })
                }
                Err(e) => return Err(io_ctx(format!("reading back byte {pos}"))(e)),
            }
            h.update(&buf[..n]);
            pos += n as u64;
            done += n as u64;
            progress(done, total);
        }
        if h.finalize().as_slice() != r.sha256 {
            return Err(FlashError::VerifyMismatch { first: r.first, last: r.last });
        }
    }
    Ok(())
}

/// Everything checked, nothing written yet: what `facility-flash` shows before it
/// asks for confirmation.
#[derive(Debug, Clone)]
pub struct FlashJob {
    pub image: PathBuf,
    pub bmap: Bmap,
    /// `None` when the bmap was made from the raw image on the spot.
    pub bmap_path: Option<PathBuf>,
    pub target: TargetInfo,
    /// Whether a SHA256SUMS next to the image vouched for it (and for the bmap).
    pub sums_checked: bool,
}

/// Runs every refusal check: SHA256SUMS (and its signature when release keys are
/// given), bmap lookup, device in use, running root disk, device size.
pub fn prepare_flash(
    image: &Path,
    device: &Path,
    bmap_path: Option<&Path>,
    release_keys: Option<&[VerifyingKey]>,
) -> Result<FlashJob, FlashError> {
    let bmap_path = bmap_path.map(Path::to_path_buf).or_else(|| find_bmap(image));
    let dir = image.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let sums = load_sums(dir, release_keys)?;
    if let Some(sums) = &sums {
        check_file(sums, image)?;
        if let Some(b) = &bmap_path {
            let listed = b.parent() == image.parent()
                && sums.iter().any(|(n, _)| Some(n.as_str()) == b.file_name().and_then(|f| f.to_str()));
            // A signed release must vouch for the bmap too: a doctored bmap could
            // leave ranges out and produce a half-written disk that still verifies.
            if listed || release_keys.is_some() {
                check_file(sums, b)?;
            }
        }
    }
    let bmap = match &bmap_path {
        Some(p) => Bmap::read(p)?,
        None => {
            let mut magic = [0u8; 4];
            let mut f = File::open(image).map_err(io_ctx(image.display()))?;
            let n = read_full(&mut f, &mut magic).map_err(io_ctx(image.display()))?;
            if n == 4 && magic == ZSTD_MAGIC {
                return Err(FlashError::NoBmap { image: image.to_owned() });
            }
            create_bmap(image)?
        }
    };
    let target = inspect_target(device)?;
    if let Some(name) = &target.kernel_name {
        let mounts = fs::read_to_string("/proc/self/mounts").map_err(io_ctx("/proc/self/mounts"))?;
        check_device_free(name, &target.partitions, &mounts, root_disk_name().as_deref())?;
    }
    check_size(&target.path.display().to_string(), target.size, bmap.image_size)?;
    Ok(FlashJob { image: image.to_owned(), bmap, bmap_path, target, sums_checked: sums.is_some() })
}

impl FlashJob {
    /// Writes the mapped ranges, fsyncs, then reads them back and compares.
    pub fn run(
        &self,
        write_progress: &mut dyn FnMut(u64, u64),
        verify_progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), FlashError> {
        let mut source = open_image(&self.image)?;
        let target = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.target.path)
            .map_err(io_ctx(self.target.path.display()))?;
        tracing::info!(image = %self.image.display(), target = %self.target.path.display(), "flashing");
        write_mapped(&mut *source, &self.bmap, &target, write_progress)?;
        verify_mapped(&target, &self.bmap, verify_progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
/dev/nvme0n1p2 / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
/dev/nvme0n1p1 /boot/efi vfat rw 0 0
/dev/sdb2 /media/usb\\040stick ext4 rw 0 0
tmpfs /tmp tmpfs rw 0 0
";

    fn parts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mounted_partition_is_refused() {
        let err = check_device_free("sdb", &parts(&["sdb1", "sdb2"]), MOUNTS, Some("nvme0n1")).unwrap_err();
        match err {
            FlashError::DeviceMounted { device, mountpoint } => {
                assert_eq!(device, "/dev/sdb2");
                assert_eq!(mountpoint, "/media/usb stick");
            }
            other => panic!("{other}"),
        }
        let whole = "/dev/sdc /mnt ext4 rw 0 0\n";
        assert!(matches!(check_device_free("sdc", &[], whole, None), Err(FlashError::DeviceMounted { .. })));
    }

    #[test]
    fn free_device_passes() {
        check_device_free("sdc", &parts(&["sdc1"]), MOUNTS, Some("nvme0n1")).unwrap();
        // sdb10 is not sdb1: names are compared whole.
        check_device_free("sdb1", &[], "/dev/sdb10 /mnt ext4 rw 0 0\n", None).unwrap();
    }

    #[test]
    fn running_root_disk_is_refused() {
        // From the mounts table alone (root disk unknown, e.g. /dev/root aliasing).
        let err =
            check_device_free("nvme0n1", &parts(&["nvme0n1p1", "nvme0n1p2"]), MOUNTS, None).unwrap_err();
        assert!(matches!(err, FlashError::RunningRootDisk { .. }), "{err}");
        // From the root device number even when nothing in the table matches.
        let err = check_device_free("mmcblk0", &parts(&["mmcblk0p1"]), "", Some("mmcblk0")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/mmcblk0 holds the running root filesystem; refusing to overwrite it"
        );
    }

    #[test]
    fn too_small_device_is_refused() {
        assert!(matches!(
            check_size("/dev/sdb", Some(1000), 1001),
            Err(FlashError::DeviceTooSmall { needed: 1001, size: 1000, .. })
        ));
        check_size("/dev/sdb", Some(1001), 1001).unwrap();
        check_size("disk.raw", None, u64::MAX).unwrap();
    }
}
