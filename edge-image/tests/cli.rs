//! The facility-flash binary end to end: keygen, bundle create/inspect, sums, flash.

use std::fs;
use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_facility-flash")).args(args).output().unwrap()
}

#[test]
fn keygen_bundle_sums_and_flash() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    assert!(run(&["keygen", &d("release.key")]).status.success());
    assert!(!run(&["keygen", &d("release.key")]).status.success(), "keygen must not overwrite");
    fs::write(d("vmlinuz"), vec![1u8; 5000]).unwrap();
    fs::write(d("initrd.img"), vec![2u8; 7000]).unwrap();
    fs::write(d("rootfs.img"), vec![3u8; 100_000]).unwrap();
    let out = run(&[
        "bundle",
        "create",
        "--key",
        &d("release.key"),
        "--version",
        "0.2.0",
        "--kernel",
        &d("vmlinuz"),
        "--initrd",
        &d("initrd.img"),
        "--rootfs",
        &d("rootfs.img"),
        "--block-size",
        "4096",
        "-o",
        &d("u.febundle"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["bundle", "inspect", &d("u.febundle"), "--keys", &d("release.key.pub"), "--full"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["version"], "0.2.0");
    assert_eq!(manifest["compatible"], "facility-edge-aarch64");

    // Wrong key: refused with a message naming the problem.
    assert!(run(&["keygen", &d("other.key")]).status.success());
    let out = run(&["bundle", "inspect", &d("u.febundle"), "--keys", &d("other.key.pub")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));

    // Release: sums signed, then flash with the release key and --yes.
    let img = d("disk.img");
    fs::write(&img, [vec![9u8; 8192], vec![0u8; 8192], vec![7u8; 100]].concat()).unwrap();
    assert!(run(&["bmap", "create", &img]).status.success());
    assert!(run(&["sums", "sign", "--key", &d("release.key"), &img, &d("disk.img.bmap")]).status.success());
    let out = run(&["sums", "verify", dir.path().to_str().unwrap(), "--release-key", &d("release.key.pub")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    fs::write(d("target"), vec![0xFFu8; 20_000]).unwrap();
    let out = run(&[&img, &d("target"), "--yes", "--release-key", &d("release.key.pub")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = fs::read(d("target")).unwrap();
    assert_eq!(&t[..8192], &[9u8; 8192][..]);
    assert_eq!(&t[8192..16384], &[0xFFu8; 8192][..], "zero block is unmapped, not written");
    assert_eq!(&t[16384..16484], &[7u8; 100][..]);

    // Without --yes and no "yes" on stdin: nothing is written.
    fs::write(d("target2"), vec![0xFFu8; 20_000]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facility-flash"))
        .args([&img, &d("target2")])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(fs::read(d("target2")).unwrap(), vec![0xFFu8; 20_000]);
}

#[test]
fn a_kit_for_the_other_kind_of_device_is_refused_before_the_disk_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let tablet_kit = dir.path().join("tablet-kit");
    fs::create_dir_all(&tablet_kit).unwrap();
    fs::write(tablet_kit.join("device.pem"), "pem").unwrap();
    fs::write(tablet_kit.join("kiosk.env"), "EDGE=10.0.2.2:7443\nID_PREFIX=R\nLANG_DEFAULT=en\n").unwrap();
    let edge_kit = dir.path().join("edge-kit");
    fs::create_dir_all(&edge_kit).unwrap();
    fs::write(edge_kit.join("edge.toml"), "").unwrap();
    fs::write(edge_kit.join("uplink.pem"), "pem").unwrap();

    for (image, kit, kit_device) in [
        ("facility-edge-0.2.0.img", &tablet_kit, "a tablet's"),
        ("facility-tablet-0.2.0.img", &edge_kit, "an edge box's"),
    ] {
        fs::write(d(image), [vec![9u8; 8192], vec![7u8; 100]].concat()).unwrap();
        fs::write(d("target"), vec![0xFFu8; 20_000]).unwrap();
        let out = run(&[&d(image), &d("target"), "--yes", "--kit", kit.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{image} with {kit:?} was flashed");
        assert!(stderr.contains(kit_device) && stderr.contains("is the image of"), "{stderr}");
        assert_eq!(fs::read(d("target")).unwrap(), vec![0xFFu8; 20_000], "{image}: the disk was written");
    }
}
