//! Signed update bundles and their streaming install into the inactive slot.
//!
//! Layout: `FEBUNDLE` | format u8 | manifest length u32 BE | manifest JSON |
//! ed25519 signature (64 bytes) over everything before it | payload (the images'
//! blocks, concatenated in manifest order, each stored zstd-compressed or raw).
//! The payload is not signed directly: the signed manifest carries, per block, the
//! sha256 of the uncompressed block and how many bytes it takes in the payload, so
//! every block is located, decompressed (bounded) and checked before it is written
//! anywhere, and a bundle never has to be read twice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::slots::{EntryName, InstallPlan, Slot};
use crate::version::Version;

pub const MAGIC: &[u8; 8] = b"FEBUNDLE";
/// 2: blocks are compressed one by one (format 1 stored them raw; it never shipped
/// and is not read).
pub const FORMAT: u8 = 2;
/// zstd level for payload blocks. 10 is where, on our rootfs and arm64 kernel,
/// higher levels stop paying for their build time; decompression speed on the box
/// does not depend on it.
pub const ZSTD_LEVEL: i32 = 10;
/// Upper bound on the manifest, checked before allocating for it. A 16 GiB rootfs
/// in 1 MiB blocks needs about 1.1 MB of hashes, so 4 MiB leaves room.
pub const MAX_MANIFEST_LEN: u32 = 4 << 20;
pub const PRODUCT: &str = "facility-edge";
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
const MIN_BLOCK_SIZE: u32 = 4096;
const MAX_BLOCK_SIZE: u32 = 16 << 20;
const PREFIX_LEN: u64 = 8 + 1 + 4;
const SIG_LEN: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageName {
    Rootfs,
    Kernel,
    Initrd,
}

impl ImageName {
    pub const ALL: [ImageName; 3] = [ImageName::Rootfs, ImageName::Kernel, ImageName::Initrd];

    pub fn as_str(self) -> &'static str {
        match self {
            ImageName::Rootfs => "rootfs",
            ImageName::Kernel => "kernel",
            ImageName::Initrd => "initrd",
        }
    }

    /// File name on the ESP under `slots/<slot>/`; `None` for the rootfs, which goes
    /// to the slot's partition.
    pub fn esp_file(self) -> Option<&'static str> {
        match self {
            ImageName::Rootfs => None,
            ImageName::Kernel => Some("vmlinuz"),
            ImageName::Initrd => Some("initrd.img"),
        }
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ImageName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageName::ALL.into_iter().find(|n| n.as_str() == s).ok_or_else(|| format!("unknown image {s:?}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    pub name: ImageName,
    /// Uncompressed size.
    pub size: u64,
    /// sha256 of the uncompressed image.
    pub sha256: String,
    /// sha256 of each uncompressed block.
    pub block_sha256: Vec<String>,
    /// How each block is stored in the payload, parallel to `block_sha256`.
    pub block_stored: Vec<StoredBlock>,
}

impl ImageEntry {
    /// Bytes the image takes in the payload.
    pub fn stored_len(&self) -> u64 {
        self.block_stored.iter().map(|b| u64::from(b.len())).sum()
    }
}

/// How one block sits in the payload, with its length there. Serialized as
/// `{"zstd": 1234}` or `{"raw": 1048576}`. Being in the signed manifest, the
/// lengths are authenticated: a reader can seek to any block without trusting the
/// payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredBlock {
    /// The block's bytes as they are, because compression did not make them
    /// smaller. The length always equals the block's.
    Raw(u32),
    /// One zstd frame that declares its decompressed size; always shorter than
    /// the block.
    Zstd(u32),
}

impl StoredBlock {
    pub fn len(self) -> u32 {
        match self {
            StoredBlock::Raw(n) | StoredBlock::Zstd(n) => n,
        }
    }

    /// Never true for a valid manifest; here because clippy pairs it with `len`.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub product: String,
    pub compatible: String,
    pub version: Version,
    pub block_size: u32,
    /// In payload order.
    pub images: Vec<ImageEntry>,
}

impl Manifest {
    pub fn image(&self, name: ImageName) -> Option<&ImageEntry> {
        self.images.iter().find(|i| i.name == name)
    }

    /// Bytes of payload in the bundle file (compressed where that helped).
    pub fn payload_len(&self) -> u64 {
        self.images.iter().map(ImageEntry::stored_len).sum()
    }

    /// Bytes the images take once installed (uncompressed).
    pub fn images_len(&self) -> u64 {
        self.images.iter().map(|i| i.size).sum()
    }

