//! The kiosk's window under Slint's testing backend, against the canned
//! edge: touches go through the real elements (found by their accessible
//! labels), time is passed in by the test.

mod support;

use std::time::Duration;

use proto::call::{CallEndReason, CallState};
use proto::tablet::ApiError;
use support::{call_update, element, labels, log_in, now, press, CannedEdge};
use tablet_shell::kiosk::{ContactAction, Screen, UiEvent};
use tablet_shell::ui::driver::Driver;
use tablet_shell::vm::settings::Settings;
use tablet_shell::vm::Lang;

/// Reads one screen's title from the window.
type TitleOf = Box<dyn Fn(&Driver<CannedEdge>) -> String>;

fn driver(edge: CannedEdge, settings: Settings) -> Driver<CannedEdge> {
    i_slint_backend_testing::init_no_event_loop();
    Driver::new(edge, settings, now()).expect("the window opens")
}

fn advance(driver: &mut Driver<CannedEdge>, by: Duration) {
    i_slint_backend_testing::mock_elapsed_time(by);
    driver.advance(by);
}

#[test]
fn call_timer_turns_red_at_t_minus_60_and_the_call_ends_at_t() {
    let edge = CannedEdge {
        call: Some(proto::tablet::TabletResponse::CallStarted {
            call_id: 77,
            max_duration_secs: 300,
            warn_at_secs: 240,
            media: None,
        }),
        ..CannedEdge::default()
    };
    let mut d = driver(edge, Settings::default());
    log_in(&mut d, "1234");
    press(&mut d, "Contacts");
    press(&mut d, "Call Maria Alvarez");
    assert_eq!(d.kiosk.borrow().screen(), Screen::Call);
    assert!(matches!(d.edge.requests.last(), Some(proto::tablet::TabletRequest::StartCall { .. })));

    d.edge.events.push(call_update(CallState::Ringing));
    d.pump();
    assert_eq!(d.window.get_call().status_text, "Ringing…");
    d.edge.events.push(call_update(CallState::Connected { limit_secs: 300 }));
    d.pump();

    advance(&mut d, Duration::from_secs(239));
    let call = d.window.get_call();
    assert_eq!(call.timer_text, "3:59");
    assert_eq!(call.remaining_text, "1:01");
    assert_eq!(call.timer_tone, tablet_shell::ui::UiTone::Normal);
    assert!(call.warning_text.is_empty());
    assert!(!labels(&d).iter().any(|l| l == "1 minute left"), "no warning before T-60");

    advance(&mut d, Duration::from_secs(1));
    let call = d.window.get_call();
    assert_eq!(call.timer_text, "4:00");
    assert_eq!(call.timer_tone, tablet_shell::ui::UiTone::Alert, "red at T-60");
    assert_eq!(call.warning_text, "1 minute left", "the colour is never alone");
    element(&d, "1 minute left");

    // The edge is the clock: the shell shows the end when the edge cuts.
    advance(&mut d, Duration::from_secs(60));
    assert!(!d.window.get_call().is_over, "the tablet never ends a call by itself");
    d.edge.events.push(call_update(CallState::Ended { reason: CallEndReason::TimeLimit }));
    d.pump();
    let call = d.window.get_call();
    assert!(call.is_over);
    assert_eq!(call.timer_text, "5:00");
    element(&d, &call.end_text);
    assert!(call.end_text.contains("time limit"), "{}", call.end_text);
    press(&mut d, "Close");
    assert_eq!(d.kiosk.borrow().screen(), Screen::Contacts);
}

#[test]
fn unanswered_call_reads_did_not_answer_and_hang_up_ends_a_call() {
    let mut d = driver(CannedEdge::default(), Settings::default());
    log_in(&mut d, "1234");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::VideoCall });
    d.edge.events.push(call_update(CallState::Ended { reason: CallEndReason::DidNotAnswer }));
    d.pump();
    let end = d.window.get_call().end_text.to_string();
    assert!(end.contains("did not answer") && !end.contains("declin"), "{end}");

    press(&mut d, "Close");
    d.edge.call = Some(proto::tablet::TabletResponse::CallStarted {
        call_id: 77,
        max_duration_secs: 900,
        warn_at_secs: 840,
        media: None,
    });
    press(&mut d, "Call Maria Alvarez");
    d.edge.events.push(call_update(CallState::Connected { limit_secs: 900 }));
    d.pump();
    press(&mut d, "Hang up the call with Maria Alvarez");
    assert!(d
        .edge
        .requests
        .iter()
        .any(|r| matches!(r, proto::tablet::TabletRequest::HangUp { call_id: 77 })));
    assert!(d.window.get_call().is_over);
}

