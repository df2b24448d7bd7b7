//! Releases: `admin publish-release` catalogues a signed bundle, `Welcome`
//! offers it to older edges only, `FetchRelease` hands it out in chunks that
//! reassemble to the published bytes, and `admin edges` shows each Hello.

use std::path::Path;

use central_sim::admin::{self, AdminCommand};
use central_sim::db::Db;
use central_sim::fixture::demo_ids as ids;
use central_sim::server::answer;
use central_sim::state;
use edge_image::{BundleBuilder, ImageName, Version};
use proto::central::{CentralError, CentralToEdge, EdgeToCentral, RunningImage, MAX_RELEASE_CHUNK};
use proto::domain::FacilityId;
use sha2::{Digest, Sha256};

fn demo() -> FacilityId {
    FacilityId::new(ids::FACILITY)
}

/// A signed bundle of about `rootfs_len` bytes for `version`.
fn bundle(dir: &Path, version: &str, rootfs_len: usize, seed: u8) -> std::path::PathBuf {
    let key_path = dir.join(format!("key-{version}-{seed}"));
    edge_image::generate_signing_key(&key_path).unwrap();
    let key = edge_image::load_signing_key(&key_path).unwrap();
    let rootfs = dir.join(format!("rootfs-{version}-{seed}"));
    let bytes: Vec<u8> = (0..rootfs_len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    std::fs::write(&rootfs, bytes).unwrap();
    std::fs::write(dir.join("vmlinuz"), b"kernel").unwrap();
    std::fs::write(dir.join("initrd.img"), b"initrd").unwrap();
    let out = dir.join(format!("{version}-{seed}.febundle"));
    BundleBuilder::new(version.parse::<Version>().unwrap(), "facility-edge-aarch64")
        .image(ImageName::Rootfs, &rootfs)
        .image(ImageName::Kernel, &dir.join("vmlinuz"))
        .image(ImageName::Initrd, &dir.join("initrd.img"))
        .write(&out, &key)
        .unwrap();
    out
}

fn hello(version: Option<&str>) -> EdgeToCentral {
    EdgeToCentral::Hello {
        facility: demo(),
        agent_version: "test".into(),
        running: version.map(|v| RunningImage {
            version: v.into(),
            slot: "a".into(),
            on_trial: false,
            last_update_failure: Some("update to 0.1.5 in slot b failed its boot checks".into()),
        }),
    }
}

fn offered(answer: CentralToEdge) -> Option<String> {
    match answer {
        CentralToEdge::Welcome { release, .. } => release.map(|r| r.version),
        other => panic!("expected Welcome, got {other:?}"),
    }
}

#[test]
fn publish_offer_fetch_and_report() {
    let dir = tempfile::tempdir().unwrap();
    state::init(dir.path(), None).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path()).unwrap();
    let peer = Some(ids::FACILITY);

    assert_eq!(offered(answer(&mut db, peer, &hello(Some("0.1.0")))), None, "nothing published yet");

    // 2.5 MiB of rootfs: three chunks, the last one short.
    let b020 = bundle(work.path(), "0.2.0", 5 << 19, 1);
    let published = admin::run(&mut db, &AdminCommand::PublishRelease { bundle: b020.clone() }).unwrap();
    assert_eq!(published["release"]["version"], "0.2.0");
    assert_eq!(published["release"]["new"], true);
    let original = std::fs::read(&b020).unwrap();
    assert!(dir.path().join("releases/0.2.0.febundle").exists());

    // The same bytes again change nothing; other bytes under 0.2.0 are refused.
    let again = admin::run(&mut db, &AdminCommand::PublishRelease { bundle: b020.clone() }).unwrap();
    assert_eq!(again["release"]["new"], false);
    let other = bundle(work.path(), "0.2.0", 1000, 2);
    let err = admin::run(&mut db, &AdminCommand::PublishRelease { bundle: other }).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    // Not a bundle at all.
    std::fs::write(work.path().join("junk"), b"junk").unwrap();
    let err =
        admin::run(&mut db, &AdminCommand::PublishRelease { bundle: work.path().join("junk") }).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");

    // Offered to older edges only, and to none that did not say what it runs.
    let welcome = answer(&mut db, peer, &hello(Some("0.1.0")));
    let CentralToEdge::Welcome { release: Some(offer), .. } = welcome else { panic!("{welcome:?}") };
    assert_eq!(offer.version, "0.2.0");
    assert_eq!(offer.size, original.len() as u64);
    assert_eq!(offer.sha256, <[u8; 32]>::from(Sha256::digest(&original)));
    assert_eq!(offered(answer(&mut db, peer, &hello(Some("0.2.0")))), None);
    assert_eq!(offered(answer(&mut db, peer, &hello(Some("0.3.0")))), None);
    assert_eq!(offered(answer(&mut db, peer, &hello(None))), None);

    // A newer publish becomes the offer; an older one never replaces it.
    let b030 = bundle(work.path(), "0.3.0", 1000, 3);
    admin::run(&mut db, &AdminCommand::PublishRelease { bundle: b030 }).unwrap();
    let b011 = bundle(work.path(), "0.1.1", 1000, 4);
    admin::run(&mut db, &AdminCommand::PublishRelease { bundle: b011 }).unwrap();
    assert_eq!(offered(answer(&mut db, peer, &hello(Some("0.1.0")))).as_deref(), Some("0.3.0"));

    // Chunks reassemble to the published bytes; a request over the cap is cut to it.
    let mut got = Vec::new();
    loop {
        let request = EdgeToCentral::FetchRelease {
            facility: demo(),
            version: "0.2.0".into(),
            offset: got.len() as u64,
            len: u32::MAX,
        };
        match answer(&mut db, peer, &request) {
            CentralToEdge::ReleaseChunk { version, offset, bytes } => {
                assert_eq!((version.as_str(), offset), ("0.2.0", got.len() as u64));
                assert!(bytes.len() <= MAX_RELEASE_CHUNK as usize);
                if bytes.is_empty() {
                    break;
                }
                got.extend(bytes);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, original);

    let unknown =
        EdgeToCentral::FetchRelease { facility: demo(), version: "9.9.9".into(), offset: 0, len: 10 };
    assert_eq!(
        answer(&mut db, peer, &unknown),
        CentralToEdge::Error(CentralError::UnknownRelease("9.9.9".into()))
    );
    let past = EdgeToCentral::FetchRelease {
        facility: demo(),
        version: "0.2.0".into(),
        offset: original.len() as u64 + 1,
        len: 10,
    };
    assert!(matches!(answer(&mut db, peer, &past), CentralToEdge::Error(CentralError::Malformed(_))));
    // Another facility's certificate cannot fetch through this facility.
    assert!(matches!(
        answer(&mut db, Some(ids::OTHER_FACILITY), &unknown),
        CentralToEdge::Error(CentralError::WrongFacility(_))
    ));

    // The last Hello is what `admin edges` shows.
    answer(&mut db, peer, &hello(Some("0.1.0")));
    let edges = admin::run(&mut db, &AdminCommand::Edges).unwrap();
    let edge = &edges["edges"][0];
    assert_eq!(edge["facility"], ids::FACILITY);
    assert_eq!(edge["version"], "0.1.0");
    assert_eq!(edge["slot"], "a");
    assert_eq!(edge["on_trial"], false);
    assert_eq!(edge["last_update_failure"], "update to 0.1.5 in slot b failed its boot checks");

    let releases = admin::run(&mut db, &AdminCommand::Releases).unwrap();
    let versions: Vec<_> =
        releases["releases"].as_array().unwrap().iter().map(|r| r["version"].clone()).collect();
    assert_eq!(versions, ["0.3.0", "0.2.0", "0.1.1"]);
}
