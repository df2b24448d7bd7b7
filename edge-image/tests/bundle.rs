//! Bundle round trips: build from temp files, install into a temp "device" and ESP,
//! and every way a bundle can be bad.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use edge_image::slots::{plan_install, BootState, Slot};
use edge_image::{
    install, open_bundle, verify_bundle, BundleBuilder, BundleError, ImageName, SlotTarget, Version,
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
    // Not a multiple of the block size, to exercise the short last block.
    let rootfs = pattern(3 * 1024 * 1024 + 12_345, 1);
    let kernel = pattern(200_000, 2);
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
    // Payload is rootfs, kernel, initrd: this byte is in the rootfs, block 40 of 64 KiB.
    let hdr = open_bundle(&fx.bundle, &[fx.key.verifying_key()]).unwrap();
    let mut b = fs::read(&fx.bundle).unwrap();
    b[(hdr.payload_offset + 40 * u64::from(BS) + 5) as usize] ^= 1;
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
    let mut v2 = b.clone();
    v2[8] = 2;
    fs::write(&p, v2).unwrap();
    assert!(matches!(open_bundle(&p, &keys), Err(BundleError::UnsupportedFormat { found: 2 })));

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
