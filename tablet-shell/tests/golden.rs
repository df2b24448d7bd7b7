//! Golden screenshots: every screen drawn by Slint's software renderer with
//! the embedded DejaVu font, compared with the approved picture in
//! `tests/golden/` within a small tolerance (anti-aliasing may differ by a
//! shade between machines). `UPDATE_GOLDENS=1 cargo test -p tablet-shell
//! --test golden` re-approves them; review the pictures before committing.
//!
//! The large-text pictures also check that nothing is clipped: every
//! labelled element must lie inside the window's width.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::call::CallState;
use support::{call_update, labelled, log_in, now, CannedEdge};
use tablet_shell::kiosk::{ContactAction, Screen, UiEvent, VideoGramCommand, VideoGramEvent};
use tablet_shell::ui::driver::Driver;
use tablet_shell::ui::screenshot::{self, Picture};
use tablet_shell::vm::settings::Settings;
use tablet_shell::vm::Lang;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
/// A pixel differs when a channel is off by more than this.
const CHANNEL_TOLERANCE: u8 = 24;
/// A picture matches when at most this share of its pixels differ.
const PIXEL_TOLERANCE: f64 = 0.004;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

fn failure_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("golden-failures")
}

struct Checker {
    window: std::rc::Rc<slint::platform::software_renderer::MinimalSoftwareWindow>,
    update: bool,
    failures: Vec<String>,
    checked: usize,
}

impl Checker {
    fn check(&mut self, name: &str) {
        let picture = screenshot::capture(&self.window);
        let golden = golden_dir().join(format!("{name}.png"));
        self.checked += 1;
        if self.update {
            picture.save_png(&golden).expect("writing a golden picture");
            return;
        }
        let approved = match Picture::load_png(&golden) {
            Ok(approved) => approved,
            Err(e) => {
                self.fail(name, &picture, format!("no approved picture ({e}); run with UPDATE_GOLDENS=1"));
                return;
            }
        };
        let differing = picture.difference(&approved, CHANNEL_TOLERANCE);
        if differing > PIXEL_TOLERANCE {
            self.fail(name, &picture, format!("{:.2} % of pixels differ", differing * 100.0));
        }
    }

    fn fail(&mut self, name: &str, picture: &Picture, why: String) {
        let dir = failure_dir();
        let _ = std::fs::create_dir_all(&dir);
        let actual = dir.join(format!("{name}.png"));
        let _ = picture.save_png(&actual);
        self.failures.push(format!("{name}: {why} (actual picture: {})", actual.display()));
    }
}

/// Every labelled element lies inside the window's width: nothing is cut
/// off at the side (long texts wrap; lists scroll vertically).
fn assert_nothing_clipped(driver: &Driver<CannedEdge>, what: &str) {
    let width = WIDTH as f32;
    for element in labelled(driver) {
        let position = element.absolute_position();
        let size = element.size();
        let label = element.accessible_label().unwrap_or_default();
        assert!(
            position.x >= -0.5 && position.x + size.width <= width + 0.5,
            "{what}: {label:?} spans x {}..{} outside the {width}px window",
            position.x,
            position.x + size.width
        );
    }
}