    /// Structural checks; returns the decoded hashes so the install loop compares
    /// bytes, not strings.
    fn validate(&self) -> Result<Vec<DecodedImage>, String> {
        if self.product != PRODUCT {
            return Err(format!("product is {:?}, expected {PRODUCT:?}", self.product));
        }
        let bs = self.block_size;
        if !bs.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs) {
            return Err(format!(
                "block_size {bs} is not a power of two between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}"
            ));
        }
        let mut out = Vec::with_capacity(self.images.len());
        for name in ImageName::ALL {
            let n = self.images.iter().filter(|i| i.name == name).count();
            if n != 1 {
                return Err(format!("image {name} appears {n} times, expected once"));
            }
        }
        for img in &self.images {
            let blocks = img.size.div_ceil(u64::from(bs));
            if img.block_sha256.len() as u64 != blocks {
                return Err(format!(
                    "image {}: {} block hashes for {} bytes, expected {blocks}",
                    img.name,
                    img.block_sha256.len(),
                    img.size
                ));
            }
            if img.block_stored.len() != img.block_sha256.len() {
                return Err(format!(
                    "image {}: {} stored block lengths for {} block hashes",
                    img.name,
                    img.block_stored.len(),
                    img.block_sha256.len()
                ));
            }
            for (i, stored) in img.block_stored.iter().enumerate() {
                let n = (img.size - i as u64 * u64::from(bs)).min(u64::from(bs));
                // Raw is exactly the block; zstd is only kept when it is smaller.
                // Both bound the read of a stored block to block_size.
                let ok = match *stored {
                    StoredBlock::Raw(l) => u64::from(l) == n,
                    StoredBlock::Zstd(l) => l > 0 && u64::from(l) < n,
                };
                if !ok {
                    return Err(format!(
                        "image {}: block {i} of {n} bytes cannot be stored as {stored:?}",
                        img.name
                    ));
                }
            }
            let sha256 = decode_hash(&img.sha256)
                .ok_or_else(|| format!("image {}: sha256 is not 64 hex digits", img.name))?;
            let mut block_hashes = Vec::with_capacity(img.block_sha256.len());
            for (i, h) in img.block_sha256.iter().enumerate() {
                block_hashes.push(
                    decode_hash(h)
                        .ok_or_else(|| format!("image {}: block {i} hash is not 64 hex digits", img.name))?,
                );
            }
            out.push(DecodedImage { sha256, blocks: block_hashes });
        }
        Ok(out)
    }
}

fn decode_hash(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[derive(Debug, Clone)]
struct DecodedImage {
    sha256: [u8; 32],
    blocks: Vec<[u8; 32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("{0}: not a Facility Edge bundle (bad magic)")]
    NotABundle(PathBuf),
    #[error(
        "bundle format {found} is not supported (this build reads only format {FORMAT}, \
         with zstd-compressed blocks; rebuild the bundle with a current facility-flash)"
    )]
    UnsupportedFormat { found: u8 },
    #[error("bundle is unsigned (all-zero signature)")]
    Unsigned,
    #[error("bundle signature does not verify with any of the {keys} trusted key(s)")]
    UntrustedSignature { keys: usize },
    #[error("no trusted keys given; refusing to open a bundle unverified")]
    NoTrustedKeys,
    #[error("bundle is truncated: {0}")]
    Truncated(String),
    #[error("manifest is {len} bytes, over the {MAX_MANIFEST_LEN} byte limit")]
    ManifestTooLarge { len: u32 },
    #[error("bad manifest: {0}")]
    BadManifest(String),
    #[error("bundle has {extra} bytes after the last image")]
    TrailingData { extra: u64 },
    #[error("bundle is for {found:?}, this box is {expected:?}")]
    Incompatible { expected: String, found: String },
    #[error("block {block} of {image}: hash mismatch")]
    BlockHashMismatch { image: ImageName, block: u64 },
    /// A stored block that does not decompress to what the signed manifest says
    /// (corrupt data, a frame of the wrong length, a block too large). Like a hash
    /// mismatch, nothing of the block has been written.
    #[error("block {block} of {image}: {reason}")]
    BlockDecode { image: ImageName, block: u64, reason: BlockDecodeError },
    #[error("{image}: whole-image hash mismatch")]
    ImageHashMismatch { image: ImageName },
    #[error("install plan is for version {plan}, but the bundle holds {bundle}")]
    VersionMismatch { plan: Version, bundle: Version },
    #[error("install plan targets slot {plan}, but the target given is slot {target}")]
    SlotMismatch { plan: Slot, target: Slot },
    #[error("{device}: rootfs is {needed} bytes but the device holds only {size}")]
    DeviceTooSmall { device: PathBuf, needed: u64, size: u64 },
    #[error("kernel options must be one line without control characters")]
    BadOptions,
    #[error("input {image} ({path}) changed while the bundle was written")]
    InputChanged { image: ImageName, path: PathBuf },
}

/// Why a stored zstd block was refused before its hash was even checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockDecodeError {
    #[error("not a valid zstd frame: {0}")]
    Corrupt(String),
    #[error("the manifest stores {stored} bytes but the zstd frame in them is {frame} bytes")]
    StoredLength { stored: u32, frame: u64 },
    #[error("zstd frame does not declare its decompressed size")]
    NoContentSize,
    #[error("decompresses to {size} bytes, over the block size of {limit}")]
    TooLarge { size: u64, limit: u32 },
    #[error("decompresses to {found} bytes, the manifest implies {expected}")]
    Length { expected: u64, found: u64 },
}

fn io_ctx(context: impl std::fmt::Display) -> impl FnOnce(io::Error) -> BundleError {
    let context = context.to_string();
    move |source| BundleError::Io { context, source }
}

/// Maps an early EOF while reading `what` to `Truncated`, other errors to `Io`.
fn read_ctx(what: &'static str) -> impl FnOnce(io::Error) -> BundleError {
    move |e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            BundleError::Truncated(format!("file ends inside the {what}"))
        } else {
            BundleError::Io { context: format!("reading bundle {what}"), source: e }
        }
    }
}

