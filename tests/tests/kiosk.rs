//! The Slint kiosk against a real edge-agent: the tablet's own window and
//! kiosk controller (Slint's testing backend, no display), connected over
//! QUIC to an edge synced from central-sim, walked screen by screen through
//! its buttons as a resident would, with what the window shows checked
//! against the demo fixture and the edge's answers.
//!
//! Slint's testing backend is set up once per process, so this file has a
//! single test that walks every screen in turn.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use facility_tests::System;
use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use serde_json::Value;
use slint::{ComponentHandle, Model};
use tablet_shell::kiosk::{Screen as KioskScreen, UiEvent};
use tablet_shell::ui::driver::{Driver, QuicEdge};
use tablet_shell::ui::Theme;
use tablet_shell::vm::call::CallPhase;
use tablet_shell::vm::settings::Settings;

type Kiosk = Driver<QuicEdge>;

const RESIDENT: &str = "R1001";
/// Every demo resident's PIN.
const PIN: &str = "1234";

/// The demo data central-sim is seeded with.
struct Fixture {
    facility: Value,
    resident: Value,
    contacts: Vec<Value>,
    mail: Vec<Value>,
    packages: Vec<Value>,
    stamps: Vec<Value>,
}

impl Fixture {
    fn load() -> Fixture {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../central-sim/fixtures/demo.json");
        let all: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let f = &all["facilities"][0];
        let of_resident = |key: &str| -> Vec<Value> {
            array(&f[key]).into_iter().filter(|v| v["resident"] == RESIDENT).collect()
        };
        Fixture {
            facility: f["facility"].clone(),
            resident: array(&f["residents"]).into_iter().find(|r| r["id"] == RESIDENT).expect("resident"),
            contacts: of_resident("contacts"),
            mail: array(&f["mail"]).into_iter().filter(|m| m["message"]["resident"] == RESIDENT).collect(),
            packages: array(&f["stamp_packages"]),
            stamps: of_resident("stamp_counts"),
        }
    }

    fn contact(&self, pred: impl Fn(&Value) -> bool) -> &Value {
        self.contacts.iter().find(|c| pred(c)).expect("a fixture contact of that kind")
    }

    fn contact_name(&self, id: &Value) -> String {
        self.contact(|c| &c["id"] == id)["name"].as_str().unwrap().to_string()
    }

    fn mail(&self, direction: &str) -> Vec<&Value> {
        self.mail.iter().map(|m| &m["message"]).filter(|m| m["direction"] == direction).collect()
    }
}

