//! Update delivery end to end on the host: central-sim publishes a signed
//! bundle, the edge downloads it (killed once mid-download, it resumes from
//! its partial file), and `edge-agent update install` installs it into slot
//! b of a fake ESP and a regular file standing in for the partition. A
//! bundle signed with another key is refused and moved aside, and each
//! Hello's report shows in `central-sim admin edges`.

use std::path::Path;
use std::time::Duration;

use edge_image::{BundleBuilder, ImageName, Version};
use facility_tests::{wait_until, System};
use serde_json::Value;

const ROOTFS_LEN: usize = 12 << 20;
/// Throttles the download so that a kill lands mid-way: about 3 s in all.
const RATE: u64 = 4 << 20;

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

fn bundle(dir: &Path, version: &str, key: &Path, rootfs: &[u8]) -> std::path::PathBuf {
    let signing = edge_image::load_signing_key(key).unwrap();
    std::fs::write(dir.join("rootfs.img"), rootfs).unwrap();
    std::fs::write(dir.join("vmlinuz"), pattern(100_000, 2)).unwrap();
    std::fs::write(dir.join("initrd.img"), pattern(50_000, 3)).unwrap();
    let out = dir.join(format!("{version}.febundle"));
    BundleBuilder::new(version.parse::<Version>().unwrap(), "facility-edge-aarch64")
        .image(ImageName::Rootfs, &dir.join("rootfs.img"))
        .image(ImageName::Kernel, &dir.join("vmlinuz"))
        .image(ImageName::Initrd, &dir.join("initrd.img"))
        .write(&out, &signing)
        .unwrap();
    out
}

fn edge_report(system: &System) -> Value {
    let out = system.central_admin(&["edges"]);
    out.last()["edges"].as_array().and_then(|e| e.first().cloned()).unwrap_or(Value::Null)
}

#[test]
fn a_published_release_is_downloaded_resumed_installed_and_a_foreign_one_refused() {
    let fake = tempfile::tempdir().unwrap();
    let f = fake.path();
    let cmdline = f.join("cmdline");
    std::fs::write(&cmdline, "root=PARTLABEL=root-a ro facility.slot=a console=ttyAMA0\n").unwrap();
    let esp = f.join("esp");
    std::fs::create_dir_all(esp.join("loader/entries")).unwrap();
    std::fs::write(esp.join("loader/entries/facility-edge-a.conf"), "version 0.1.0\n").unwrap();
    std::fs::write(f.join("root-b.img"), vec![0u8; ROOTFS_LEN + 4096]).unwrap();
    let key = f.join("release.key");
    edge_image::generate_signing_key(&key).unwrap();
    let other_key = f.join("other.key");
    edge_image::generate_signing_key(&other_key).unwrap();
    let rootfs = pattern(ROOTFS_LEN, 1);
    let build = f.join("build");
    std::fs::create_dir_all(&build).unwrap();
    let b020 = bundle(&build, "0.2.0", &key, &rootfs);
    let b030 = bundle(&build, "0.3.0", &other_key, &pattern(100_000, 9));
    let size = std::fs::metadata(&b020).unwrap().len();

    let mut system = System::start_with_edge_config(&format!(
        "image_version = \"0.1.0\"\nesp_dir = {esp:?}\ncmdline_path = {cmdline:?}\n\
         update_check_secs = 1\nupdate_max_bytes_per_sec = {RATE}\n"
    ));
    // Hello reports what the box runs before anything is published.
    wait_until("the edge's report at central", Duration::from_secs(30), || {
        edge_report(&system)["version"] == "0.1.0"
    });
    let report = edge_report(&system);
    assert_eq!((&report["slot"], &report["on_trial"]), (&Value::from("a"), &Value::from(false)), "{report}");
    assert_eq!(report["last_update_failure"], Value::Null);

    system.central_admin(&["publish-release", b020.to_str().unwrap()]);
    let updates = system.edge_dir.join("updates");
    let partial = updates.join("0.2.0.partial");
    wait_until("a partial download", Duration::from_secs(30), || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() >= 2 << 20)
    });
    system.kill_edge();
    let had = std::fs::metadata(&partial).unwrap().len();
    assert!(had > 0 && had < size, "killed mid-download: {had} of {size}");

    system.start_edge();
    let staged = updates.join("staged.bundle");
    wait_until("the staged bundle", Duration::from_secs(60), || staged.exists());
    assert!(!partial.exists());
    assert_eq!(std::fs::read(&staged).unwrap(), std::fs::read(&b020).unwrap());
    // Resumed, not restarted: this process fetched only what was missing.
    assert_eq!(
        system.metric("edge_update_bytes_downloaded"),
        Some((size - had) as f64),
        "{}",
        system.edge_log()
    );
    assert_eq!(system.metric("edge_update_phase"), Some(2.0));

    let pattern_arg = f.join("root-{slot}.img");
    let install = |bundle: &Path| {
        system.edge_cli(&[
            "update",
            "install",
            "--bundle",
            bundle.to_str().unwrap(),
            "--esp",
            esp.to_str().unwrap(),
            "--keys",
            f.join("release.key.pub").to_str().unwrap(),
            "--device-pattern",
            pattern_arg.to_str().unwrap(),
            "--cmdline",
            cmdline.to_str().unwrap(),
        ])
    };
    let out = install(&staged);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    assert!(esp.join("loader/entries/facility-edge-b+3.conf").exists());
    let entry = std::fs::read_to_string(esp.join("loader/entries/facility-edge-b+3.conf")).unwrap();
    assert!(entry.contains("options root=PARTLABEL=root-b ro facility.slot=b console=ttyAMA0"), "{entry}");
    assert_eq!(&std::fs::read(f.join("root-b.img")).unwrap()[..ROOTFS_LEN], &rootfs[..]);
    assert!(!staged.exists(), "the installed bundle is removed");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(updates.join("last-install.json")).unwrap()).unwrap();
    assert_eq!(
        (&record["ok"], &record["version"], &record["slot"]),
        (&true.into(), &"0.2.0".into(), &"b".into())
    );

    let status = system.edge_cli(&["update", "status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("update to 0.2.0 in slot b waits for a reboot"), "{}", status.stdout);

    // Signed with a key the box does not trust: refused, set aside, reported.
    std::fs::copy(&b030, &staged).unwrap();
    let out = install(&staged);
    assert_eq!(out.code, 1, "{} {}", out.stdout, out.stderr);
    assert!(out.stderr.contains("signature"), "{}", out.stderr);
    assert!(!staged.exists());
    assert!(updates.join("rejected-0.3.0.bundle").exists());
    assert_eq!(
        std::fs::read_to_string(esp.join("loader/entries/facility-edge-b+3.conf")).unwrap(),
        entry,
        "the refused bundle touched nothing"
    );
    wait_until("the refusal reported to central", Duration::from_secs(30), || {
        edge_report(&system)["last_update_failure"].as_str().is_some_and(|f| f.contains("0.3.0"))
    });
    // Neither the installed nor the refused release is fetched again.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!staged.exists() && !partial.exists(), "{}", system.edge_log());
}