/// A bundle whose header passed the magic, format, signature and manifest checks.
/// The payload is not verified yet: that happens block by block while it streams.
#[derive(Debug, Clone)]
pub struct VerifiedHeader {
    pub manifest: Manifest,
    pub payload_offset: u64,
    /// Index into the trusted keys of the key that verified the signature.
    pub key_index: usize,
    decoded: Vec<DecodedImage>,
}

impl VerifiedHeader {
    pub fn check_compatible(&self, expected: &str) -> Result<(), BundleError> {
        if self.manifest.compatible != expected {
            return Err(BundleError::Incompatible {
                expected: expected.to_owned(),
                found: self.manifest.compatible.clone(),
            });
        }
        Ok(())
    }
}

/// Builds a bundle. Images are laid out rootfs first, so the install writes and
/// syncs the big partition before it touches the ESP.
#[derive(Debug, Clone)]
pub struct BundleBuilder {
    version: Version,
    compatible: String,
    block_size: u32,
    images: Vec<(ImageName, PathBuf)>,
}

impl BundleBuilder {
    pub fn new(version: Version, compatible: &str) -> Self {
        Self {
            version,
            compatible: compatible.to_owned(),
            block_size: DEFAULT_BLOCK_SIZE,
            images: Vec::new(),
        }
    }

    pub fn block_size(mut self, block_size: u32) -> Self {
        self.block_size = block_size;
        self
    }

    pub fn image(mut self, name: ImageName, path: &Path) -> Self {
        self.images.push((name, path.to_owned()));
        self
    }

    /// Writes the bundle to `out` (through `out.tmp` and a rename, so a failed build
    /// leaves no half bundle under the final name) and returns its manifest.
    ///
    /// Each input is read once: its blocks are hashed and compressed into
    /// `out.payload.tmp`, because the stored lengths must be in the signed
    /// manifest, which precedes the payload.
    pub fn write(mut self, out: &Path, key: &SigningKey) -> Result<Manifest, BundleError> {
        self.images.sort_by_key(|(n, _)| *n);
        let bs = self.block_size;
        let tmp = TempFile(sibling(out, ".tmp"));
        let payload_tmp = TempFile(sibling(out, ".payload.tmp"));
        let mut payload = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&payload_tmp.0)
            .map_err(io_ctx(payload_tmp.0.display()))?;
        let mut compressor =
            zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(io_ctx("setting up zstd compression"))?;
        let mut entries = Vec::new();
        for (name, path) in &self.images {
            entries.push(pack_image(*name, path, bs, &mut compressor, &mut payload, &payload_tmp.0)?);
        }
        let manifest = Manifest {
            product: PRODUCT.to_owned(),
            compatible: self.compatible.clone(),
            version: self.version,
            block_size: bs,
            images: entries,
        };
        manifest.validate().map_err(BundleError::BadManifest)?;
        let header = signed_header(&manifest, key)?;

        let mut f = File::create(&tmp.0).map_err(io_ctx(tmp.0.display()))?;
        f.write_all(&header).map_err(io_ctx(tmp.0.display()))?;
        payload.seek(SeekFrom::Start(0)).map_err(io_ctx(payload_tmp.0.display()))?;
        let copied = io::copy(&mut payload, &mut f).map_err(io_ctx(tmp.0.display()))?;
        if copied != manifest.payload_len() {
            // Only another process writing to our temp file gets here.
            return Err(BundleError::Io {
                context: format!("{}: changed while the bundle was written", payload_tmp.0.display()),
                source: io::Error::other("payload length differs from the manifest"),
            });
        }
        f.sync_all().map_err(io_ctx(tmp.0.display()))?;
        fs::rename(&tmp.0, out).map_err(io_ctx(out.display()))?;
        tracing::info!(
            bundle = %out.display(),
            version = %manifest.version,
            images = manifest.images_len(),
            payload = manifest.payload_len(),
            "bundle written"
        );
        Ok(manifest)
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A build's temp file, removed when the build ends, failed or not (after the
/// final rename there is nothing left to remove, and the error is ignored).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Magic, format, manifest length and manifest, followed by their signature.
fn signed_header(manifest: &Manifest, key: &SigningKey) -> Result<Vec<u8>, BundleError> {
    let json = serde_json::to_vec(manifest).map_err(|e| BundleError::BadManifest(e.to_string()))?;
    let len = u32::try_from(json.len())
        .ok()
        .filter(|l| *l <= MAX_MANIFEST_LEN)
        .ok_or(BundleError::ManifestTooLarge { len: u32::try_from(json.len()).unwrap_or(u32::MAX) })?;
    let mut header = Vec::with_capacity(json.len() + 13 + 64);
    header.extend_from_slice(MAGIC);
    header.push(FORMAT);
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&json);
    let sig = key.sign(&header);
    header.extend_from_slice(&sig.to_bytes());
    Ok(header)
}

