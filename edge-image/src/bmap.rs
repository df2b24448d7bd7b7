//! Block maps in bmaptool's XML format (version 2.0, sha256), so images built here
//! flash with Debian's `bmaptool copy` and `facility-flash` reads bmaptool's files.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const BMAP_BLOCK_SIZE: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BmapRange {
    /// First and last block, inclusive (as bmaptool writes them).
    pub first: u64,
    pub last: u64,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub image_size: u64,
    pub block_size: u64,
    /// Sorted, non-overlapping.
    pub ranges: Vec<BmapRange>,
}

#[derive(Debug, thiserror::Error)]
pub enum BmapError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("bmap is not valid XML: {0}")]
    Xml(String),
    #[error("bmap version {0:?} is not supported (expected 2.x)")]
    UnsupportedVersion(String),
    #[error("bmap checksum type {0:?} is not supported (expected sha256)")]
    UnsupportedChecksum(String),
    #[error("bmap: {0}")]
    Invalid(String),
    #[error("bmap file checksum mismatch: the bmap was modified or damaged")]
    FileChecksumMismatch,
}

fn io_ctx(context: impl std::fmt::Display) -> impl FnOnce(io::Error) -> BmapError {
    let context = context.to_string();
    move |source| BmapError::Io { context, source }
}

impl Bmap {
    pub fn blocks_count(&self) -> u64 {
        self.image_size.div_ceil(self.block_size)
    }

    pub fn mapped_blocks_count(&self) -> u64 {
        self.ranges.iter().map(|r| r.last - r.first + 1).sum()
    }

    /// Byte span `[start, end)` of a range; the last block may be short.
    pub fn byte_span(&self, r: &BmapRange) -> (u64, u64) {
        (r.first * self.block_size, ((r.last + 1) * self.block_size).min(self.image_size))
    }

    pub fn mapped_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| self.byte_span(r)).map(|(s, e)| e - s).sum()
    }

    /// Renders bmaptool's XML, including the BmapFileChecksum (sha256 of the file
    /// with the checksum field itself set to zeros, as bmaptool computes it).
    pub fn to_xml(&self) -> String {
        let zeros = "0".repeat(64);
        let mut s = String::new();
        s.push_str("<?xml version=\"1.0\" ?>\n");
        s.push_str("<!-- Block map written by facility-flash; only mapped blocks need copying. -->\n");
        s.push_str("<bmap version=\"2.0\">\n");
        s.push_str(&format!("    <ImageSize> {} </ImageSize>\n", self.image_size));
        s.push_str(&format!("    <BlockSize> {} </BlockSize>\n", self.block_size));
        s.push_str(&format!("    <BlocksCount> {} </BlocksCount>\n", self.blocks_count()));
        s.push_str(&format!("    <MappedBlocksCount> {} </MappedBlocksCount>\n", self.mapped_blocks_count()));
        s.push_str("    <ChecksumType> sha256 </ChecksumType>\n");
        s.push_str(&format!("    <BmapFileChecksum> {zeros} </BmapFileChecksum>\n"));
        s.push_str("    <BlockMap>\n");
        for r in &self.ranges {
            let span =
                if r.first == r.last { r.first.to_string() } else { format!("{}-{}", r.first, r.last) };
            s.push_str(&format!("        <Range chksum=\"{}\"> {span} </Range>\n", hex::encode(r.sha256)));
        }
        s.push_str("    </BlockMap>\n</bmap>\n");
        let sum = hex::encode(Sha256::digest(s.as_bytes()));
        s.replacen(&zeros, &sum, 1)
    }

    pub fn from_xml(text: &str) -> Result<Bmap, BmapError> {
        let doc = roxmltree::Document::parse(text).map_err(|e| BmapError::Xml(e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "bmap" {
            return Err(BmapError::Invalid(format!(
                "root element is <{}>, expected <bmap>",
                root.tag_name().name()
            )));
        }
        let version = root.attribute("version").unwrap_or("");
        if version.split('.').next() != Some("2") {
            return Err(BmapError::UnsupportedVersion(version.to_owned()));
        }
        let child_text = |name: &str| -> Result<&str, BmapError> {
            root.children()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(str::trim)
                .ok_or_else(|| BmapError::Invalid(format!("missing <{name}>")))
        };
        let number = |name: &str| -> Result<u64, BmapError> {
            let t = child_text(name)?;
            t.parse().map_err(|_| BmapError::Invalid(format!("<{name}> {t:?} is not a number")))
        };
        let cs_type = child_text("ChecksumType")?;
        if cs_type != "sha256" {
            return Err(BmapError::UnsupportedChecksum(cs_type.to_owned()));
        }
        let file_sum = child_text("BmapFileChecksum")?;
        if file_sum.len() != 64 || !file_sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BmapError::Invalid("BmapFileChecksum is not 64 hex digits".into()));
        }
        let zeroed = text.replacen(file_sum, &"0".repeat(64), 1);
        if !hex::encode(Sha256::digest(zeroed.as_bytes())).eq_ignore_ascii_case(file_sum) {
            return Err(BmapError::FileChecksumMismatch);
        }
        let image_size = number("ImageSize")?;
        let block_size = number("BlockSize")?;
        if block_size == 0 || block_size % 512 != 0 {
            return Err(BmapError::Invalid(format!("block size {block_size} is not a multiple of 512")));
        }
        let bmap_blocks = number("BlocksCount")?;
        let mapped = number("MappedBlocksCount")?;
        let block_map = root
            .children()
            .find(|n| n.has_tag_name("BlockMap"))
            .ok_or_else(|| BmapError::Invalid("missing <BlockMap>".into()))?;
        let mut ranges = Vec::new();
        for r in block_map.children().filter(|n| n.has_tag_name("Range")) {
            let span = r.text().unwrap_or("").trim();
            let bad = || BmapError::Invalid(format!("range {span:?} is not N or N-M"));
            let (first, last) = match span.split_once('-') {
                Some((a, b)) => (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?),
                None => {
                    let n = span.parse().map_err(|_| bad())?;
                    (n, n)
                }
            };
            let sha256 = r
                .attribute("chksum")
                .and_then(|h| {
                    let mut out = [0u8; 32];
                    hex::decode_to_slice(h, &mut out).ok().map(|_| out)
                })
                .ok_or_else(|| BmapError::Invalid(format!("range {span}: chksum is not 64 hex digits")))?;
            ranges.push(BmapRange { first, last, sha256 });
        }
        let bmap = Bmap { image_size, block_size, ranges };
        if bmap.blocks_count() != bmap_blocks {
            return Err(BmapError::Invalid(format!(
                "BlocksCount {bmap_blocks} does not match image size {image_size} / block size {block_size}"
            )));
        }
        let mut next = 0u64;
        for r in &bmap.ranges {
            if r.first > r.last || r.first < next || r.last >= bmap_blocks {
                return Err(BmapError::Invalid(format!(
                    "range {}-{} is reversed, overlaps the previous one or lies past block {bmap_blocks}",
                    r.first, r.last
                )));
            }
            next = r.last + 1;
        }
        if bmap.mapped_blocks_count() != mapped {
            return Err(BmapError::Invalid(format!(
                "MappedBlocksCount {mapped} but the ranges cover {} blocks",
                bmap.mapped_blocks_count()
            )));
        }
        Ok(bmap)
    }

    pub fn read(path: &Path) -> Result<Bmap, BmapError> {
        let text = std::fs::read_to_string(path).map_err(io_ctx(path.display()))?;
        Bmap::from_xml(&text)
    }
}

