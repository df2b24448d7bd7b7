//! The tablet image booted under QEMU (aarch64, TCG) against an edge and
//! central-sim on the host, as a resident meets it: the kiosk shell fills
//! the virtio GPU's screen through DRM/KMS with no desktop, takes touches
//! from the touch screen, keeps Ctrl+Alt+Fn from switching to a text
//! console, and goes back to the login screen on Ctrl+Alt+Backspace.
//!
//! The login screen is compared with the golden picture the host renders in
//! `tablet-shell/tests/golden/`, with the golden tests' tolerance: the aarch64
//! build under linuxkms must draw what the host draws. Where to touch comes
//! from the same window laid out on the host (Slint's testing backend), so the
//! test follows the layout instead of hard-coding it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use facility_tests::tablet_vm::{tablet_kit, Screen, TabletImage, TabletVm, READY, SCREEN};
use facility_tests::{wait_until, System};
use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use slint::ComponentHandle;
use tablet_shell::ui::driver::{Driver, QuicEdge};
use tablet_shell::ui::screenshot::Picture;
use tablet_shell::vm::settings::Settings;
use tablet_shell::vm::Lang;

/// The golden tests' tolerance (tablet-shell/tests/golden.rs).
const CHANNEL_TOLERANCE: u8 = 24;
const PIXEL_TOLERANCE: f64 = 0.004;
const RESIDENT_DIGITS: &str = "1001";
const PIN: &str = "1234";

