//! Issue 6 over real processes on loopback: a contact's photo and VideoGram
//! go from central-sim through the edge's media cache to the tablet CLI,
//! byte for byte; they stay available with central stopped once the edge
//! has prefetched them; the kiosk shows the photo, decoded, from the
//! edge's cache; and another resident is refused them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use facility_tests::System;
use proto::messaging::MediaId;
use serde_json::Value;
use sha2::{Digest, Sha256};
use slint::Model;
use tablet_shell::kiosk::{Screen, UiEvent};
use tablet_shell::ui::driver::{Driver, QuicEdge};
use tablet_shell::vm::messages::MediaState;
use tablet_shell::vm::settings::Settings;

const PIN: &str = "1234";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../central-sim/fixtures/media").join(name)
}

/// Fetches `media` as `resident` into `out`; the CLI's last JSON line.
fn fetch(system: &System, resident: &str, media: u64, out: &Path) -> Value {
    let media = media.to_string();
    let out = out.to_str().expect("utf-8 temp path");
    system.tablet(resident, PIN, &["message", "media", "--media", &media, "--out", out]).last().clone()
}

/// Polls until the edge has prefetched `media` and the tablet gets it.
fn wait_fetched(system: &System, media: u64, out: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = fetch(system, "R1001", media, out);
        if answer.pointer("/ok/Media").is_some() {
            return answer;
        }
        assert_eq!(
            answer.pointer("/error/api/MediaNotDownloaded/media").and_then(Value::as_u64),
            Some(media),
            "only 'not downloaded yet' may come before the media: {answer}"
        );
        assert!(
            Instant::now() < deadline,
            "media {media} never reached the tablet: {answer}\n{}",
            system.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn photos_and_videograms_reach_the_tablet_and_stay_there_with_central_down() {
    let mut system = System::start();
    let photo = fixture("photo.png");
    let video = fixture("videogram.webm");
    let sent = system.central_admin(&[
        "send-mail",
        "--contact",
        "1",
        "--subject",
        "From the park",
        "--body",
        "A picture and a video of the kids.",
        "--attach-photo",
        photo.to_str().unwrap(),
        "--attach-videogram",
        video.to_str().unwrap(),
        "--videogram-secs",
        "2",
    ]);
    let attachments = sent
        .last()
        .pointer("/entity/Mail/message/attachments")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no attachments in {}", sent.stdout))
        .clone();
    let photo_id = attachments[0].pointer("/Photo").and_then(Value::as_u64).expect("photo id");
    let video_id = attachments[1].pointer("/VideoGram/media").and_then(Value::as_u64).expect("videogram id");

    // The message reaches the edge through the change feed first.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let inbox = system.tablet("R1001", PIN, &["messages", "inbox"]);
        if inbox.stdout.contains("From the park") {
            break;
        }
        assert!(Instant::now() < deadline, "the message never synced: {}", inbox.stdout);
        std::thread::sleep(Duration::from_millis(200));
    }

    let out = system.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let expected = [(photo_id, &photo, "image/png"), (video_id, &video, "video/webm")];
    for (id, source, mime) in expected {
        let file = out.join(format!("{id}"));
        let answer = wait_fetched(&system, id, &file);
        let central = std::fs::read(source).unwrap();
        let fetched = std::fs::read(&file).unwrap();
        assert_eq!(sha256_hex(&fetched), sha256_hex(&central), "media {id} differs from central's blob");
        let reply = &answer["ok"]["Media"];
        assert_eq!(reply["sha256"], sha256_hex(&central), "{answer}");
        assert_eq!(reply["size"], central.len() as u64, "{answer}");
        assert_eq!(reply["content_type"], mime, "{answer}");
    }
    assert!(
        std::fs::metadata(&video).unwrap().len() > 48 * 1024,
        "the VideoGram spans several tablet chunks"
    );
    // IT staff see the cache in the metrics.
    let held = std::fs::metadata(&photo).unwrap().len() + std::fs::metadata(&video).unwrap().len();
    assert_eq!(system.metric("edge_media_cached"), Some(2.0));
    assert_eq!(system.metric("edge_media_cache_bytes"), Some(held as f64));
    assert_eq!(system.metric("edge_media_downloaded_total"), Some(2.0));
    assert_eq!(system.metric("edge_media_download_failures_total"), Some(0.0));

    // With central gone the cache still serves both.
    system.stop_central();
    for (id, source, _) in expected {
        let file = out.join(format!("offline-{id}"));
        let answer = fetch(&system, "R1001", id, &file);
        assert!(answer.pointer("/ok/Media").is_some(), "{answer}");
        assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(source).unwrap());
    }

    // Another resident of the same facility is refused, as for media that
    // does not exist.
    let other = out.join("other");
    for id in [photo_id, video_id, 999_999] {
        let answer = fetch(&system, "R1004", id, &other);
        assert_eq!(
            answer.pointer("/error/api/UnknownMedia/media").and_then(Value::as_u64),
            Some(id),
            "{answer}"
        );
    }
    assert!(!other.exists(), "nothing is written for a refusal");

    // The kiosk (Slint's testing backend, no display) opens the message and
    // shows the photo from the edge's cache, central still down.
    i_slint_backend_testing::init_no_event_loop();
    let bundle = net::Bundle::load(&system.provision("T-0100")).unwrap();
    let edge = QuicEdge::connect(system.tablet_addr, &bundle, "localhost").unwrap();
    let mut kiosk = Driver::new(edge, Settings::default(), jiff::Timestamp::now()).unwrap();
    kiosk.set_id_prefix("R");
    kiosk.log_in_with_keypad(&[1, 0, 0, 1], &[1, 2, 3, 4]);
    kiosk.ui(UiEvent::Navigate(Screen::Mailbox));
    let row = kiosk
        .kiosk
        .borrow()
        .mailbox()
        .and_then(|m| m.rows.iter().position(|r| r.subject == "From the park"))
        .expect("the message is in the kiosk's inbox");
    kiosk.ui(UiEvent::OpenMessage(row));
    let state = |id: u64| kiosk.kiosk.borrow().media_state(MediaId(id));
    assert_eq!(state(photo_id), Some(MediaState::Ready));
    assert_eq!(state(video_id), Some(MediaState::Ready), "the VideoGram is here to play");
    let cards: Vec<_> = kiosk.window.get_message().attachments.iter().collect();
    let card = cards.iter().find(|a| a.has_picture).unwrap_or_else(|| panic!("no photo shown: {cards:?}"));
    let size = card.picture.size();
    assert_eq!((size.width, size.height), (160, 120), "the fixture photo, decoded");
    assert_eq!(card.state_text, "");
}
