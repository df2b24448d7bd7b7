//! Bundle round trips: build from temp files, install into a temp "device" and ESP,
//! and every way a bundle can be bad.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use edge_image::bundle::{FORMAT, MAGIC};
use edge_image::slots::{plan_install, BootState, Slot};
use edge_image::{
    install, open_bundle, verify_bundle, BlockDecodeError, BundleBuilder, BundleError, ImageName, Manifest,
    SlotTarget, StoredBlock, Version,
};

const COMPAT: &str = "facility-edge-aarch64";
const BS: u32 = 64 * 1024;

/// Deterministic bytes that are not all alike, so a misplaced block shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Like [`pattern`] but from an 8-letter alphabet: about 3 bits per byte, so zstd
/// roughly halves it, and still no two blocks alike.
fn text(len: usize, seed: u64) -> Vec<u8> {
    pattern(len, seed).into_iter().map(|b| b"etaoinsr"[usize::from(b & 7)]).collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
    rootfs: Vec<u8>,
    kernel: Vec<u8>,
    initrd: Vec<u8>,
    bundle: PathBuf,
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn fixture(version: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // Not a multiple of the block size, to exercise the short last block. Even
    // blocks are random (stored raw), odd ones compress, so both paths run.
    let mut rootfs = pattern(3 * 1024 * 1024 + 12_345, 1);
    for (i, block) in rootfs.chunks_mut(BS as usize).enumerate() {
        if i % 2 == 1 {
            block.copy_from_slice(&text(block.len(), 100 + i as u64));
        }
    }
    let kernel = text(200_000, 2);
    let initrd = pattern(70_001, 3);
    let p = |n: &str| dir.path().join(n);
    fs::write(p("rootfs.img"), &rootfs).unwrap();
    fs::write(p("vmlinuz"), &kernel).unwrap();
    fs::write(p("initrd.img"), &initrd).unwrap();
    let key = key(7);
    let bundle = p("update.febundle");
    let m = BundleBuilder::new(version.parse().unwrap(), COMPAT)
        .block_size(BS)
        .image(ImageName::Kernel, &p("vmlinuz"))
        .image(ImageName::Initrd, &p("initrd.img"))
        .image(ImageName::Rootfs, &p("rootfs.img"))
        .write(&bundle, &key)
        .unwrap();
    assert_eq!(m.images[0].name, ImageName::Rootfs, "rootfs is laid out first");
    Fixture { dir, key, rootfs, kernel, initrd, bundle }
}

fn target(dir: &Path, slot: Slot) -> SlotTarget {
    let esp = dir.join("esp");
    fs::create_dir_all(esp.join("loader/entries")).unwrap();
    let dev = dir.join(format!("root-{slot}.dev"));
    if !dev.exists() {
        fs::write(&dev, vec![0xEEu8; 4 * 1024 * 1024]).unwrap();
    }
    SlotTarget {
        rootfs_device: dev,
        esp_dir: esp,
        slot,
        compatible: COMPAT.into(),
        kernel_options: "console=ttyAMA0 quiet".into(),
    }
}

fn entries(esp: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(esp.join("loader/entries"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn running_a(version: &str) -> BootState {
    BootState::from(Slot::A, ["facility-edge-a.conf", "facility-edge-b+0-3.conf"], version.parse().unwrap())
}

#[test]
fn install_writes_rootfs_esp_files_and_entry_last() {
    let fx = fixture("0.2.0");
    let t = target(fx.dir.path(), Slot::B);
    // A failed earlier try of slot b, and slot a's entry that must stay.
    fs::write(t.esp_dir.join("loader/entries/facility-edge-b+0-3.conf"), "old").unwrap();
    fs::write(t.esp_dir.join("loader/entries/facility-edge-a.conf"), "keep").unwrap();
    fs::write(t.esp_dir.join("loader/entries/other-os.conf"), "keep").unwrap();

    let plan = plan_install(&running_a("0.1.0"), "0.2.0".parse().unwrap()).unwrap();
    let mut last = (0, 0);
    let done =
        install(&fx.bundle, &[key(9).verifying_key(), fx.key.verifying_key()], &plan, &t, &mut |d, n| {
            assert!(d >= last.0);
            last = (d, n)
        })
        .unwrap();
    let total = (fx.rootfs.len() + fx.kernel.len() + fx.initrd.len()) as u64;
    assert_eq!(last, (total, total));
    assert_eq!(done.slot, Slot::B);
    assert_eq!(done.version, Version::new(0, 2, 0));

    let dev = fs::read(&t.rootfs_device).unwrap();
    assert_eq!(&dev[..fx.rootfs.len()], &fx.rootfs[..]);
    assert!(dev[fx.rootfs.len()..].iter().all(|b| *b == 0xEE), "bytes past the rootfs are untouched");
    assert_eq!(fs::read(t.esp_dir.join("slots/b/vmlinuz")).unwrap(), fx.kernel);
    assert_eq!(fs::read(t.esp_dir.join("slots/b/initrd.img")).unwrap(), fx.initrd);
    assert_eq!(
        entries(&t.esp_dir),
        ["facility-edge-a.conf", "facility-edge-b+3.conf", "other-os.conf"],
        "old b entry replaced, no temp files left"
    );
    let entry = fs::read_to_string(&done.entry_path).unwrap();
    assert!(entry.contains("version 0.2.0\n"));
    assert!(entry.contains("linux /slots/b/vmlinuz\n"));
    assert!(entry.contains("options root=PARTLABEL=root-b ro facility.slot=b console=ttyAMA0 quiet\n"));
    assert_eq!(fs::read_to_string(t.esp_dir.join("loader/entries/facility-edge-a.conf")).unwrap(), "keep");
    assert!(!fx.dir.path().join("esp/slots/b/.vmlinuz.tmp").exists());

    // What the agent shows afterwards, read back from the ESP.
    let state = edge_image::read_boot_state(&t.esp_dir, Slot::A, Version::new(0, 1, 0)).unwrap();
    assert_eq!(
        edge_image::report(&state).to_string(),
        "update to 0.2.0 in slot b waits for a reboot (3 tries); running 0.1.0 from slot a"
    );
    // While b is only pending (not yet booted), a newer bundle may overwrite it.
    assert_eq!(plan_install(&state, "0.2.1".parse().unwrap()).unwrap().target(), Slot::B);
}

fn flip_byte(path: &Path, offset_from_end: u64) {
    let mut b = fs::read(path).unwrap();
    let i = b.len() - offset_from_end as usize;
    b[i] ^= 0x40;
    fs::write(path, b).unwrap();
}

#[test]
fn corrupt_block_stops_install_with_no_entry_for_the_slot() {
    let fx = fixture("0.2.0");
    let t = target(fx.dir.path(), Slot::B);
    fs::write(t.esp_dir.join("loader/entries/facility-edge-b.conf"), "old confirmed b").unwrap();
    // Payload is rootfs, kernel, initrd: this byte is in the rootfs, block 40 of
    // 64 KiB, stored raw.
    let hdr = open_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap();
    assert_eq!(hdr.manifest.images[0].block_stored[40], StoredBlock::Raw(BS));
    let mut b = fs::read(&fx.bundle).unwrap();
    b[(block_offset(&hdr.manifest, hdr.payload_offset, 0, 40) + 5) as usize] ^= 1;
    fs::write(&fx.bundle, b).unwrap();
    // The header still verifies: corruption is only found while streaming.
    open_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap();

    let plan = plan_install(&running_a("0.1.0"), "0.2.0".parse().unwrap()).unwrap();
    let err = install(&fx.bundle, &[fx.key.verifying_key()], &plan, &t, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, BundleError::BlockHashMismatch { image: ImageName::Rootfs, block: 40 }), "{err}");
    assert_eq!(err.to_string(), "block 40 of rootfs: hash mismatch");
    assert!(
        entries(&t.esp_dir).iter().all(|e| !e.starts_with("facility-edge-b")),
        "{:?}",
        entries(&t.esp_dir)
    );
    // Blocks before the bad one were written; the bad one never was.
    let dev = fs::read(&t.rootfs_device).unwrap();
    let bad = 40 * BS as usize;
    assert_eq!(&dev[..bad], &fx.rootfs[..bad]);
    assert!(dev[bad..bad + BS as usize].iter().all(|b| *b == 0xEE));

    assert!(matches!(
        verify_bundle(&fx.bundle, &[fx.key.verifying_key()]),
        Err(BundleError::BlockHashMismatch { image: ImageName::Rootfs, block: 40 })
    ));
}

#[test]
fn corrupt_kernel_block_leaves_no_entry_and_no_kernel() {
    let fx = fixture("0.2.0");
    let t = target(fx.dir.path(), Slot::B);
    // Last byte of the payload is in the initrd.
    flip_byte(&fx.bundle, 1);
    let plan = plan_install(&running_a("0.1.0"), "0.2.0".parse().unwrap()).unwrap();
    let err = install(&fx.bundle, &[fx.key.verifying_key()], &plan, &t, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, BundleError::BlockHashMismatch { image: ImageName::Initrd, block: 1 }), "{err}");
    assert!(entries(&t.esp_dir).is_empty());
    assert!(!t.esp_dir.join("slots/b/initrd.img").exists());
}

#[test]
fn zero_signature_is_unsigned() {
    let fx = fixture("0.2.0");
    let hdr = open_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap();
    let mut b = fs::read(&fx.bundle).unwrap();
    let sig = (hdr.payload_offset - 64) as usize;
    b[sig..sig + 64].fill(0);
    fs::write(&fx.bundle, b).unwrap();
    assert!(matches!(open_bundle(&fx.bundle, &[fx.key.verifying_key()]), Err(BundleError::Unsigned)));
}

#[test]
fn other_key_is_untrusted_and_tampered_manifest_too() {
    let fx = fixture("0.2.0");
    let err = open_bundle(&fx.bundle, &[key(1).verifying_key(), key(2).verifying_key()]).unwrap_err();
    assert!(matches!(err, BundleError::UntrustedSignature { keys: 2 }), "{err}");
    assert!(matches!(open_bundle(&fx.bundle, &[]), Err(BundleError::NoTrustedKeys)));
    // Changing the version inside the signed manifest breaks the signature.
    let mut b = fs::read(&fx.bundle).unwrap();
    let pos = b.windows(7).position(|w| w == b"\"0.2.0\"").unwrap();
    b[pos + 1] = b'9';
    fs::write(&fx.bundle, b).unwrap();
    assert!(matches!(
        open_bundle(&fx.bundle, &[fx.key.verifying_key()]),
        Err(BundleError::UntrustedSignature { keys: 1 })
    ));
}

#[test]
fn truncated_bundle() {
    let fx = fixture("0.2.0");
    let b = fs::read(&fx.bundle).unwrap();
    let keys = [fx.key.verifying_key()];
    for len in [b.len() - 1, b.len() / 2, 300, 12, 5] {
        fs::write(&fx.bundle, &b[..len]).unwrap();
        let err = open_bundle(&fx.bundle, &keys).unwrap_err();
        assert!(matches!(err, BundleError::Truncated(_)), "len {len}: {err}");
    }
    let mut longer = b.clone();
    longer.push(0);
    fs::write(&fx.bundle, longer).unwrap();
    assert!(matches!(open_bundle(&fx.bundle, &keys), Err(BundleError::TrailingData { extra: 1 })));
}

#[test]
fn not_a_bundle_bad_format_and_huge_manifest() {
    let fx = fixture("0.2.0");
    let keys = [fx.key.verifying_key()];
    let p = fx.dir.path().join("x");
    fs::write(&p, b"\x7fELF not a bundle at all").unwrap();
    assert!(matches!(open_bundle(&p, &keys), Err(BundleError::NotABundle(_))));
    fs::write(&p, b"").unwrap();
    assert!(matches!(open_bundle(&p, &keys), Err(BundleError::NotABundle(_))));

    let b = fs::read(&fx.bundle).unwrap();
    assert_eq!(b[8], 2, "bundles are written in format 2");
    // Format 1 (raw blocks) never shipped and is not read; the message says what is.
    for old_or_new in [1, 3] {
        let mut other = b.clone();
        other[8] = old_or_new;
        fs::write(&p, other).unwrap();
        let err = open_bundle(&p, &keys).unwrap_err();
        assert!(matches!(err, BundleError::UnsupportedFormat { found } if found == old_or_new), "{err}");
        assert!(err.to_string().contains("reads only format 2, with zstd-compressed blocks"), "{err}");
        let err = edge_image::read_manifest_unverified(&p).unwrap_err();
        assert!(matches!(err, BundleError::UnsupportedFormat { .. }), "{err}");
    }

    let mut huge = b.clone();
    huge[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
    fs::write(&p, huge).unwrap();
    assert!(matches!(open_bundle(&p, &keys), Err(BundleError::ManifestTooLarge { len: u32::MAX })));
}

#[test]
fn install_refuses_running_slot_wrong_version_and_incompatible() {
    let fx = fixture("0.2.0");
    let keys = [fx.key.verifying_key()];
    let plan = plan_install(&running_a("0.1.0"), "0.2.0".parse().unwrap()).unwrap();
    let ta = target(fx.dir.path(), Slot::A);
    fs::write(ta.esp_dir.join("loader/entries/facility-edge-a.conf"), "running").unwrap();
    let before = fs::read(&ta.rootfs_device).unwrap();
    let err = install(&fx.bundle, &keys, &plan, &ta, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, BundleError::SlotMismatch { plan: Slot::B, target: Slot::A }), "{err}");
    assert_eq!(fs::read(&ta.rootfs_device).unwrap(), before);
    assert_eq!(entries(&ta.esp_dir), ["facility-edge-a.conf"], "running slot's entry untouched");

    let plan3 = plan_install(&running_a("0.1.0"), "0.3.0".parse().unwrap()).unwrap();
    let tb = target(fx.dir.path(), Slot::B);
    assert!(matches!(
        install(&fx.bundle, &keys, &plan3, &tb, &mut |_, _| {}),
        Err(BundleError::VersionMismatch { .. })
    ));
    let mut other_hw = tb.clone();
    other_hw.compatible = "facility-edge-x86_64".into();
    let err = install(&fx.bundle, &keys, &plan, &other_hw, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, BundleError::Incompatible { .. }), "{err}");
    assert_eq!(entries(&tb.esp_dir), ["facility-edge-a.conf"]);
}

/// Central labels a bundle without the box's keys: the version comes out
/// whatever key signed it, and non-bundles are still refused.
#[test]
fn manifest_reads_without_keys_but_refuses_garbage() {
    let fx = fixture("0.2.0");
    let m = edge_image::read_manifest_unverified(&fx.bundle).unwrap();
    assert_eq!(m.version, Version::new(0, 2, 0));
    assert_eq!(m.compatible, COMPAT);
    let p = fx.dir.path().join("x");
    fs::write(&p, b"\x7fELF not a bundle at all").unwrap();
    assert!(matches!(edge_image::read_manifest_unverified(&p), Err(BundleError::NotABundle(_))));
    let b = fs::read(&fx.bundle).unwrap();
    fs::write(&p, &b[..40]).unwrap();
    assert!(matches!(edge_image::read_manifest_unverified(&p), Err(BundleError::Truncated(_))));
}

/// Offset in the bundle file of block `block` of the `image`-th image.
fn block_offset(m: &Manifest, payload_offset: u64, image: usize, block: usize) -> u64 {
    let before: u64 = m.images[..image].iter().map(|i| i.stored_len()).sum();
    let within: u64 = m.images[image].block_stored[..block].iter().map(|b| u64::from(b.len())).sum();
    payload_offset + before + within
}

/// The stored bytes of every block, per image, cut out of the bundle by the manifest.
fn stored_blocks(bundle: &Path, key: &SigningKey) -> (Manifest, Vec<Vec<Vec<u8>>>) {
    let hdr = open_bundle(bundle, &[key.verifying_key()]).unwrap();
    let b = fs::read(bundle).unwrap();
    let mut at = hdr.payload_offset as usize;
    let mut images = Vec::new();
    for img in &hdr.manifest.images {
        let mut blocks = Vec::new();
        for s in &img.block_stored {
            blocks.push(b[at..at + s.len() as usize].to_vec());
            at += s.len() as usize;
        }
        images.push(blocks);
    }
    assert_eq!(at, b.len());
    (hdr.manifest, images)
}

/// What a buggy or malicious builder holding the release key could produce:
/// any manifest, signed, followed by any payload. Written by hand from the
/// documented layout rather than through the crate, so the crate's own checks
/// are what is tested.
fn write_signed(path: &Path, key: &SigningKey, m: &Manifest, payload: &[u8]) {
    use ed25519_dalek::Signer;
    let json = serde_json::to_vec(m).unwrap();
    let mut b = MAGIC.to_vec();
    b.push(FORMAT);
    b.extend_from_slice(&(json.len() as u32).to_be_bytes());
    b.extend_from_slice(&json);
    let sig = key.sign(&b);
    b.extend_from_slice(&sig.to_bytes());
    b.extend_from_slice(payload);
    fs::write(path, b).unwrap();
}

fn install_b(fx: &Fixture) -> (SlotTarget, Result<edge_image::Installed, BundleError>) {
    let t = target(fx.dir.path(), Slot::B);
    let plan = plan_install(&running_a("0.1.0"), "0.2.0".parse().unwrap()).unwrap();
    let r = install(&fx.bundle, &[fx.key.verifying_key()], &plan, &t, &mut |_, _| {});
    (t, r)
}

fn no_b_entry(t: &SlotTarget) {
    let e = entries(&t.esp_dir);
    assert!(e.iter().all(|e| !e.starts_with("facility-edge-b")), "{e:?}");
}

/// The device holds the rootfs up to `upto` bytes and nothing of ours after.
fn device_written_up_to(t: &SlotTarget, fx: &Fixture, upto: usize) {
    let dev = fs::read(&t.rootfs_device).unwrap();
    assert_eq!(&dev[..upto], &fx.rootfs[..upto]);
    assert!(dev[upto..].iter().all(|b| *b == 0xEE), "nothing written from byte {upto} on");
}

#[test]
fn compressible_blocks_shrink_and_random_ones_are_stored_raw() {
    let fx = fixture("0.2.0");
    let hdr = open_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap();
    let m = &hdr.manifest;
    let rootfs = &m.images[0];
    assert_eq!(rootfs.block_stored.len(), 49);
    for (i, s) in rootfs.block_stored.iter().enumerate() {
        let n = (fx.rootfs.len() - i * BS as usize).min(BS as usize) as u32;
        match (i % 2, s) {
            (0, StoredBlock::Raw(l)) => assert_eq!(*l, n),
            // 3 bits of entropy per byte: well under half after Huffman coding.
            (1, StoredBlock::Zstd(l)) => assert!(*l < n / 2, "block {i}: {l} of {n}"),
            _ => panic!("block {i} stored as {s:?}"),
        }
    }
    assert!(m.images[1].block_stored.iter().all(|s| matches!(s, StoredBlock::Zstd(_))), "kernel compresses");
    assert!(m.images[2].block_stored.iter().all(|s| matches!(s, StoredBlock::Raw(_))), "initrd does not");
    let file_len = fs::metadata(&fx.bundle).unwrap().len();
    assert_eq!(file_len, hdr.payload_offset + m.payload_len());
    assert_eq!(m.images_len(), (fx.rootfs.len() + fx.kernel.len() + fx.initrd.len()) as u64);
    assert!(m.payload_len() < m.images_len() * 8 / 10, "{} of {}", m.payload_len(), m.images_len());

    // An empty filesystem is mostly zeros: a 4 MiB one is a few hundred bytes.
    let zeros = fx.dir.path().join("zeros.img");
    fs::write(&zeros, vec![0u8; 4 << 20]).unwrap();
    let out = fx.dir.path().join("zeros.febundle");
    let m = BundleBuilder::new("0.2.0".parse().unwrap(), COMPAT)
        .image(ImageName::Rootfs, &zeros)
        .image(ImageName::Kernel, &fx.dir.path().join("vmlinuz"))
        .image(ImageName::Initrd, &fx.dir.path().join("initrd.img"))
        .write(&out, &fx.key)
        .unwrap();
    assert_eq!(m.block_size, 1 << 20);
    assert_eq!(m.images[0].block_stored.len(), 4);
    assert!(m.images[0].stored_len() < 1000, "{:?}", m.images[0].block_stored);
    verify_bundle(&out, &[fx.key.verifying_key()]).unwrap();
    assert!(!fx.dir.path().join("zeros.febundle.payload.tmp").exists(), "temp payload removed");
    assert!(!fx.dir.path().join("zeros.febundle.tmp").exists());
}

/// Real machine code, not a synthetic pattern: this test's own executable.
#[test]
fn a_real_binary_compresses() {
    let dir = tempfile::tempdir().unwrap();
    let exe = fs::read(std::env::current_exe().unwrap()).unwrap();
    let sample = &exe[..exe.len().min(8 << 20)];
    let p = |n: &str| dir.path().join(n);
    fs::write(p("rootfs"), sample).unwrap();
    fs::write(p("k"), b"k").unwrap();
    let m = edge_image::write_bundle(
        &p("b"),
        "0.2.0".parse().unwrap(),
        COMPAT,
        &[(ImageName::Rootfs, &p("rootfs")), (ImageName::Kernel, &p("k")), (ImageName::Initrd, &p("k"))],
        &key(7),
    )
    .unwrap();
    let ratio = m.payload_len() as f64 / m.images_len() as f64;
    println!("{} bytes of ELF stored in {} ({ratio:.2})", m.images_len(), m.payload_len());
    assert!(ratio < 0.6, "{ratio}");
    verify_bundle(&p("b"), &[key(7).verifying_key()]).unwrap();
}

#[test]
fn corrupt_compressed_block_is_refused_before_it_is_written() {
    let fx = fixture("0.2.0");
    let clean = fs::read(&fx.bundle).unwrap();
    let hdr = open_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap();
    let StoredBlock::Zstd(len) = hdr.manifest.images[0].block_stored[41] else { panic!("block 41 is zstd") };
    let at = block_offset(&hdr.manifest, hdr.payload_offset, 0, 41);
    // Frame header, block headers, literals, sequences and the last byte: each
    // flip must be caught, whether zstd notices or only the hash does.
    let mut seen_decode = false;
    for pos in [0, 4, 5, 9, u64::from(len) / 3, u64::from(len) / 2, u64::from(len) - 1] {
        let mut b = clean.clone();
        b[(at + pos) as usize] ^= 0x40;
        fs::write(&fx.bundle, b).unwrap();
        let _ = fs::remove_file(fx.dir.path().join("root-b.dev"));
        let (t, r) = install_b(&fx);
        let err = r.unwrap_err();
        match &err {
            BundleError::BlockHashMismatch { image: ImageName::Rootfs, block: 41 } => {}
            BundleError::BlockDecode { image: ImageName::Rootfs, block: 41, .. } => seen_decode = true,
            _ => panic!("flip at {pos}: {err}"),
        }
        assert!(err.to_string().starts_with("block 41 of rootfs: "), "{err}");
        no_b_entry(&t);
        device_written_up_to(&t, &fx, 41 * BS as usize);
    }
    assert!(seen_decode, "a broken frame header is a decode error");
}

#[test]
fn manifest_lying_about_stored_lengths_is_caught() {
    let fx = fixture("0.2.0");
    let (m, blocks) = stored_blocks(&fx.bundle, &fx.key);
    let payload: Vec<u8> = blocks.concat().concat();
    let StoredBlock::Zstd(l1) = m.images[0].block_stored[1] else { panic!("block 1 is zstd") };
    let StoredBlock::Zstd(l3) = m.images[0].block_stored[3] else { panic!("block 3 is zstd") };

    // One length off: the payload no longer adds up to the file.
    let mut lie = m.clone();
    lie.images[0].block_stored[1] = StoredBlock::Zstd(l1 + 1);
    write_signed(&fx.bundle, &fx.key, &lie, &payload);
    let (t, r) = install_b(&fx);
    assert!(matches!(r, Err(BundleError::Truncated(_))), "{:?}", r.err());
    no_b_entry(&t);
    device_written_up_to(&t, &fx, 0);

    // Two lies that cancel out: the total fits, the frame in block 1 does not.
    lie.images[0].block_stored[3] = StoredBlock::Zstd(l3 - 1);
    write_signed(&fx.bundle, &fx.key, &lie, &payload);
    open_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap();
    let (t, r) = install_b(&fx);
    let err = r.unwrap_err();
    assert!(
        matches!(
            &err,
            BundleError::BlockDecode {
                image: ImageName::Rootfs,
                block: 1,
                reason: BlockDecodeError::StoredLength { stored, frame },
            } if *stored == l1 + 1 && *frame == u64::from(l1)
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "block 1 of rootfs: the manifest stores {} bytes but the zstd frame in them is {l1} bytes",
            l1 + 1
        )
    );
    no_b_entry(&t);
    device_written_up_to(&t, &fx, BS as usize);

    // Too short: the frame is cut off.
    let mut lie = m.clone();
    lie.images[0].block_stored[1] = StoredBlock::Zstd(l1 - 1);
    lie.images[0].block_stored[3] = StoredBlock::Zstd(l3 + 1);
    write_signed(&fx.bundle, &fx.key, &lie, &payload);
    let (t, r) = install_b(&fx);
    let err = r.unwrap_err();
    assert!(
        matches!(
            &err,
            BundleError::BlockDecode {
                image: ImageName::Rootfs,
                block: 1,
                reason: BlockDecodeError::Corrupt(_)
            }
        ),
        "{err}"
    );
    no_b_entry(&t);

    // Claiming a compressed block is raw cannot even be signed into shape: raw
    // blocks are exactly as long as the block.
    let mut lie = m.clone();
    lie.images[0].block_stored[1] = StoredBlock::Raw(l1);
    write_signed(&fx.bundle, &fx.key, &lie, &payload);
    let err = open_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap_err();
    assert!(
        matches!(&err, BundleError::BadManifest(s) if s.contains("rootfs: block 1 of 65536 bytes")),
        "{err}"
    );
}

/// Replaces block `block` of the rootfs with `frame`, stored as zstd, and
/// re-signs: the signer's word is all there is, and the box must still hold.
fn with_rootfs_block(fx: &Fixture, block: usize, frame: &[u8]) {
    let (mut m, mut blocks) = stored_blocks(&fx.bundle, &fx.key);
    blocks[0][block] = frame.to_vec();
    m.images[0].block_stored[block] = StoredBlock::Zstd(frame.len() as u32);
    write_signed(&fx.bundle, &fx.key, &m, &blocks.concat().concat());
}

#[test]
fn block_decompressing_past_block_size_is_refused() {
    let fx = fixture("0.2.0");
    let clean = fs::read(&fx.bundle).unwrap();
    // 1 GiB of zeros in about 40 KiB would be the real attack; 128 KiB in a
    // 64 KiB block shows the bound as well.
    let bomb = zstd::bulk::compress(&vec![0u8; 2 * BS as usize], 1).unwrap();
    assert!(bomb.len() < 100);
    with_rootfs_block(&fx, 2, &bomb);
    let (t, r) = install_b(&fx);
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::BlockDecode {
                image: ImageName::Rootfs,
                block: 2,
                reason: BlockDecodeError::TooLarge { size, limit: BS },
            } if size == 2 * u64::from(BS)
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "block 2 of rootfs: decompresses to 131072 bytes, over the block size of 65536"
    );
    no_b_entry(&t);
    device_written_up_to(&t, &fx, 2 * BS as usize);

    // The same without a declared size: refused before decoding anything.
    let mut c = zstd::bulk::Compressor::new(1).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(false)).unwrap();
    let undeclared = c.compress(&vec![0u8; 2 * BS as usize]).unwrap();
    assert!(matches!(zstd::zstd_safe::get_frame_content_size(&undeclared), Ok(None)));
    fs::write(&fx.bundle, &clean).unwrap();
    with_rootfs_block(&fx, 2, &undeclared);
    let (t, r) = install_b(&fx);
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::BlockDecode {
                image: ImageName::Rootfs,
                block: 2,
                reason: BlockDecodeError::NoContentSize
            }
        ),
        "{err}"
    );
    no_b_entry(&t);

    // Within block_size but not what the manifest implies: the short last block
    // (12345 bytes) replaced by a full one.
    fs::write(&fx.bundle, &clean).unwrap();
    let full = zstd::bulk::compress(&vec![7u8; BS as usize], 3).unwrap();
    with_rootfs_block(&fx, 48, &full);
    let err = verify_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::BlockDecode {
                image: ImageName::Rootfs,
                block: 48,
                reason: BlockDecodeError::Length { expected: 12_345, found: 65_536 }
            }
        ),
        "{err}"
    );
}