#[test]
fn a_locked_id_shows_its_countdown_but_the_next_resident_can_log_in() {
    let mut edge = CannedEdge::default();
    let until = now() + jiff::SignedDuration::from_mins(15);
    edge.login_refusals =
        vec![ApiError::BadCredentials { remaining_attempts: 1 }, ApiError::LockedOut { until }];
    let mut d = driver(edge, Settings::default());

    log_in(&mut d, "9999");
    assert_eq!(d.window.get_login().message, "Wrong ID or PIN. 1 attempt left.");
    element(&d, "Wrong ID or PIN. 1 attempt left.");
    for digit in "9999".chars() {
        press(&mut d, &format!("Digit {digit}"));
    }
    press(&mut d, "Log in");
    let message = d.window.get_login().message.to_string();
    assert_eq!(message, "This ID is locked. Try again in 15 minutes.");
    element(&d, "This ID is locked. Try again in 15 minutes.");
    assert_eq!(element(&d, "Next").accessible_enabled(), Some(false), "not that ID again");
    assert_eq!(element(&d, "Digit 1").accessible_enabled(), Some(true), "the keypad stays for others");

    advance(&mut d, Duration::from_secs(50));
    assert_eq!(d.window.get_login().message, "This ID is locked. Try again in 15 minutes.");
    assert_eq!(d.kiosk.borrow().screen(), Screen::Login);

    // The next resident: the first digit starts a new ID, and they log in.
    for label in
        ["Digit 2", "Digit 0", "Digit 0", "Digit 2", "Next", "Digit 5", "Digit 6", "Digit 7", "Digit 8"]
    {
        press(&mut d, label);
    }
    assert_eq!(d.window.get_login().id_text, "2002");
    assert_eq!(d.window.get_login().message, "");
    press(&mut d, "Log in");
    let logins: Vec<&str> = d
        .edge
        .requests
        .iter()
        .filter_map(|r| match r {
            proto::tablet::TabletRequest::Login { resident, .. } => Some(resident.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(logins, ["1001", "1001", "2002"]);
    assert_eq!(d.kiosk.borrow().screen(), Screen::Home);
}

#[test]
fn an_idle_login_screen_is_left_clean_for_the_next_resident() {
    let mut d = driver(CannedEdge::default(), Settings::default());
    press(&mut d, "Usar español");
    for digit in "100".chars() {
        press(&mut d, &format!("Dígito {digit}"));
    }
    advance(&mut d, Duration::from_secs(30));
    assert_eq!(d.window.get_login().id_text, "100");
    assert_eq!(d.window.get_login().title, "Iniciar sesión");

    advance(&mut d, Duration::from_secs(31));
    assert_eq!(d.window.get_login().id_text, "");
    assert_eq!(d.window.get_login().title, "Log in");
    element(&d, "Digit 1");
}

#[test]
fn every_screen_speaks_spanish() {
    let mut d = driver(CannedEdge::default(), Settings { lang: Lang::Spanish, large_text: false });
    assert_eq!(d.window.get_login().title, "Iniciar sesión");
    element(&d, "Dígito 1");
    d.edge.login_refusals.clear();
    d.log_in_with_keypad(&[1, 0, 0, 1], &[1, 2, 3, 4]);
    assert_eq!(d.kiosk.borrow().screen(), Screen::Home);
    let nav = d.window.get_nav();
    assert_eq!(
        (nav.home.as_str(), nav.contacts.as_str(), nav.logout.as_str()),
        ("Inicio", "Contactos", "Salir")
    );
    assert!(d.window.get_home().greeting.contains("Andre Martin"));
    assert_eq!(d.window.get_home().debit_label, "Su cuenta");

    let checks: [(Screen, TitleOf); 5] = [
        (Screen::Contacts, Box::new(|d| d.window.get_contacts().title.to_string())),
        (Screen::Mailbox, Box::new(|d| d.window.get_mailbox().title.to_string())),
        (Screen::Stamps, Box::new(|d| d.window.get_stamps().title.to_string())),
        (Screen::Settings, Box::new(|d| d.window.get_settings().title.to_string())),
        (Screen::Home, Box::new(|d| d.window.get_home().hours_title.to_string())),
    ];
    for (screen, title) in checks {
        d.ui(UiEvent::Navigate(screen));
        let english = Settings { lang: Lang::English, large_text: false };
        let spanish_title = title(&d);
        d.ui(UiEvent::ChooseLanguage(english.lang));
        let english_title = title(&d);
        d.ui(UiEvent::ChooseLanguage(Lang::Spanish));
        assert_ne!(spanish_title, english_title, "{screen:?} has the same title in both languages");
        assert!(!spanish_title.is_empty());
    }
    d.ui(UiEvent::Navigate(Screen::Mailbox));
    d.ui(UiEvent::OpenMessage(0));
    assert_eq!(d.kiosk.borrow().screen(), Screen::Message);
    assert_eq!(d.window.get_nav().home, "Inicio");
    assert!(d.window.get_message().attachments_title.len() > 1);
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::Message });
    assert_eq!(d.kiosk.borrow().screen(), Screen::Compose);
    let compose = d.window.get_compose();
    assert!(compose.counter.contains("Quedan") || compose.counter.contains("quedan"), "{}", compose.counter);
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::VoiceCall });
    assert_eq!(d.window.get_call().hang_up_label, "Colgar");
}