fn golden(name: &str) -> Screen {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tablet-shell/tests/golden").join(name);
    let picture = Picture::load_png(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Screen { width: picture.width, height: picture.height, rgb: picture.rgb }
}

/// The centre of the one button labelled `label` in `driver`'s window.
fn centre(driver: &Driver<QuicEdge>, label: &str) -> (u32, u32, ElementHandle) {
    let found: Vec<_> = ElementHandle::find_by_accessible_label(&driver.window, label)
        .filter(|e| e.accessible_role() == Some(AccessibleRole::Button))
        .collect();
    assert_eq!(found.len(), 1, "buttons labelled {label:?} on the host's login screen");
    let element = found.into_iter().next().expect("one button");
    let (at, size) = (element.absolute_position(), element.size());
    ((at.x + size.width / 2.0) as u32, (at.y + size.height / 2.0) as u32, element)
}

/// Where a resident touches to log in as R`RESIDENT_DIGITS` with `PIN`: the
/// host's own kiosk window (same build, same 1280x800 layout) is walked
/// through the same keys, and the centre of each key is noted. The host
/// stops before the last touch, so only the tablet logs in.
fn login_touches(system: &System) -> Vec<(String, (u32, u32))> {
    i_slint_backend_testing::init_no_event_loop();
    let bundle = net::Bundle::load(&system.provision("T-0002")).expect("T-0002 bundle");
    let edge = QuicEdge::connect(system.tablet_addr, &bundle, "localhost").expect("host kiosk connects");
    let settings = Settings { lang: Lang::English, large_text: false };
    let mut driver = Driver::new(edge, settings, jiff::Timestamp::now()).expect("host kiosk window");
    driver.set_id_prefix("R");
    driver.window.window().set_size(slint::LogicalSize::new(SCREEN.0 as f32, SCREEN.1 as f32));
    driver.pump();
    let mut keys: Vec<String> = RESIDENT_DIGITS.chars().map(|d| format!("Digit {d}")).collect();
    keys.push("Next".into());
    keys.extend(PIN.chars().map(|d| format!("Digit {d}")));
    keys.push("Log in".into());
    let mut touches = Vec::new();
    let last = keys.len() - 1;
    for (i, key) in keys.into_iter().enumerate() {
        let (x, y, element) = centre(&driver, &key);
        if i < last {
            element.invoke_accessible_default_action();
            driver.pump();
        }
        touches.push((key, (x, y)));
    }
    touches
}

/// The edge's audit rows of `action` by device `device`.
fn audited(edge_dir: &Path, device: &str, action: &str) -> Vec<String> {
    let sql = format!("SELECT detail FROM audit_log WHERE actor LIKE '%{device}%' AND action = '{action}';");
    let out = Command::new("sqlite3").arg(edge_dir.join("edge.db")).arg(sql).output().expect("sqlite3");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn the_tablet_image_runs_the_kiosk_full_screen_takes_touches_and_keeps_the_console_away() {
    let image = TabletImage::built(env!("CARGO_PKG_VERSION"));
    let system = System::start();
    let touches = login_touches(&system);
    eprintln!("login touches from the host's layout: {touches:?}");

    let env = BTreeMap::from([
        ("EDGE", format!("10.0.2.2:{}", system.tablet_addr.port())),
        ("ID_PREFIX", "R".to_string()),
        ("LANG_DEFAULT", "en".to_string()),
    ]);
    let kit = tablet_kit(system.dir.path(), &system.device, &env);
    let release_key =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/images/keys/release-dev.key.pub");
    let mut vm = TabletVm::create(&system.dir.path().join("tablet-vm"), &image, &kit, &release_key);

    let started = Instant::now();
    vm.power_on();
    vm.wait_console("FACILITY-TABLET PROVISIONED", Duration::from_secs(300));
    let ready = vm.wait_console(READY, Duration::from_secs(300));
    eprintln!("power-on to kiosk ready: {:.1} s ({ready})", started.elapsed().as_secs_f64());

    // The login screen, drawn by the aarch64 kiosk through DRM/KMS, matches
    // the host's golden picture of it.
    let login = golden("01-login.png");
    let shown = vm.wait_screen("the login screen", Duration::from_secs(120), |s| {
        s.difference(&login, CHANNEL_TOLERANCE) <= PIXEL_TOLERANCE
    });
    assert_eq!((shown.width, shown.height), SCREEN);
    eprintln!("login screen after {:.1} s", started.elapsed().as_secs_f64());

    // Ctrl+Alt+F2 would switch a text console over the kiosk; the kiosk
    // turned its VT's keyboard off, so the screen stays as it was. Checked on
    // the login screen, the one screen whose every pixel is known: a home
    // screen still filling in with the edge's answers would change anyway.
    vm.chord(&["ctrl", "alt", "f2"]);
    std::thread::sleep(Duration::from_secs(3));
    let after = vm.screen();
    assert!(
        after.difference(&login, CHANNEL_TOLERANCE) <= PIXEL_TOLERANCE,
        "the screen changed after Ctrl+Alt+F2 ({:.1} % of pixels, {:.0} % lit): a VT switch; see {}",
        after.difference(&login, CHANNEL_TOLERANCE) * 100.0,
        after.lit() * 100.0,
        vm.screens.display()
    );

    // Touches on the screen log the resident in at the edge.
    assert!(audited(&system.edge_dir, "T-0001", "login").is_empty());
    for (_, (x, y)) in &touches {
        vm.touch(*x, *y);
        // A resident's pace: each key is handled before the next arrives.
        std::thread::sleep(Duration::from_millis(400));
    }
    wait_until("the edge audits the tablet's login", Duration::from_secs(60), || {
        audited(&system.edge_dir, "T-0001", "login")
            .iter()
            .any(|d| d.contains(&format!("R{RESIDENT_DIGITS}")))
    });
    vm.wait_screen("the home screen", Duration::from_secs(60), |s| {
        s.difference(&login, CHANNEL_TOLERANCE) > 0.05 && s.lit() > 0.5
    });

    // Ctrl+Alt+Backspace ends the session and shows the login screen again.
    // Under linuxkms Slint itself quits the event loop on this chord, so the
    // shell exits and systemd starts it again at once (Restart=always,
    // RestartSec=0): the same path as a crash, with a second or two of
    // blank text console in between.
    vm.chord(&["ctrl", "alt", "backspace"]);
    vm.wait_screen("the login screen after Ctrl+Alt+Backspace", Duration::from_secs(60), |s| {
        s.difference(&login, CHANNEL_TOLERANCE) <= PIXEL_TOLERANCE
    });
    wait_until("the edge audits the logout", Duration::from_secs(30), || {
        !audited(&system.edge_dir, "T-0001", "logout").is_empty()
    });
}