/// Reads the image at `path` once, block by block: hashes each block and appends
/// it to `payload` compressed, or raw where zstd does not make it smaller
/// (already compressed data, like a gzip initrd).
fn pack_image(
    name: ImageName,
    path: &Path,
    bs: u32,
    compressor: &mut zstd::bulk::Compressor<'_>,
    payload: &mut File,
    payload_path: &Path,
) -> Result<ImageEntry, BundleError> {
    let mut f = File::open(path).map_err(io_ctx(path.display()))?;
    let len_before = f.metadata().map_err(io_ctx(path.display()))?.len();
    let mut buf = vec![0u8; bs as usize];
    let mut packed = Vec::with_capacity(zstd::zstd_safe::compress_bound(bs as usize));
    let mut whole = Sha256::new();
    let mut blocks = Vec::new();
    let mut stored = Vec::new();
    let mut size = 0u64;
    loop {
        let n = read_full(&mut f, &mut buf).map_err(io_ctx(path.display()))?;
        if n == 0 {
            break;
        }
        let block = &buf[..n];
        whole.update(block);
        blocks.push(hex::encode(Sha256::digest(block)));
        packed.clear();
        compressor.compress_to_buffer(block, &mut packed).map_err(io_ctx(format!(
            "compressing block {} of {}",
            blocks.len() - 1,
            path.display()
        )))?;
        // Both lengths are below block_size (<= 16 MiB), so they fit in u32.
        let (bytes, how) = if packed.len() < n {
            (&packed[..], StoredBlock::Zstd(packed.len() as u32))
        } else {
            (block, StoredBlock::Raw(n as u32))
        };
        payload.write_all(bytes).map_err(io_ctx(payload_path.display()))?;
        stored.push(how);
        size += n as u64;
        if n < buf.len() {
            break;
        }
    }
    // A regular file that grows or shrinks under us would give a bundle of a
    // state that never existed on disk.
    let meta = f.metadata().map_err(io_ctx(path.display()))?;
    if meta.is_file() && (size != len_before || meta.len() != len_before) {
        return Err(BundleError::InputChanged { image: name, path: path.to_owned() });
    }
    Ok(ImageEntry {
        name,
        size,
        sha256: hex::encode(whole.finalize()),
        block_sha256: blocks,
        block_stored: stored,
    })
}

/// Reads until `buf` is full or EOF; returns the count.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Convenience wrapper over [`BundleBuilder`] with the default 1 MiB blocks.
pub fn write_bundle(
    out: &Path,
    version: Version,
    compatible: &str,
    images: &[(ImageName, &Path)],
    signing_key: &SigningKey,
) -> Result<Manifest, BundleError> {
    images
        .iter()
        .fold(BundleBuilder::new(version, compatible), |b, (n, p)| b.image(*n, p))
        .write(out, signing_key)
}

/// Reads the manifest of the bundle at `path` WITHOUT checking its signature.
///
/// For a party that does not hold the box's trust keys and only needs to
/// label a bundle it forwards (central cataloguing a release by version).
/// Nothing read here may decide whether to install: the box opens the bundle
/// with [`open_bundle`] and its own keys. Magic, format, length limits and the
/// manifest's structure are still checked, so garbage is refused early.
pub fn read_manifest_unverified(path: &Path) -> Result<Manifest, BundleError> {
    let mut f = File::open(path).map_err(io_ctx(path.display()))?;
    let file_len = f.metadata().map_err(io_ctx(path.display()))?.len();
    let mut magic = [0u8; 8];
    let n = read_full(&mut f, &mut magic).map_err(read_ctx("magic"))?;
    if n < magic.len() || magic != *MAGIC {
        return Err(BundleError::NotABundle(path.to_owned()));
    }
    let mut fixed = [0u8; 5];
    f.read_exact(&mut fixed).map_err(read_ctx("header"))?;
    if fixed[0] != FORMAT {
        return Err(BundleError::UnsupportedFormat { found: fixed[0] });
    }
    let len = u32::from_be_bytes([fixed[1], fixed[2], fixed[3], fixed[4]]);
    if len > MAX_MANIFEST_LEN {
        return Err(BundleError::ManifestTooLarge { len });
    }
    if PREFIX_LEN + u64::from(len) + SIG_LEN > file_len {
        return Err(BundleError::Truncated(format!(
            "manifest of {len} bytes and signature do not fit in {file_len} bytes"
        )));
    }
    let mut json = vec![0u8; len as usize];
    f.read_exact(&mut json).map_err(read_ctx("manifest"))?;
    let manifest: Manifest =
        serde_json::from_slice(&json).map_err(|e| BundleError::BadManifest(e.to_string()))?;
    manifest.validate().map_err(BundleError::BadManifest)?;
    Ok(manifest)
}

/// Reads and checks the header of the bundle at `path`: magic, format, manifest
/// length, signature (against each trusted key), manifest structure and total size.
pub fn open_bundle(path: &Path, trusted_keys: &[VerifyingKey]) -> Result<VerifiedHeader, BundleError> {
    let mut f = File::open(path).map_err(io_ctx(path.display()))?;
    let file_len = f.metadata().map_err(io_ctx(path.display()))?.len();
    read_header(&mut f, path, file_len, trusted_keys)
}