#[test]
fn offline_and_lockdown_banners_are_words_not_only_colour() {
    let edge = CannedEdge {
        offline: true,
        lockdown: Some(proto::domain::LockdownScope::Facility),
        ..CannedEdge::default()
    };
    let mut d = driver(edge, Settings::default());
    log_in(&mut d, "1234");
    let offline = d.window.get_offline();
    assert!(offline.visible);
    assert!(offline.text.contains("12 minutes"), "{}", offline.text);
    element(&d, &offline.text);
    let lockdown = d.window.get_lockdown();
    assert!(lockdown.visible && !lockdown.text.is_empty());
    element(&d, &lockdown.text);
}

#[test]
fn stamps_purchase_asks_for_confirmation_first() {
    let mut d = driver(CannedEdge::default(), Settings::default());
    log_in(&mut d, "1234");
    press(&mut d, "Stamps");
    let before = d.edge.requests.len();
    d.ui(UiEvent::StampsBuy(1));
    assert_eq!(d.edge.requests.len(), before, "nothing is bought before the confirmation");
    let stamps = d.window.get_stamps();
    assert!(stamps.confirm_open);
    assert!(
        stamps.confirm_text.contains("5 stamps") && stamps.confirm_text.contains("$2.25"),
        "{}",
        stamps.confirm_text
    );
    element(&d, &stamps.confirm_text);
    press(&mut d, stamps.confirm_label.as_str());
    assert!(d.edge.requests.iter().any(|r| matches!(r, proto::tablet::TabletRequest::BuyStamps { .. })));
    let stamps = d.window.get_stamps();
    assert!(!stamps.confirm_open);
    assert!(stamps.result.visible && !stamps.result.text.is_empty());
}

fn press_keys(d: &Driver<CannedEdge>, keys: &[slint::platform::Key]) {
    use slint::platform::WindowEvent;
    use slint::ComponentHandle;
    for key in keys {
        d.window.window().dispatch_event(WindowEvent::KeyPressed { text: (*key).into() });
    }
    for key in keys.iter().rev() {
        d.window.window().dispatch_event(WindowEvent::KeyReleased { text: (*key).into() });
    }
}

#[test]
fn ctrl_alt_backspace_goes_straight_back_to_login_from_anywhere() {
    use slint::platform::Key;
    let mut d = driver(CannedEdge::default(), Settings::default());
    log_in(&mut d, "1234");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::Message });
    d.ui(UiEvent::ComposeBody("half a message".into()));
    assert_eq!(d.kiosk.borrow().screen(), Screen::Compose);

    press_keys(&d, &[Key::Backspace]);
    d.pump();
    assert_eq!(d.kiosk.borrow().screen(), Screen::Compose, "Backspace alone does nothing here");
    press_keys(&d, &[Key::Control, Key::Alt, Key::Backspace]);
    d.pump();
    assert_eq!(d.kiosk.borrow().screen(), Screen::Login);
    assert!(
        d.edge.requests.contains(&proto::tablet::TabletRequest::Logout),
        "the session is ended at the edge"
    );
    assert!(d.window.get_login().id_text.is_empty(), "nothing of the last resident is left on screen");
}

