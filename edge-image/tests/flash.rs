//! Flashing sparse images (raw and zstd) into regular files standing in for disks.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use edge_image::{create_bmap, prepare_flash, sums, verify_mapped, Bmap, FlashError, SumsError};

const MIB: u64 = 1 << 20;

/// A 4 MiB image with data at 0..10 KiB, 1 MiB+5..1 MiB+9000, a written zero block
/// at 2 MiB, and 3 MiB..3 MiB+4096; holes elsewhere.
fn sparse_image(dir: &Path) -> (PathBuf, Vec<u8>) {
    let p = dir.join("disk.img");
    let mut f = File::create(&p).unwrap();
    let mut expected = vec![0u8; 4 * MIB as usize];
    let mut put = |f: &mut File, off: u64, data: &[u8]| {
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(data).unwrap();
        expected[off as usize..off as usize + data.len()].copy_from_slice(data);
    };
    put(&mut f, 0, &(0..10 * 1024).map(|i| (i % 251) as u8 | 1).collect::<Vec<_>>());
    put(&mut f, MIB + 5, &[0xAB; 8995]);
    put(&mut f, 2 * MIB, &[0; 4096]);
    put(&mut f, 3 * MIB, &[0xCD; 4096]);
    f.set_len(4 * MIB).unwrap();
    drop(f);
    (p, expected)
}

fn prefilled_target(dir: &Path) -> PathBuf {
    let t = dir.join("target.disk");
    fs::write(&t, vec![0x5Au8; 5 * MIB as usize]).unwrap();
    t
}

fn check_flashed(target: &Path, expected: &[u8], bmap: &Bmap) {
    let got = fs::read(target).unwrap();
    let mut mapped = vec![false; got.len()];
    for r in &bmap.ranges {
        let (s, e) = bmap.byte_span(r);
        mapped[s as usize..e as usize].fill(true);
        assert_eq!(&got[s as usize..e as usize], &expected[s as usize..e as usize]);
    }
    for (i, b) in got.iter().enumerate() {
        if !mapped[i] {
            assert_eq!(*b, 0x5A, "byte {i} is unmapped and must keep the target's old content");
        }
    }
}

#[test]
fn flash_raw_image_writes_only_mapped_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let (img, expected) = sparse_image(dir.path());
    let bmap = create_bmap(&img).unwrap();
    let spans: Vec<_> = bmap.ranges.iter().map(|r| (r.first, r.last)).collect();
    assert_eq!(spans, [(0, 2), (256, 258), (768, 768)]);
    fs::write(dir.path().join("disk.img.bmap"), bmap.to_xml()).unwrap();
    let target = prefilled_target(dir.path());

    let job = prepare_flash(&img, &target, None, None).unwrap();
    assert_eq!(job.bmap_path.as_deref(), Some(dir.path().join("disk.img.bmap").as_path()));
    assert!(job.target.kernel_name.is_none());
    let mut written = 0;
    job.run(&mut |d, _| written = d, &mut |_, _| {}).unwrap();
    assert_eq!(written, bmap.mapped_bytes());
    check_flashed(&target, &expected, &bmap);
}

#[test]
fn flash_zstd_image_with_bmap_named_after_the_stem() {
    let dir = tempfile::tempdir().unwrap();
    let (img, expected) = sparse_image(dir.path());
    let bmap = create_bmap(&img).unwrap();
    let zst = dir.path().join("disk.img.zst");
    zstd::stream::copy_encode(File::open(&img).unwrap(), File::create(&zst).unwrap(), 3).unwrap();
    fs::remove_file(&img).unwrap();
    fs::write(dir.path().join("disk.bmap"), bmap.to_xml()).unwrap();
    let target = prefilled_target(dir.path());

    let job = prepare_flash(&zst, &target, None, None).unwrap();
    job.run(&mut |_, _| {}, &mut |_, _| {}).unwrap();
    check_flashed(&target, &expected, &bmap);

    // Without any bmap a compressed image is refused before anything is written.
    fs::remove_file(dir.path().join("disk.bmap")).unwrap();
    assert!(matches!(prepare_flash(&zst, &target, None, None), Err(FlashError::NoBmap { .. })));
}