fn read_header(
    f: &mut File,
    path: &Path,
    file_len: u64,
    trusted_keys: &[VerifyingKey],
) -> Result<VerifiedHeader, BundleError> {
    let mut magic = [0u8; 8];
    let n = read_full(f, &mut magic).map_err(read_ctx("magic"))?;
    if magic[..n] != MAGIC[..n] || n == 0 {
        return Err(BundleError::NotABundle(path.to_owned()));
    }
    if n < magic.len() {
        return Err(BundleError::Truncated("file ends inside the magic".into()));
    }
    let mut fixed = [0u8; 5];
    f.read_exact(&mut fixed).map_err(read_ctx("header"))?;
    if fixed[0] != FORMAT {
        return Err(BundleError::UnsupportedFormat { found: fixed[0] });
    }
    let len = u32::from_be_bytes([fixed[1], fixed[2], fixed[3], fixed[4]]);
    if len > MAX_MANIFEST_LEN {
        return Err(BundleError::ManifestTooLarge { len });
    }
    // Compare with the file size first, so a lying length field cannot make us
    // allocate more than the file holds.
    if PREFIX_LEN + u64::from(len) + SIG_LEN > file_len {
        return Err(BundleError::Truncated(format!(
            "manifest of {len} bytes and signature do not fit in {file_len} bytes"
        )));
    }
    let mut signed = Vec::with_capacity(PREFIX_LEN as usize + len as usize);
    signed.extend_from_slice(MAGIC);
    signed.extend_from_slice(&fixed);
    signed.resize(PREFIX_LEN as usize + len as usize, 0);
    f.read_exact(&mut signed[PREFIX_LEN as usize..]).map_err(read_ctx("manifest"))?;
    let mut sig_bytes = [0u8; 64];
    f.read_exact(&mut sig_bytes).map_err(read_ctx("signature"))?;
    if sig_bytes.iter().all(|b| *b == 0) {
        return Err(BundleError::Unsigned);
    }
    if trusted_keys.is_empty() {
        return Err(BundleError::NoTrustedKeys);
    }
    let sig = Signature::from_bytes(&sig_bytes);
    let key_index = trusted_keys
        .iter()
        .position(|k| k.verify_strict(&signed, &sig).is_ok())
        .ok_or(BundleError::UntrustedSignature { keys: trusted_keys.len() })?;
    // Only signed JSON is parsed.
    let manifest: Manifest = serde_json::from_slice(&signed[PREFIX_LEN as usize..])
        .map_err(|e| BundleError::BadManifest(e.to_string()))?;
    let decoded = manifest.validate().map_err(BundleError::BadManifest)?;
    let payload_offset = PREFIX_LEN + u64::from(len) + SIG_LEN;
    let end = payload_offset
        .checked_add(manifest.payload_len())
        .ok_or_else(|| BundleError::BadManifest("image sizes overflow".into()))?;
    if end > file_len {
        return Err(BundleError::Truncated(format!("payload needs {} bytes, file has {file_len}", end)));
    }
    if end < file_len {
        return Err(BundleError::TrailingData { extra: file_len - end });
    }
    Ok(VerifiedHeader { manifest, payload_offset, key_index, decoded })
}

/// Receives payload blocks only after their hash matched.
trait BlockSink {
    fn block(&mut self, image: usize, offset: u64, data: &[u8]) -> Result<(), BundleError>;
    fn image_done(&mut self, image: usize) -> Result<(), BundleError>;
}

fn stream_verified(
    f: &mut File,
    header: &VerifiedHeader,
    progress: &mut dyn FnMut(u64, u64),
    sink: &mut dyn BlockSink,
) -> Result<(), BundleError> {
    let m = &header.manifest;
    let total = m.images_len();
    let mut done = 0u64;
    f.seek(SeekFrom::Start(header.payload_offset)).map_err(io_ctx("seeking to bundle payload"))?;
    // Both buffers are block_size: validate() bounds every stored length by its
    // block, and decompression never writes past the block's length.
    let mut stored = vec![0u8; m.block_size as usize];
    let mut buf = vec![0u8; m.block_size as usize];
    let mut decompressor = zstd::bulk::Decompressor::new().map_err(io_ctx("setting up zstd"))?;
    for (idx, (img, dec)) in m.images.iter().zip(&header.decoded).enumerate() {
        let mut whole = Sha256::new();
        let mut offset = 0u64;
        for (block, (expected, how)) in dec.blocks.iter().zip(&img.block_stored).enumerate() {
            let n = (img.size - offset).min(u64::from(m.block_size)) as usize;
            let src = &mut stored[..how.len() as usize];
            f.read_exact(src).map_err(read_ctx("payload"))?;
            let data = match how {
                StoredBlock::Raw(_) => &src[..],
                StoredBlock::Zstd(_) => {
                    decompress_block(&mut decompressor, src, &mut buf[..n], m.block_size).map_err(
                        |reason| BundleError::BlockDecode { image: img.name, block: block as u64, reason },
                    )?;
                    &buf[..n]
                }
            };
            if Sha256::digest(data).as_slice() != expected {
                return Err(BundleError::BlockHashMismatch { image: img.name, block: block as u64 });
            }
            whole.update(data);
            sink.block(idx, offset, data)?;
            offset += n as u64;
            done += n as u64;
            progress(done, total);
        }
        if whole.finalize().as_slice() != dec.sha256 {
            return Err(BundleError::ImageHashMismatch { image: img.name });
        }
        sink.image_done(idx)?;
    }
    Ok(())
}