#[test]
fn every_control_has_a_label_and_a_role() {
    use i_slint_backend_testing::{AccessibleRole, ElementQuery};
    let mut d = driver(CannedEdge::default(), Settings::default());
    let mut screens = vec![("login", Vec::new())];
    log_in(&mut d, "1234");
    for (name, screen) in [
        ("home", Screen::Home),
        ("contacts", Screen::Contacts),
        ("mailbox", Screen::Mailbox),
        ("stamps", Screen::Stamps),
        ("settings", Screen::Settings),
    ] {
        d.ui(UiEvent::Navigate(screen));
        let unlabelled: Vec<String> = ElementQuery::from_root(&d.window)
            .match_descendants()
            .match_predicate(|e| {
                matches!(e.accessible_role(), Some(AccessibleRole::Button | AccessibleRole::TextInput))
                    && e.accessible_label().is_none_or(|l| l.trim().is_empty())
            })
            .find_all()
            .iter()
            .map(|e| format!("{:?} {:?}", e.type_name(), e.id()))
            .collect();
        screens.push((name, unlabelled));
    }
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::Message });
    let buttons = ElementQuery::from_root(&d.window)
        .match_descendants()
        .match_accessible_role(AccessibleRole::Button)
        .find_all();
    assert!(buttons.len() >= 8, "compose has its buttons");
    for (name, unlabelled) in screens {
        assert!(unlabelled.is_empty(), "{name}: controls without an accessible label: {unlabelled:?}");
    }
}

#[test]
fn a_call_with_media_starts_the_media_leg_and_its_end_stops_it() {
    use tablet_shell::kiosk::MediaCommand;
    let (media, edge) = media_call_edge();
    let mut d = driver(edge, Settings::default());
    log_in(&mut d, "1234");
    assert!(d.kiosk.borrow_mut().take_media_commands().is_empty());
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::VideoCall });
    assert_eq!(
        d.kiosk.borrow_mut().take_media_commands(),
        vec![MediaCommand::Start { media, kind: proto::domain::CallKind::Video }]
    );
    d.edge.events.push(call_update(CallState::Ringing));
    d.pump();
    assert!(d.kiosk.borrow_mut().take_media_commands().is_empty(), "nothing to receive while it rings");
    d.edge.events.push(call_update(CallState::Connected { limit_secs: 900 }));
    d.pump();
    assert_eq!(d.kiosk.borrow_mut().take_media_commands(), vec![MediaCommand::ContactJoined]);
    d.edge.events.push(call_update(CallState::Warned { remaining_secs: 60 }));
    d.pump();
    assert!(d.kiosk.borrow_mut().take_media_commands().is_empty(), "nothing new while the call runs");
    d.edge.events.push(call_update(CallState::Ended { reason: CallEndReason::Lockdown }));
    d.pump();
    assert_eq!(d.kiosk.borrow_mut().take_media_commands(), vec![MediaCommand::Stop]);
}

/// An edge that places call 77 with media.
fn media_call_edge() -> (proto::call::CallMedia, CannedEdge) {
    let media = proto::call::CallMedia {
        publish: "facility/F/call/77/resident".into(),
        subscribe: "facility/F/call/77/contact".into(),
    };
    let edge = CannedEdge {
        call: Some(proto::tablet::TabletResponse::CallStarted {
            call_id: 77,
            max_duration_secs: 900,
            warn_at_secs: 840,
            media: Some(media.clone()),
        }),
        ..CannedEdge::default()
    };
    (media, edge)
}

/// A media call placed through [`media_call_edge`], its `Start` already
/// taken.
fn media_call_started() -> Driver<CannedEdge> {
    let (_, edge) = media_call_edge();
    let mut d = driver(edge, Settings::default());
    log_in(&mut d, "1234");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::VideoCall });
    let started = d.kiosk.borrow_mut().take_media_commands();
    assert!(matches!(started.as_slice(), [tablet_shell::kiosk::MediaCommand::Start { .. }]), "{started:?}");
    d
}

#[test]
fn an_unanswered_media_call_never_joins_the_contact() {
    use tablet_shell::kiosk::MediaCommand;
    let mut d = media_call_started();
    d.edge.events.push(call_update(CallState::Ringing));
    d.edge.events.push(call_update(CallState::Ended { reason: CallEndReason::DidNotAnswer }));
    d.pump();
    assert_eq!(d.kiosk.borrow_mut().take_media_commands(), vec![MediaCommand::Stop]);
}