#[test]
fn screens_match_their_approved_pictures() {
    let window = screenshot::install(WIDTH, HEIGHT).expect("the headless platform installs");
    let update = std::env::var_os("UPDATE_GOLDENS").is_some_and(|v| v != "0");
    let mut checker = Checker { window, update, failures: Vec::new(), checked: 0 };

    // English, normal text.
    let mut d = Driver::new(CannedEdge::default(), Settings::default(), now()).expect("window");
    checker.check("01-login");
    log_in(&mut d, "1234");
    checker.check("02-home");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    checker.check("03-contacts");
    d.ui(UiEvent::Navigate(Screen::Mailbox));
    checker.check("04-mailbox");
    d.ui(UiEvent::OpenMessage(0));
    d.ui(UiEvent::PlayAttachment);
    // No player runs here: its report of the position is handed in as the runtime would.
    let play = match d.videogram_commands.as_slice() {
        [VideoGramCommand::Play { play, .. }] => *play,
        other => panic!("expected one Play, got {other:?}"),
    };
    d.videogram(VideoGramEvent::Position { play, ms: 12_000 });
    checker.check("05-message-videogram");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::Message });
    d.ui(UiEvent::ComposeSubject("Sunday visit".into()));
    d.ui(UiEvent::ComposeBody("Hi Mom, thank you for the card. See you on Sunday!".into()));
    checker.check("06-compose");
    d.ui(UiEvent::ComposeOpenPicker);
    checker.check("07-compose-ecard-picker");
    d.ui(UiEvent::ComposeClosePicker);
    d.ui(UiEvent::Navigate(Screen::Stamps));
    d.ui(UiEvent::StampsBuy(1));
    checker.check("08-stamps-confirm");
    d.ui(UiEvent::StampsConfirm);
    checker.check("09-stamps-bought");
    d.ui(UiEvent::Navigate(Screen::Settings));
    checker.check("10-settings");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::VideoCall });
    d.edge.events.push(call_update(CallState::Connected { limit_secs: 900 }));
    d.pump();
    d.advance(Duration::from_secs(845));
    checker.check("11-call-last-minute");
    d.edge.events.push(call_update(CallState::Ended { reason: proto::call::CallEndReason::DidNotAnswer }));
    d.pump();
    checker.check("12-call-did-not-answer");
    drop(d);

    // Offline with a lockdown, in Spanish.
    let edge = CannedEdge {
        offline: true,
        lockdown: Some(proto::domain::LockdownScope::Facility),
        ..CannedEdge::default()
    };
    let mut d =
        Driver::new(edge, Settings { lang: Lang::Spanish, large_text: false }, now()).expect("window");
    checker.check("13-login-es");
    d.log_in_with_keypad(&[1, 0, 0, 1], &[1, 2, 3, 4]);
    checker.check("14-home-es-offline-lockdown");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    checker.check("15-contacts-es");
    drop(d);

    // Large text: the same screens reflow, nothing is cut off.
    let mut d = Driver::new(CannedEdge::default(), Settings { lang: Lang::English, large_text: true }, now())
        .expect("window");
    assert_nothing_clipped(&d, "login, large text");
    checker.check("16-login-large");
    log_in(&mut d, "1234");
    for (screen, name) in [
        (Screen::Home, "17-home-large"),
        (Screen::Contacts, "18-contacts-large"),
        (Screen::Mailbox, "19-mailbox-large"),
        (Screen::Stamps, "20-stamps-large"),
        (Screen::Settings, "21-settings-large"),
    ] {
        d.ui(UiEvent::Navigate(screen));
        assert_nothing_clipped(&d, name);
        checker.check(name);
    }

    drop(d);

    // The longest words of the login screen, its language buttons included.
    let d = Driver::new(CannedEdge::default(), Settings { lang: Lang::Spanish, large_text: true }, now())
        .expect("window");
    assert_nothing_clipped(&d, "login, Spanish, large text");
    checker.check("22-login-es-large");
    drop(d);

    // A photo that arrived, shown in its card; the VideoGram not on the edge yet.
    let edge = CannedEdge {
        with_photo: true,
        media: vec![(support::PHOTO, proto::messaging::MediaType::Png, support::PHOTO_PNG.to_vec())],
        ..CannedEdge::default()
    };
    let mut d = Driver::new(edge, Settings::default(), now()).expect("window");
    log_in(&mut d, "1234");
    d.ui(UiEvent::Navigate(Screen::Mailbox));
    d.ui(UiEvent::OpenMessage(0));
    checker.check("23-message-photo");

    assert!(checker.checked >= 8);
    assert!(checker.failures.is_empty(), "golden screenshots differ:\n{}", checker.failures.join("\n"));
}