/// Decompresses one stored block into `out`, which is exactly as long as the
/// manifest says the block is. The frame's declared size is checked before any
/// decoding, and the one-shot API never writes past `out`, so a frame that
/// would expand beyond the block (a zstd bomb) costs no memory or time.
fn decompress_block(
    d: &mut zstd::bulk::Decompressor<'_>,
    src: &[u8],
    out: &mut [u8],
    block_size: u32,
) -> Result<(), BlockDecodeError> {
    use zstd::zstd_safe;
    let corrupt = |e: &dyn std::fmt::Display| BlockDecodeError::Corrupt(e.to_string());
    // One frame filling the stored bytes exactly: the stored length is signed, so
    // a mismatch means a bad builder or a bad payload, and either is refused here
    // rather than as garbage at the next block.
    let frame = zstd_safe::find_frame_compressed_size(src)
        .map_err(|code| corrupt(&zstd_safe::get_error_name(code)))?;
    if frame != src.len() {
        return Err(BlockDecodeError::StoredLength { stored: src.len() as u32, frame: frame as u64 });
    }
    // Our builder always declares the size; a frame without it could only be
    // bounded by decoding it, so it is refused.
    let size = match zstd_safe::get_frame_content_size(src) {
        Ok(Some(size)) => size,
        Ok(None) => return Err(BlockDecodeError::NoContentSize),
        Err(e) => return Err(corrupt(&format!("{e:?}"))),
    };
    if size > u64::from(block_size) {
        return Err(BlockDecodeError::TooLarge { size, limit: block_size });
    }
    let expected = out.len() as u64;
    if size != expected {
        return Err(BlockDecodeError::Length { expected, found: size });
    }
    let n = d.decompress_to_buffer(src, out).map_err(|e| corrupt(&e))?;
    // zstd itself checks the output against the declared size; this is the
    // manifest's side of the same rule.
    if n as u64 != expected {
        return Err(BlockDecodeError::Length { expected, found: n as u64 });
    }
    Ok(())
}

struct NullSink;
impl BlockSink for NullSink {
    fn block(&mut self, _: usize, _: u64, _: &[u8]) -> Result<(), BundleError> {
        Ok(())
    }
    fn image_done(&mut self, _: usize) -> Result<(), BundleError> {
        Ok(())
    }
}

/// Checks the header and every block of the payload without writing anything.
pub fn verify_bundle(path: &Path, trusted_keys: &[VerifyingKey]) -> Result<VerifiedHeader, BundleError> {
    let mut f = File::open(path).map_err(io_ctx(path.display()))?;
    let file_len = f.metadata().map_err(io_ctx(path.display()))?.len();
    let header = read_header(&mut f, path, file_len, trusted_keys)?;
    stream_verified(&mut f, &header, &mut |_, _| {}, &mut NullSink)?;
    Ok(header)
}

/// Where an install goes. `compatible` is this box's compatible string (bundles for
/// other hardware are refused); `kernel_options` follows the fixed
/// `root=PARTLABEL=root-<s> ro facility.slot=<s>` on the entry's options line.
#[derive(Debug, Clone)]
pub struct SlotTarget {
    /// The slot's root partition (`/dev/disk/by-partlabel/root-b`), or a regular file
    /// in tests.
    pub rootfs_device: PathBuf,
    /// The mounted ESP.
    pub esp_dir: PathBuf,
    pub slot: Slot,
    pub compatible: String,
    pub kernel_options: String,
}

#[derive(Debug, Clone)]
pub struct Installed {
    pub slot: Slot,
    pub version: Version,
    pub entry_path: PathBuf,
    pub manifest: Manifest,
}

/// The Boot Loader Specification entry for `slot`.
pub fn entry_text(slot: Slot, version: Version, kernel_options: &str) -> Result<String, BundleError> {
    if kernel_options.chars().any(char::is_control) {
        return Err(BundleError::BadOptions);
    }
    let extra = kernel_options.trim();
    let sep = if extra.is_empty() { "" } else { " " };
    Ok(format!(
        "title Facility Edge {version} (slot {slot})\n\
         version {version}\n\
         sort-key facility-edge\n\
         linux /slots/{slot}/vmlinuz\n\
         initrd /slots/{slot}/initrd.img\n\
         options root=PARTLABEL={label} ro facility.slot={slot}{sep}{extra}\n",
        label = slot.partlabel(),
    ))
}

/// fsync on a directory makes renames and unlinks in it durable. Some filesystems
/// refuse fsync on directories (EINVAL); there is nothing better to do there.
fn sync_dir(dir: &Path) -> Result<(), BundleError> {
    let d = File::open(dir).map_err(io_ctx(dir.display()))?;
    match d.sync_all() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r.map_err(io_ctx(format!("fsync {}", dir.display()))),
    }
}

/// Writes `contents` to `dir/name` via a hidden temp file, fsync and rename, then
/// fsyncs the directory.
fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf, BundleError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let final_path = dir.join(name);
    let mut f = File::create(&tmp).map_err(io_ctx(tmp.display()))?;
    f.write_all(contents).and_then(|_| f.sync_all()).map_err(io_ctx(tmp.display()))?;
    fs::rename(&tmp, &final_path).map_err(io_ctx(final_path.display()))?;
    sync_dir(dir)?;
    Ok(final_path)
}