#[test]
fn a_warning_that_overtakes_connected_joins_the_contact_once() {
    use tablet_shell::kiosk::MediaCommand;
    let mut d = media_call_started();
    d.edge.events.push(call_update(CallState::Warned { remaining_secs: 60 }));
    d.pump();
    assert_eq!(d.kiosk.borrow_mut().take_media_commands(), vec![MediaCommand::ContactJoined]);
    d.edge.events.push(call_update(CallState::Connected { limit_secs: 900 }));
    d.pump();
    assert!(d.kiosk.borrow_mut().take_media_commands().is_empty());
}

#[test]
fn an_answer_that_overtakes_call_started_still_joins_the_contact() {
    use tablet_shell::kiosk::MediaCommand;
    let (media, edge) = media_call_edge();
    let mut d = driver(edge, Settings::default());
    log_in(&mut d, "1234");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    // The driver hands in events before answers: the update comes first.
    d.edge.events.push(call_update(CallState::Connected { limit_secs: 900 }));
    d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::VideoCall });
    assert_eq!(
        d.kiosk.borrow_mut().take_media_commands(),
        vec![
            MediaCommand::Start { media, kind: proto::domain::CallKind::Video },
            MediaCommand::ContactJoined
        ]
    );
}

fn text_scale(d: &Driver<CannedEdge>) -> f32 {
    use slint::ComponentHandle;
    d.window.global::<tablet_shell::ui::Theme>().get_text_scale()
}

#[test]
fn a_language_picked_at_login_lasts_the_session_and_every_exit_restores_the_facility_settings() {
    use slint::platform::Key;
    let facility = Settings { lang: Lang::English, large_text: false };
    let mut d = driver(CannedEdge::default(), facility);
    assert_eq!(
        element(&d, "Language").accessible_role(),
        Some(i_slint_backend_testing::AccessibleRole::Text)
    );
    assert_eq!(element(&d, "Use English").accessible_checked(), Some(true));
    assert_eq!(element(&d, "Usar español").accessible_checked(), Some(false));

    // Before logging in: the whole screen changes, the keypad included.
    press(&mut d, "Usar español");
    assert_eq!(d.window.get_login().title, "Iniciar sesión");
    element(&d, "Idioma");
    element(&d, "Dígito 1");
    assert_eq!(element(&d, "Usar español").accessible_checked(), Some(true));
    assert!(d.edge.requests.is_empty(), "choosing a language asks nothing of the edge");

    d.log_in_with_keypad(&[1, 0, 0, 1], &[1, 2, 3, 4]);
    assert_eq!(d.kiosk.borrow().screen(), Screen::Home);
    assert_eq!(d.window.get_nav().home, "Inicio", "the choice carries into the session");
    press(&mut d, "Ajustes");
    press(&mut d, "Texto grande");
    assert!(text_scale(&d) > 1.0);

    press(&mut d, "Salir");
    assert_eq!(d.kiosk.borrow().screen(), Screen::Login);
    assert_eq!(d.window.get_login().title, "Log in", "the next resident gets the facility's language");
    assert_eq!(text_scale(&d), 1.0, "and its text size");
    assert_eq!(element(&d, "Use English").accessible_checked(), Some(true));

    // The same after Ctrl+Alt+Backspace.
    press(&mut d, "Usar español");
    d.log_in_with_keypad(&[1, 0, 0, 1], &[1, 2, 3, 4]);
    d.ui(UiEvent::ToggleLargeText);
    assert_eq!((d.kiosk.borrow().lang(), text_scale(&d) > 1.0), (Lang::Spanish, true));
    press_keys(&d, &[Key::Control, Key::Alt, Key::Backspace]);
    d.pump();
    assert_eq!(d.kiosk.borrow().screen(), Screen::Login);
    assert_eq!(d.window.get_login().title, "Log in");
    assert_eq!(text_scale(&d), 1.0);

    // And when the edge ends the session: its reason is told in the facility's words.
    press(&mut d, "Usar español");
    d.log_in_with_keypad(&[1, 0, 0, 1], &[1, 2, 3, 4]);
    d.edge.events.push(proto::tablet::ServerEvent::SessionEnded {
        reason: proto::tablet::SessionEndReason::LoggedInElsewhere,
    });
    d.pump();
    assert_eq!(d.kiosk.borrow().screen(), Screen::Login);
    assert_eq!(d.window.get_login().title, "Log in");
    assert_eq!(d.window.get_login().message, "You logged in on another tablet, so this one was logged out.");
}