fn seek(fd: i32, pos: u64, whence: i32) -> io::Result<Option<u64>> {
    let off = libc::off_t::try_from(pos).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: lseek only reads its integer arguments; the fd stays open for the
    // duration of the call because the caller holds the File.
    let r = unsafe { libc::lseek(fd, off, whence) };
    if r < 0 {
        let e = io::Error::last_os_error();
        // ENXIO: no more data after `pos`.
        return if e.raw_os_error() == Some(libc::ENXIO) { Ok(None) } else { Err(e) };
    }
    Ok(Some(r as u64))
}

/// Data extents from SEEK_DATA/SEEK_HOLE; the whole file where the filesystem does
/// not support them.
fn data_extents(f: &File, size: u64) -> io::Result<Vec<(u64, u64)>> {
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < size {
        let data = match seek(fd, pos, libc::SEEK_DATA) {
            Ok(Some(d)) => d,
            Ok(None) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(vec![(0, size)]),
            Err(e) => return Err(e),
        };
        let hole = seek(fd, data, libc::SEEK_HOLE)?.unwrap_or(size).min(size);
        if hole <= data {
            break;
        }
        out.push((data, hole));
        pos = hole;
    }
    Ok(out)
}

/// Maps the blocks of a raw image that hold data: holes (SEEK_HOLE) and all-zero
/// 4 KiB blocks are left out, since a fresh filesystem reads zeros there anyway.
pub fn create_bmap(image: &Path) -> Result<Bmap, BmapError> {
    let f = File::open(image).map_err(io_ctx(image.display()))?;
    let image_size = f.metadata().map_err(io_ctx(image.display()))?.len();
    let bs = BMAP_BLOCK_SIZE;
    let blocks = image_size.div_ceil(bs);
    let extents = data_extents(&f, image_size).map_err(io_ctx(format!("{}: SEEK_DATA", image.display())))?;
    let mut ranges = Vec::new();
    let mut current: Option<(u64, u64, Sha256)> = None;
    let mut buf = vec![0u8; bs as usize];
    let mut next_block = 0u64;
    for (start, end) in extents {
        let first = (start / bs).max(next_block);
        let last_excl = end.div_ceil(bs).min(blocks);
        for block in first..last_excl {
            let off = block * bs;
            let n = (image_size - off).min(bs) as usize;
            f.read_exact_at(&mut buf[..n], off)
                .map_err(io_ctx(format!("{}: block {block}", image.display())))?;
            if buf[..n].iter().all(|b| *b == 0) {
                continue;
            }
            match &mut current {
                Some((_, last, h)) if *last + 1 == block => {
                    *last = block;
                    h.update(&buf[..n]);
                }
                _ => {
                    if let Some((f0, l0, h)) = current.take() {
                        ranges.push(BmapRange { first: f0, last: l0, sha256: h.finalize().into() });
                    }
                    let mut h = Sha256::new();
                    h.update(&buf[..n]);
                    current = Some((block, block, h));
                }
            }
        }
        next_block = next_block.max(last_excl);
    }
    if let Some((f0, l0, h)) = current {
        ranges.push(BmapRange { first: f0, last: l0, sha256: h.finalize().into() });
    }
    Ok(Bmap { image_size, block_size: bs, ranges })
}