/// Removes every entry of `slot`, whatever its counter, so the slot cannot boot
/// while it is being rewritten.
pub fn remove_slot_entries(entries_dir: &Path, slot: Slot) -> Result<Vec<String>, BundleError> {
    fs::create_dir_all(entries_dir).map_err(io_ctx(entries_dir.display()))?;
    let mut removed = Vec::new();
    for e in fs::read_dir(entries_dir).map_err(io_ctx(entries_dir.display()))? {
        let e = e.map_err(io_ctx(entries_dir.display()))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if EntryName::parse(name).is_some_and(|n| n.slot == slot) {
            fs::remove_file(e.path()).map_err(io_ctx(e.path().display()))?;
            removed.push(name.to_owned());
        }
    }
    sync_dir(entries_dir)?;
    Ok(removed)
}

fn device_size(f: &File, path: &Path) -> Result<Option<u64>, BundleError> {
    let meta = f.metadata().map_err(io_ctx(path.display()))?;
    if !meta.file_type().is_block_device() {
        // A regular file grows as needed; that is how tests stand in for a disk.
        return Ok(None);
    }
    let mut g = f;
    let size = g.seek(SeekFrom::End(0)).map_err(io_ctx(path.display()))?;
    Ok(Some(size))
}

struct SlotSink<'a> {
    header: &'a VerifiedHeader,
    device: File,
    device_path: &'a Path,
    slot_dir: PathBuf,
    esp_tmp: Option<(File, PathBuf)>,
}

impl BlockSink for SlotSink<'_> {
    fn block(&mut self, image: usize, offset: u64, data: &[u8]) -> Result<(), BundleError> {
        let name = self.header.manifest.images[image].name;
        match name.esp_file() {
            None => self
                .device
                .write_all_at(data, offset)
                .map_err(io_ctx(format!("writing {} at {offset}", self.device_path.display()))),
            Some(file) => {
                if self.esp_tmp.is_none() {
                    let tmp = self.slot_dir.join(format!(".{file}.tmp"));
                    let f = File::create(&tmp).map_err(io_ctx(tmp.display()))?;
                    self.esp_tmp = Some((f, tmp));
                }
                match &mut self.esp_tmp {
                    Some((f, tmp)) => f.write_all(data).map_err(io_ctx(tmp.display())),
                    None => Ok(()),
                }
            }
        }
    }

    fn image_done(&mut self, image: usize) -> Result<(), BundleError> {
        let name = self.header.manifest.images[image].name;
        match name.esp_file() {
            None => {
                self.device.sync_all().map_err(io_ctx(format!("fsync {}", self.device_path.display())))?;
                tracing::info!(device = %self.device_path.display(), "rootfs written and synced");
            }
            Some(file) => {
                let (f, tmp) = match self.esp_tmp.take() {
                    Some(t) => t,
                    // An empty image has no blocks: still install an (empty) file.
                    None => {
                        let tmp = self.slot_dir.join(format!(".{file}.tmp"));
                        (File::create(&tmp).map_err(io_ctx(tmp.display()))?, tmp)
                    }
                };
                f.sync_all().map_err(io_ctx(tmp.display()))?;
                drop(f);
                let dest = self.slot_dir.join(file);
                fs::rename(&tmp, &dest).map_err(io_ctx(dest.display()))?;
                sync_dir(&self.slot_dir)?;
                tracing::info!(file = %dest.display(), "{name} installed");
            }
        }
        Ok(())
    }
}