#[test]
fn raw_image_without_bmap_gets_one_made() {
    let dir = tempfile::tempdir().unwrap();
    let (img, expected) = sparse_image(dir.path());
    let target = prefilled_target(dir.path());
    let job = prepare_flash(&img, &target, None, None).unwrap();
    assert!(job.bmap_path.is_none());
    job.run(&mut |_, _| {}, &mut |_, _| {}).unwrap();
    check_flashed(&target, &expected, &job.bmap);
}

#[test]
fn verification_catches_a_corrupted_target() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = sparse_image(dir.path());
    let target = prefilled_target(dir.path());
    let job = prepare_flash(&img, &target, None, None).unwrap();
    job.run(&mut |_, _| {}, &mut |_, _| {}).unwrap();

    let f = OpenOptions::new().read(true).write(true).open(&target).unwrap();
    verify_mapped(&f, &job.bmap, &mut |_, _| {}).unwrap();
    // One flipped byte in the second range, as a failing medium would return it.
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[0x00], MIB + 100).unwrap();
    let err = verify_mapped(&f, &job.bmap, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, FlashError::VerifyMismatch { first: 256, last: 258 }), "{err}");
    // A target cut short is a mismatch too, not an I/O error.
    f.write_all_at(&[0xAB], MIB + 100).unwrap();
    verify_mapped(&f, &job.bmap, &mut |_, _| {}).unwrap();
    f.set_len(3 * MIB).unwrap();
    assert!(matches!(
        verify_mapped(&f, &job.bmap, &mut |_, _| {}),
        Err(FlashError::VerifyMismatch { first: 768, .. })
    ));
}

#[test]
fn image_not_matching_its_bmap_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = sparse_image(dir.path());
    fs::write(dir.path().join("disk.img.bmap"), create_bmap(&img).unwrap().to_xml()).unwrap();
    let mut f = OpenOptions::new().write(true).open(&img).unwrap();
    f.seek(SeekFrom::Start(3 * MIB + 7)).unwrap();
    f.write_all(&[0xCE]).unwrap();
    drop(f);
    let target = prefilled_target(dir.path());
    let job = prepare_flash(&img, &target, None, None).unwrap();
    let err = job.run(&mut |_, _| {}, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, FlashError::ImageChecksumMismatch { first: 768, last: 768 }), "{err}");
}

#[test]
fn sha256sums_next_to_the_image_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = sparse_image(dir.path());
    let bmap_path = dir.path().join("disk.img.bmap");
    fs::write(&bmap_path, create_bmap(&img).unwrap().to_xml()).unwrap();
    let key = SigningKey::from_bytes(&[5; 32]);
    sums::write_sums(&[img.clone(), bmap_path.clone()], Some(&key)).unwrap();
    let target = prefilled_target(dir.path());
    let vk = [key.verifying_key()];

    let job = prepare_flash(&img, &target, None, Some(&vk)).unwrap();
    assert!(job.sums_checked);
    let other = [SigningKey::from_bytes(&[6; 32]).verifying_key()];
    assert!(matches!(
        prepare_flash(&img, &target, None, Some(&other)),
        Err(FlashError::Sums(SumsError::UntrustedSignature(1)))
    ));

    // The image changes after the release was summed: refused, target untouched.
    let before = fs::read(&target).unwrap();
    let mut f = OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all(b"X").unwrap();
    drop(f);
    let err = prepare_flash(&img, &target, None, None).unwrap_err();
    assert!(matches!(&err, FlashError::Sums(SumsError::Mismatch(n)) if n == "disk.img"), "{err}");
    assert_eq!(fs::read(&target).unwrap(), before);
}

#[test]
fn missing_target_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = sparse_image(dir.path());
    let missing = dir.path().join("sdz");
    assert!(matches!(prepare_flash(&img, &missing, None, None), Err(FlashError::Io { .. })));
    assert!(!missing.exists());
}