/// The bmap `facility-flash` uses when none is named: for `disk.img` or
/// `disk.img.zst`, first `disk.img.bmap` (bmaptool's habit), then `disk.bmap`.
pub fn find_bmap(image: &Path) -> Option<PathBuf> {
    let name = image.file_name()?.to_str()?;
    let raw = name.strip_suffix(".zst").unwrap_or(name);
    let mut candidates = vec![format!("{raw}.bmap")];
    if let Some(stem) = raw.strip_suffix(".img") {
        candidates.push(format!("{stem}.bmap"));
    }
    candidates.into_iter().map(|c| image.with_file_name(c)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn sparse_image_maps_data_only_and_xml_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk.img");
        let mut f = File::create(&p).unwrap();
        f.write_all(&[1u8; 5000]).unwrap(); // blocks 0-1
        f.seek(SeekFrom::Start(3 * 4096)).unwrap();
        f.write_all(&[0u8; 4096]).unwrap(); // written zeros: block 3 unmapped
        f.write_all(&[2u8; 10]).unwrap(); // block 4
        f.seek(SeekFrom::Start(1 << 20)).unwrap(); // hole
        f.write_all(&[3u8; 100]).unwrap(); // block 256, short: image ends here
        drop(f);
        let bmap = create_bmap(&p).unwrap();
        let spans: Vec<(u64, u64)> = bmap.ranges.iter().map(|r| (r.first, r.last)).collect();
        assert_eq!(spans, [(0, 1), (4, 4), (256, 256)]);
        assert_eq!(bmap.image_size, (1 << 20) + 100);
        assert_eq!(bmap.blocks_count(), 257);
        assert_eq!(bmap.mapped_bytes(), 8192 + 4096 + 100);
        let data = std::fs::read(&p).unwrap();
        let (s, e) = bmap.byte_span(&bmap.ranges[2]);
        assert_eq!(bmap.ranges[2].sha256, <[u8; 32]>::from(Sha256::digest(&data[s as usize..e as usize])));

        let xml = bmap.to_xml();
        assert!(xml.contains("<Range chksum=\""));
        assert!(xml.contains("> 0-1 </Range>") && xml.contains("> 4 </Range>"));
        assert_eq!(Bmap::from_xml(&xml).unwrap(), bmap);

        let tampered = xml.replacen("> 4 </Range>", "> 5 </Range>", 1);
        assert!(matches!(Bmap::from_xml(&tampered), Err(BmapError::FileChecksumMismatch)));
        let v1 = xml.replacen("version=\"2.0\"", "version=\"1.4\"", 1);
        assert!(matches!(Bmap::from_xml(&v1), Err(BmapError::UnsupportedVersion(_))));
    }

    #[test]
    fn finds_bmap_next_to_image() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img.zst");
        assert_eq!(find_bmap(&img), None);
        std::fs::write(dir.path().join("disk.bmap"), "").unwrap();
        assert_eq!(find_bmap(&img), Some(dir.path().join("disk.bmap")));
        std::fs::write(dir.path().join("disk.img.bmap"), "").unwrap();
        assert_eq!(find_bmap(&img), Some(dir.path().join("disk.img.bmap")));
        assert_eq!(find_bmap(&dir.path().join("disk.img")), Some(dir.path().join("disk.img.bmap")));
    }
}