fn media_call(kind: proto::domain::CallKind) -> Driver<CannedEdge> {
    let (_, edge) = media_call_edge();
    let mut d = driver(edge, Settings::default());
    log_in(&mut d, "1234");
    d.ui(UiEvent::Navigate(Screen::Contacts));
    let action = match kind {
        proto::domain::CallKind::Video => ContactAction::VideoCall,
        proto::domain::CallKind::Voice => ContactAction::VoiceCall,
    };
    d.ui(UiEvent::ContactAction { row: 0, action });
    d.edge.events.push(call_update(CallState::Connected { limit_secs: 900 }));
    d.pump();
    d
}

/// A 320x180 picture of one colour, as the media leg's preview hands over.
fn picture(rgba: [u8; 4]) -> Vec<u8> {
    rgba.repeat(320 * 180)
}

#[test]
fn our_camera_shows_in_the_self_view_box_of_a_video_call() {
    use tablet_shell::ui::{show_call_picture, CallPicture};
    let d = media_call(proto::domain::CallKind::Video);
    assert_eq!(d.window.get_self_frame().size().width, 0, "empty before the camera's first picture");

    let shown = show_call_picture(
        &d.kiosk.borrow(),
        &d.window,
        CallPicture::SelfView,
        &picture([200, 0, 0, 255]),
        320,
        180,
    );
    assert!(shown);
    let frame = d.window.get_self_frame().size();
    assert_eq!((frame.width, frame.height), (320, 180));
    assert_eq!(d.window.get_remote_frame().size().width, 0, "our camera is not taken for the contact's");

    // The box that shows it is on screen, in the corner of the contact's video.
    let self_box = element(&d, "Your camera");
    let remote_box = element(&d, "Video of Maria Alvarez");
    assert_eq!((self_box.size().width, self_box.size().height), (240.0, 135.0));
    let (s, r) = (self_box.absolute_position(), remote_box.absolute_position());
    assert!(s.x > r.x && s.y > r.y, "{s:?} inside {r:?}");
    assert!(s.x + 240.0 <= r.x + remote_box.size().width && s.y + 135.0 <= r.y + remote_box.size().height);

    // The contact's pictures still go to the big box.
    assert!(show_call_picture(&d.kiosk.borrow(), &d.window, CallPicture::Remote, &picture([0; 4]), 320, 180));
    assert_eq!(d.window.get_remote_frame().size().width, 320);
}

#[test]
fn a_picture_after_the_call_ended_is_dropped() {
    use tablet_shell::ui::{show_call_picture, CallPicture};
    let mut d = media_call(proto::domain::CallKind::Video);
    d.edge.events.push(call_update(CallState::Ended { reason: CallEndReason::ContactHungUp }));
    d.pump();
    assert!(d.window.get_call().is_over);
    let shown = show_call_picture(
        &d.kiosk.borrow(),
        &d.window,
        CallPicture::SelfView,
        &picture([200, 0, 0, 255]),
        320,
        180,
    );
    assert!(!shown);
    assert_eq!(d.window.get_self_frame().size().width, 0);
}

#[test]
fn a_voice_call_has_no_self_view() {
    use tablet_shell::ui::{show_call_picture, CallPicture};
    let d = media_call(proto::domain::CallKind::Voice);
    assert!(!d.window.get_call().video);
    assert!(!labels(&d).iter().any(|l| l == "Your camera"), "no self-view box: {:?}", labels(&d));
    let shown = show_call_picture(
        &d.kiosk.borrow(),
        &d.window,
        CallPicture::SelfView,
        &picture([200, 0, 0, 255]),
        320,
        180,
    );
    assert!(!shown, "a stray picture in a voice call is not shown");
    assert_eq!(d.window.get_self_frame().size().width, 0);
}

/// Opens the birthday message (the mailbox's first row).
fn open_birthday_message(d: &mut Driver<CannedEdge>) {
    log_in(d, "1234");
    d.ui(UiEvent::Navigate(Screen::Mailbox));
    d.ui(UiEvent::OpenMessage(0));
    assert_eq!(d.kiosk.borrow().screen(), Screen::Message);
}