fn array(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Cents as the kiosk shows money (the fixture's amounts are below $1,000).
fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// The window's buttons whose accessible label passes `pred`.
fn buttons(kiosk: &Kiosk, pred: impl Fn(&str) -> bool) -> Vec<ElementHandle> {
    use i_slint_backend_testing::ElementRoot;
    kiosk
        .window
        .root_element()
        .query_descendants()
        .match_accessible_role(AccessibleRole::Button)
        .find_all()
        .into_iter()
        .filter(|e| e.accessible_label().is_some_and(|l| pred(l.as_str())))
        .collect()
}

/// The one button labelled `label`.
fn button(kiosk: &Kiosk, label: &str) -> ElementHandle {
    let found: Vec<_> = ElementHandle::find_by_accessible_label(&kiosk.window, label)
        .filter(|e| e.accessible_role() == Some(AccessibleRole::Button))
        .collect();
    if found.len() != 1 {
        let all: Vec<_> = buttons(kiosk, |_| true).iter().filter_map(|e| e.accessible_label()).collect();
        panic!(
            "{} buttons labelled {label:?} on {:?}; buttons: {all:?}",
            found.len(),
            kiosk.window.get_screen()
        );
    }
    found.into_iter().next().unwrap()
}

/// Touches `element` (it must be enabled) and lets the edge answer.
fn touch(kiosk: &mut Kiosk, element: &ElementHandle) {
    assert_ne!(element.accessible_enabled(), Some(false), "{:?} is disabled", element.accessible_label());
    element.invoke_accessible_default_action();
    kiosk.pump();
}

/// Touches the button labelled `label`.
fn press(kiosk: &mut Kiosk, label: &str) {
    let element = button(kiosk, label);
    touch(kiosk, &element);
}

/// Types `digits` on the login keypad.
fn key_in(kiosk: &mut Kiosk, digits: &str) {
    for digit in digits.chars() {
        press(kiosk, &format!("Digit {digit}"));
    }
}

/// Edits the message body as the text field does: the property changes, then `edited` fires.
fn edit_body(kiosk: &mut Kiosk, body: &str) {
    kiosk.window.set_compose_body(body.into());
    kiosk.window.invoke_compose_body_edited(body.into());
    kiosk.pump();
}

/// The row of the contacts screen showing `name`.
fn contact_row(kiosk: &Kiosk, name: &str) -> usize {
    let rows = kiosk.window.get_contacts().rows;
    rows.iter().position(|r| r.name == name).unwrap_or_else(|| panic!("{name} not on the contacts screen"))
}

/// The screen showing: the window's and the kiosk's agree.
fn screen(kiosk: &Kiosk) -> KioskScreen {
    let screen = kiosk.kiosk.borrow().screen();
    assert_eq!(format!("{:?}", kiosk.window.get_screen()), format!("{screen:?}"));
    screen
}

#[test]
fn the_kiosk_walks_every_screen_against_a_real_edge() {
    i_slint_backend_testing::init_no_event_loop();
    let fx = Fixture::load();
    let system = System::start();
    let name = text(&fx.resident["name"]).to_string();
    let debit = fx.resident["debit_balance_cents"].as_i64().unwrap();

    // Calls, for the last part: open all day, and the contact answers.
    let callee = fx.contact(|c| {
        c["approvals"]["voice"] == "Approved"
            && c["account_status"] == "Active"
            && c["numbers"][0].is_string()
    });
    let callee_name = text(&callee["name"]).to_string();
    let callee_id = callee["id"].to_string();
    system.open_all_day(text(&fx.resident["unit"]));
    system.central_admin(&["call-script", "--contact", &callee_id, "--answer-after", "0.5"]);

    let bundle = net::Bundle::load(&system.provision("T-0100")).unwrap();
    let edge = QuicEdge::connect(system.tablet_addr, &bundle, "localhost").unwrap();
    let mut kiosk = Driver::new(edge, Settings::default(), jiff::Timestamp::now()).unwrap();
    // The demo facility's IDs are R + digits; the keypad types the digits.
    kiosk.set_id_prefix("R");
    // Tall enough that every contact row is on screen: elements scrolled
    // out of view are not found (nor touchable).
    kiosk.window.window().set_size(slint::LogicalSize::new(1280.0, 8000.0));
    let k = &mut kiosk;
    assert_eq!(screen(k), KioskScreen::Login);

    // 1. Login: the keypad, a wrong PIN, then the right one.
    let digits = RESIDENT.strip_prefix('R').expect("R and digits");
    key_in(k, digits);
    assert_eq!(k.window.get_login().id_text, RESIDENT);
    press(k, "Next");
    assert!(k.window.get_login().pin_active);
    let wrong = if PIN == "0000" { "1111" } else { "0000" };
    key_in(k, wrong);
    assert_eq!(k.window.get_login().pin_dots.chars().count(), wrong.len());
    press(k, "Log in");
    let login = k.window.get_login();
    let left = fx.facility["login_max_failures"].as_u64().unwrap() - 1;
    assert_eq!(login.message, format!("Wrong ID or PIN. {left} attempts left."));
    assert_eq!(screen(k), KioskScreen::Login);
    assert_eq!(login.pin_dots, "", "the PIN is cleared after a refusal");
    key_in(k, PIN);
    press(k, "Log in");
    assert_eq!(screen(k), KioskScreen::Home);
    let home = k.window.get_home();
    assert_eq!(home.greeting, format!("Hello, {name}"));
    assert_eq!(home.debit_text, dollars(debit));
    assert_eq!(k.window.get_nav().resident, name);

    // 2. Contacts: the fixture's, with refusals in words.
    let nav = k.window.get_nav();
    press(k, &nav.contacts);
    assert_eq!(screen(k), KioskScreen::Contacts);
    let contacts = k.window.get_contacts();
    let mut shown: Vec<String> = contacts.rows.iter().map(|r| r.name.to_string()).collect();
    let mut expected: Vec<String> = fx.contacts.iter().map(|c| text(&c["name"]).to_string()).collect();
    shown.sort();
    expected.sort();
    assert_eq!(shown, expected);
    let no_video = fx.contact(|c| c["approvals"]["video"] == "Rejected" && c["account_status"] == "Active");
    let row = contacts.rows.row_data(contact_row(k, text(&no_video["name"]))).unwrap();
    assert!(!row.video.enabled);
    assert_eq!(row.video.reason, "The facility did not approve video calls with this contact.");
    assert_eq!(button(k, &row.video.accessible).accessible_enabled(), Some(false));

    // 3. Messages: the inbox, a message, the rejected one in Sent.
    let nav = k.window.get_nav();
    press(k, &nav.messages);
    assert_eq!(screen(k), KioskScreen::Mailbox);
    let inbox = k.window.get_mailbox();
    let incoming = fx.mail("ContactToResident");
    // The edge also puts the resident's own rejected messages in the Inbox, so the rejection is seen.
    let rejections = fx.mail.iter().filter(|m| {
        m["review"].get("Rejected").is_some() && m["message"]["direction"] == "ResidentToContact"
    });
    let subjects: Vec<String> =
        inbox.rows.iter().map(|r| format!("{}: {}", r.contact_name, r.subject)).collect();
    assert_eq!(inbox.rows.row_count(), incoming.len() + rejections.count(), "{subjects:?}");
    for mail in &incoming {
        let subject = text(&mail["subject"]);
        let row =
            inbox.rows.iter().find(|r| r.subject == subject).unwrap_or_else(|| panic!("{subject} in Inbox"));
        assert_eq!(row.contact_name, fx.contact_name(&mail["contact"]));
    }
    let first = incoming[0];
    let subject = text(&first["subject"]);
    let row = buttons(k, |l| l.contains(subject));
    assert_eq!(row.len(), 1, "one Inbox row about {subject}");
    touch(k, &row[0]);
    assert_eq!(screen(k), KioskScreen::Message);
    let message = k.window.get_message();
    assert_eq!(message.subject, subject);
    assert_eq!(message.body, text(&first["body"]));
    press(k, &message.back_label);
    assert_eq!(screen(k), KioskScreen::Mailbox);
    let sent_tab = buttons(k, |l| l.starts_with("Sent"));
    assert_eq!(sent_tab.len(), 1);
    touch(k, &sent_tab[0]);
    let sent = k.window.get_mailbox();
    assert!(sent.tabs.iter().any(|t| t.selected && t.label == "Sent"));
    let outgoing = fx.mail("ResidentToContact");
    assert_eq!(sent.rows.row_count(), outgoing.len());
    let rejected = fx
        .mail
        .iter()
        .find(|m| m["review"].get("Rejected").is_some() && m["message"]["direction"] == "ResidentToContact")
        .expect("a rejected message in the fixture");
    let reason = text(&rejected["review"]["Rejected"]["reason"]);
    let subject = text(&rejected["message"]["subject"]);
    let row = sent.rows.iter().find(|r| r.subject == subject).expect("the rejected message in Sent");
    assert_eq!(row.state, format!("Rejected: {reason}"));
    let row = buttons(k, |l| l.contains(subject));
    assert_eq!(row.len(), 1);
    touch(k, &row[0]);
    let message = k.window.get_message();
    assert_eq!(message.problem, format!("Rejected: {reason}"));
    assert_eq!(message.body, text(&rejected["message"]["body"]));

    // 4. Compose to a contact with stamps: the edge's limits, shown in words.
    let pen_pal = fx.contact(|c| {
        c["approvals"]["message"] == "Approved"
            && c["account_status"] == "Active"
            && fx.stamps.iter().any(|s| {
                s["resident"] == RESIDENT && s["contact"] == c["id"] && s["stamps"].as_u64() > Some(0)
            })
    });
    let pen_pal_name = text(&pen_pal["name"]).to_string();
    let nav = k.window.get_nav();
    press(k, &nav.contacts);
    let row = k.window.get_contacts().rows.row_data(contact_row(k, &pen_pal_name)).unwrap();
    press(k, &row.message.accessible);
    assert_eq!(screen(k), KioskScreen::Compose);
    let compose = k.window.get_compose();
    assert_eq!(compose.to, format!("To: {pen_pal_name}"));
    let limit = usize::try_from(fx.facility["message_char_limit"].as_u64().unwrap()).unwrap();
    let body: String = "Writing from the kiosk. ".chars().cycle().take(limit).collect();
    edit_body(k, &body);
    let compose = k.window.get_compose();
    assert_eq!(compose.notice, "Draft saved.");
    assert_eq!(k.window.get_compose_body(), body.as_str());
    let longer = format!("{body}!");
    edit_body(k, &longer);
    let compose = k.window.get_compose();
    assert_eq!(k.window.get_compose_body(), body.as_str(), "the refused edit is rolled back");
    assert_eq!(
        compose.notice,
        format!("The message is {} characters; the limit is {}.", group(limit + 1), group(limit))
    );
    let add = compose.add_ecard_label.to_string();
    for pick in 0..5 {
        press(k, &add);
        let compose = k.window.get_compose();
        assert!(compose.picker_open);
        let card = compose.picker_cards.row_data(pick).expect("enough eCards in the catalog");
        press(k, &format!("{}: {}", card.category, card.title));
        let compose = k.window.get_compose();
        assert!(!compose.picker_open);
        assert_eq!(compose.attachments.row_count(), pick + 1);
        assert_eq!(compose.notice, "Draft saved.");
    }
    assert_eq!(button(k, &add).accessible_enabled(), Some(false), "no sixth eCard from the button");
    // The button is off at five; the picker is opened directly to offer the edge a sixth.
    k.ui(UiEvent::ComposeOpenPicker);
    let card = k.window.get_compose().picker_cards.row_data(5).expect("a sixth eCard");
    press(k, &format!("{}: {}", card.category, card.title));
    let compose = k.window.get_compose();
    assert_eq!(compose.notice, "A message can have at most 5 attachments.");
    assert_eq!(compose.attachments.row_count(), 5);
    let nav = k.window.get_nav();
    press(k, &nav.messages);
    let drafts = buttons(k, |l| l.starts_with("Drafts"));
    assert_eq!(drafts.len(), 1);
    touch(k, &drafts[0]);
    let mailbox = k.window.get_mailbox();
    assert_eq!(mailbox.rows.row_count(), 1, "one draft at the edge");
    assert_eq!(mailbox.rows.row_data(0).unwrap().contact_name, pen_pal_name);
    let row = buttons(k, |l| l.contains(&pen_pal_name));
    assert_eq!(row.len(), 1);
    touch(k, &row[0]);
    assert!(k.kiosk.borrow().message_is_draft());
    let draft = k.window.get_message();
    assert_eq!(draft.body, body.as_str(), "the edge kept the last accepted text");
    assert_eq!(draft.attachments.row_count(), 5);

    // 5. Stamps: a package for another contact, confirmed, paid from the debit balance.
    let nav = k.window.get_nav();
    press(k, &nav.stamps);
    assert_eq!(screen(k), KioskScreen::Stamps);
    let stamps = k.window.get_stamps();
    assert_eq!(stamps.balance, format!("Available to spend: {}", dollars(debit)));
    let choice = stamps.contacts.iter().position(|c| !c.selected).expect("a second contact to buy for");
    let buyee = stamps.contacts.row_data(choice).unwrap().name.to_string();
    let chosen = buttons(k, |l| l.starts_with(&format!("{buyee} — ")));
    assert_eq!(chosen.len(), 1);
    touch(k, &chosen[0]);
    let stamps = k.window.get_stamps();
    assert_eq!(stamps.heading, format!("Stamps for {buyee}"));
    assert!(stamps.contacts.row_data(choice).unwrap().selected);
    let package = stamps.packages.row_data(1).expect("packages on sale");
    let price =
        fx.packages.iter().find(|p| dollars(p["price_cents"].as_i64().unwrap()) == package.price.as_str());
    let price = price.expect("the package's price from the fixture")["price_cents"].as_i64().unwrap();
    press(k, &format!("{}, {}, {}", package.buy_label, package.stamps, package.price));
    let stamps = k.window.get_stamps();
    assert!(stamps.confirm_open);
    assert_eq!(
        stamps.confirm_text,
        format!(
            "Buy {} for {buyee} for {}? Your balance after: {}.",
            package.stamps,
            package.price,
            dollars(debit - price)
        )
    );
    press(k, &stamps.confirm_label);
    let stamps = k.window.get_stamps();
    assert!(!stamps.confirm_open);
    assert!(stamps.result.visible);
    assert!(stamps.result.text.starts_with("Bought"), "{}", stamps.result.text);
    let nav = k.window.get_nav();
    press(k, &nav.home);
    let deadline = Instant::now() + Duration::from_secs(20);
    while k.window.get_home().debit_text != dollars(debit - price) {
        assert!(Instant::now() < deadline, "debit still {}", k.window.get_home().debit_text);
        std::thread::sleep(Duration::from_millis(200));
        k.ui(UiEvent::Navigate(KioskScreen::Home));
    }

    // 6. Settings: Spanish everywhere, and large text.
    let nav = k.window.get_nav();
    press(k, &nav.settings);
    assert_eq!(screen(k), KioskScreen::Settings);
    let scale = k.window.global::<Theme>().get_text_scale();
    press(k, "Español");
    let nav = k.window.get_nav();
    assert_eq!(nav.home, "Inicio");
    assert_eq!(nav.contacts, "Contactos");
    assert_eq!(k.window.get_settings().title, "Ajustes");
    press(k, "Inicio");
    assert_eq!(k.window.get_home().greeting, format!("Hola, {name}"));
    press(k, "Ajustes");
    let settings = k.window.get_settings();
    assert!(!settings.large_text_on);
    press(k, &settings.large_text_label);
    assert!(k.window.get_settings().large_text_on);
    let large = k.window.global::<Theme>().get_text_scale();
    assert!(large > 1.0 && large > scale, "text scale {scale} -> {large}");
    press(k, "English");
    assert_eq!(k.window.get_nav().home, "Home");

    // 7. Calls: a voice call answered by the contact, hung up here.
    let nav = k.window.get_nav();
    press(k, &nav.contacts);
    // The all-day hours reach the edge with central's next sync.
    let deadline = Instant::now() + Duration::from_secs(20);
    let row = loop {
        let row = k.window.get_contacts().rows.row_data(contact_row(k, &callee_name)).unwrap();
        if row.voice.enabled {
            break row;
        }
        assert!(Instant::now() < deadline, "calls never opened: {}: {}", row.voice.status, row.voice.reason);
        std::thread::sleep(Duration::from_millis(200));
        k.ui(UiEvent::Navigate(KioskScreen::Contacts));
    };
    press(k, &row.voice.accessible);
    assert_eq!(screen(k), KioskScreen::Call);
    assert_eq!(k.window.get_call().contact_name, callee_name.as_str());
    let connected = k.wait_events(Duration::from_secs(20), |kiosk| {
        kiosk.call().is_some_and(|c| matches!(c.phase(), CallPhase::Connected))
    });
    assert!(connected, "the call never connected: {:?}\n{}", k.kiosk.borrow().call(), system.log_tails(20));
    let call = k.window.get_call();
    assert_eq!(call.status_text, "Connected");
    assert!(call.show_timer);
    let started = call.timer_text.clone();
    k.advance(Duration::from_secs(3));
    let call = k.window.get_call();
    assert_ne!(call.timer_text, started, "the timer runs");
    assert_eq!(call.timer_accessible, format!("Call time {}", call.timer_text));
    press(k, &call.hang_up_accessible);
    let over = k.wait_events(Duration::from_secs(10), |kiosk| kiosk.call().is_some_and(|c| c.is_over()));
    assert!(over, "the call did not end: {:?}", k.kiosk.borrow().call());
    let call = k.window.get_call();
    assert!(call.is_over);
    assert_eq!(call.end_text, "You ended the call.");
    press(k, &call.close_label);
    assert_eq!(screen(k), KioskScreen::Contacts);
    let broke = fx.contact(|c| {
        c["approvals"]["video"] == "Approved"
            && c["account_status"] == "Active"
            && c["video_balance_cents"] == 0
    });
    let row = k.window.get_contacts().rows.row_data(contact_row(k, text(&broke["name"]))).unwrap();
    assert!(!row.video.enabled);
    assert_eq!(row.video.status, "Low balance");
    let rate = dollars(broke["video_rate_cents_per_min"].as_i64().unwrap());
    assert!(
        row.video.reason.starts_with(&format!("This contact has $0.00; video calls cost {rate} a minute.")),
        "{}",
        row.video.reason
    );
    assert_eq!(button(k, &row.video.accessible).accessible_enabled(), Some(false));

    // 8. Log out.
    let nav = k.window.get_nav();
    press(k, &nav.logout);
    assert_eq!(screen(k), KioskScreen::Login);
    let login = k.window.get_login();
    assert_eq!(login.id_text, "R");
    assert_eq!(login.pin_dots, "");
}

/// `4,000`: thousands grouped as the kiosk writes counts.
fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