/// Installs a bundle into the inactive slot.
///
/// Order is what makes a power cut at any point safe: the slot's boot entry is
/// removed first, every block is verified before it is written, the device is
/// synced before the ESP files are replaced, and the new entry (with a boot
/// counter) appears last and atomically. A failure anywhere leaves the slot with
/// no entry, so systemd-boot keeps booting the running slot.
pub fn install(
    bundle_path: &Path,
    trusted_keys: &[VerifyingKey],
    plan: &InstallPlan,
    target: &SlotTarget,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Installed, BundleError> {
    let mut f = File::open(bundle_path).map_err(io_ctx(bundle_path.display()))?;
    let file_len = f.metadata().map_err(io_ctx(bundle_path.display()))?.len();
    let header = read_header(&mut f, bundle_path, file_len, trusted_keys)?;
    header.check_compatible(&target.compatible)?;
    let m = &header.manifest;
    if m.version != plan.version() {
        return Err(BundleError::VersionMismatch { plan: plan.version(), bundle: m.version });
    }
    if target.slot != plan.target() || target.slot == plan.running() {
        return Err(BundleError::SlotMismatch { plan: plan.target(), target: target.slot });
    }
    let entry = entry_text(target.slot, m.version, &target.kernel_options)?;
    let device = OpenOptions::new()
        .write(true)
        .open(&target.rootfs_device)
        .map_err(io_ctx(target.rootfs_device.display()))?;
    let rootfs_len = m.image(crate::bundle::ImageName::Rootfs).map_or(0, |i| i.size);
    if let Some(size) = device_size(&device, &target.rootfs_device)? {
        if size < rootfs_len {
            return Err(BundleError::DeviceTooSmall {
                device: target.rootfs_device.clone(),
                needed: rootfs_len,
                size,
            });
        }
    }

    let entries_dir = target.esp_dir.join("loader").join("entries");
    let removed = remove_slot_entries(&entries_dir, target.slot)?;
    tracing::info!(slot = %target.slot, ?removed, version = %m.version, "installing; old entries removed");
    let slot_dir = target.esp_dir.join("slots").join(target.slot.as_str());
    fs::create_dir_all(&slot_dir).map_err(io_ctx(slot_dir.display()))?;

    let mut sink =
        SlotSink { header: &header, device, device_path: &target.rootfs_device, slot_dir, esp_tmp: None };
    stream_verified(&mut f, &header, progress, &mut sink)?;

    let entry_name = plan.entry_name().file_name();
    let entry_path = write_atomic(&entries_dir, &entry_name, entry.as_bytes())?;
    tracing::info!(entry = %entry_path.display(), "slot {} ready to try", target.slot);
    Ok(Installed { slot: target.slot, version: m.version, entry_path, manifest: header.manifest.clone() })
}

/// Reads `ESP/loader/entries/` into a [`BootState`](crate::slots::BootState),
/// including the other slot's version from its entry, for the agent's status page
/// and for [`plan_install`](crate::slots::plan_install).
pub fn read_boot_state(
    esp_dir: &Path,
    running_slot: Slot,
    running_version: Version,
) -> Result<crate::slots::BootState, BundleError> {
    let dir = esp_dir.join("loader").join("entries");
    let mut names = Vec::new();
    match fs::read_dir(&dir) {
        Ok(rd) => {
            for e in rd {
                let e = e.map_err(io_ctx(dir.display()))?;
                if let Some(n) = e.file_name().to_str() {
                    names.push(n.to_owned());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_ctx(dir.display())(e)),
    }
    names.sort();
    let other = running_slot.other();
    let other_version = names
        .iter()
        .filter(|n| EntryName::parse(n).is_some_and(|e| e.slot == other))
        .find_map(|n| fs::read_to_string(dir.join(n)).ok().and_then(|t| crate::slots::entry_version(&t)));
    Ok(crate::slots::BootState::from(running_slot, &names, running_version).with_other_version(other_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_text_has_bls_fields() {
        let t = entry_text(Slot::B, Version::new(0, 2, 0), "console=ttyAMA0 quiet").unwrap();
        assert_eq!(
            t,
            "title Facility Edge 0.2.0 (slot b)\nversion 0.2.0\nsort-key facility-edge\n\
             linux /slots/b/vmlinuz\ninitrd /slots/b/initrd.img\n\
             options root=PARTLABEL=root-b ro facility.slot=b console=ttyAMA0 quiet\n"
        );
        assert!(matches!(
            entry_text(Slot::A, Version::new(1, 0, 0), "x\ntitle evil"),
            Err(BundleError::BadOptions)
        ));
        assert_eq!(crate::slots::entry_version(&t), Some(Version::new(0, 2, 0)));
    }

    #[test]
    fn manifest_validation_names_the_problem() {
        let img = |name, size: u64, n| ImageEntry {
            name,
            size,
            sha256: "00".repeat(32),
            block_sha256: vec!["11".repeat(32); n],
            // Full blocks compressed, a short last block raw.
            block_stored: (0..n as u64)
                .map(|i| match size - i * 4096 {
                    rest if rest >= 4096 => StoredBlock::Zstd(100),
                    rest => StoredBlock::Raw(rest as u32),
                })
                .collect(),
        };
        let mut m = Manifest {
            product: PRODUCT.into(),
            compatible: "x".into(),
            version: Version::new(1, 0, 0),
            block_size: 4096,
            images: vec![
                img(ImageName::Rootfs, 4097, 2),
                img(ImageName::Kernel, 0, 0),
                img(ImageName::Initrd, 1, 1),
            ],
        };
        assert!(m.validate().is_ok());
        // Stored lengths the payload could not honestly hold.
        for bad in [StoredBlock::Raw(4095), StoredBlock::Zstd(4096), StoredBlock::Zstd(0)] {
            let mut m = m.clone();
            m.images[0].block_stored[0] = bad;
            let err = m.validate().unwrap_err();
            assert!(err.contains("rootfs: block 0 of 4096 bytes cannot be stored as"), "{err}");
        }
        let mut short = m.clone();
        short.images[2].block_stored.clear();
        assert!(short.validate().unwrap_err().contains("initrd: 0 stored block lengths for 1 block hashes"));
        assert_eq!(m.payload_len(), 100 + 1 + 1);
        assert_eq!(m.images_len(), 4097 + 1);
        m.images[0].block_sha256.pop();
        assert!(m.validate().unwrap_err().contains("rootfs: 1 block hashes"));
        m.images[0].block_stored.pop();
        m.images[0].block_sha256.push("zz".into());
        m.images[0].block_stored.push(StoredBlock::Raw(1));
        assert!(m.validate().unwrap_err().contains("block 1 hash"));
        m.images.pop();
        assert!(m.validate().unwrap_err().contains("initrd appears 0 times"));
        m.block_size = 1000;
        assert!(m.validate().unwrap_err().contains("block_size"));
    }
}