#[test]
fn a_photo_that_arrived_is_shown_in_its_card() {
    use support::{PHOTO, PHOTO_PNG};
    let mut edge = CannedEdge { with_photo: true, ..CannedEdge::default() };
    edge.media.push((PHOTO, proto::messaging::MediaType::Png, PHOTO_PNG.to_vec()));
    let mut d = driver(edge, Settings::default());
    open_birthday_message(&mut d);
    let view = d.window.get_message();
    let cards: Vec<_> = slint::Model::iter(&view.attachments).collect();
    let photo = cards.iter().find(|a| a.label == "Photo").expect("a photo card");
    assert!(photo.has_picture, "{photo:?}");
    let size = photo.picture.size();
    assert_eq!((size.width, size.height), (160, 120), "the 160x120 fixture, not scaled up");
    assert_eq!(photo.state_text, "", "no words once it is here");
    // The picture is an element on screen, named for screen readers.
    let shown = support::labelled(&d)
        .into_iter()
        .filter(|e| e.accessible_label().is_some_and(|l| l == "Photo"))
        .any(|e| e.accessible_role() == Some(i_slint_backend_testing::AccessibleRole::Image));
    assert!(shown, "no image labelled Photo; on screen: {:?}", labels(&d));
}

#[test]
fn media_on_its_way_says_loading_and_media_not_on_the_edge_says_so() {
    let mut edge = CannedEdge { with_photo: true, ..CannedEdge::default() };
    edge.media.clear();
    let mut d = driver(edge, Settings::default());
    log_in(&mut d, "1234");
    d.ui(UiEvent::Navigate(Screen::Mailbox));
    // The message is answered; its media requests are left waiting.
    d.kiosk.borrow_mut().ui(UiEvent::OpenMessage(0));
    let sent = d.kiosk.borrow_mut().take_outgoing();
    for out in sent {
        if let proto::tablet::TabletRequest::ReadMessage { .. } = out.request {
            let reply = d.edge.answer(&out.request);
            d.kiosk.borrow_mut().reply(out.id, reply);
        }
    }
    let waiting = d.kiosk.borrow_mut().take_outgoing();
    assert!(waiting.iter().any(|o| matches!(o.request, proto::tablet::TabletRequest::Media { .. })));
    tablet_shell::ui::render(&d.kiosk.borrow(), &d.window);
    element(&d, "Loading…");
    let view = d.window.get_message();
    let videogram = slint::Model::iter(&view.attachments).find(|a| a.is_videogram).expect("VideoGram card");
    assert_eq!(videogram.state_text, "Loading…");
    assert!(!videogram.play_enabled, "nothing to play yet");

    // Asked again, the edge has neither: plain words in the resident's language.
    d.ui(UiEvent::ChooseLanguage(Lang::Spanish));
    d.ui(UiEvent::Navigate(Screen::Mailbox));
    d.ui(UiEvent::OpenMessage(0));
    element(&d, "Todavía no se ha descargado. Inténtalo más tarde.");
    assert!(!slint::Model::iter(&d.window.get_message().attachments).any(|a| a.has_picture));
}

#[test]
fn a_videogram_picture_shows_only_while_its_run_is_on_screen() {
    use tablet_shell::kiosk::{VideoGramCommand, VideoGramEvent};
    let mut d = driver(CannedEdge::default(), Settings::default());
    open_birthday_message(&mut d);
    press(&mut d, "Play");
    let play = match d.videogram_commands.as_slice() {
        [VideoGramCommand::Play { play, media }] if *media == support::VIDEOGRAM => *play,
        other => panic!("{other:?}"),
    };
    assert!(!d.window.get_videogram_showing(), "nothing shown before the first frame");
    let frame = vec![90u8; 4 * 4 * 4];
    d.videogram(VideoGramEvent::Position { play, ms: 1_000 });
    assert!(tablet_shell::ui::show_videogram_picture(&d.kiosk.borrow(), &d.window, play, &frame, 4, 4));
    assert!(d.window.get_videogram_showing());
    assert_eq!(d.window.get_message().progress_label, "0:01 / 0:30");
    assert_eq!(d.window.get_message().play_label, "Pause");
    // Another run's picture is not this one's.
    assert!(!tablet_shell::ui::show_videogram_picture(&d.kiosk.borrow(), &d.window, play + 1, &frame, 4, 4));

    press(&mut d, "Back");
    assert_eq!(d.videogram_commands.last(), Some(&VideoGramCommand::Stop));
    assert!(!tablet_shell::ui::show_videogram_picture(&d.kiosk.borrow(), &d.window, play, &frame, 4, 4));
}
