//! The scripted session of the demo on a machine without a display: logs
//! in on the keypad against a real edge, visits every screen and writes a
//! picture of each. It reads and looks; it sends, buys and calls nothing.

use std::net::SocketAddr;
use std::path::PathBuf;

use jiff::Timestamp;

use super::driver::{Driver, QuicEdge};
use super::screenshot;
use crate::kiosk::{ContactAction, Screen, UiEvent};
use crate::vm::settings::Settings;
use crate::vm::Lang;

pub struct TourOptions {
    pub edge: SocketAddr,
    pub bundle: net::Bundle,
    pub server_name: String,
    /// Letters before the digits of resident IDs here (see `--id-prefix`).
    pub id_prefix: String,
    /// The digits of the resident's ID, as typed on the keypad.
    pub resident_digits: String,
    pub pin: String,
    pub out: PathBuf,
    pub width: u32,
    pub height: u32,
}

fn digits(text: &str) -> anyhow::Result<Vec<u8>> {
    text.chars()
        .map(|c| {
            c.to_digit(10)
                .and_then(|d| u8::try_from(d).ok())
                .ok_or_else(|| anyhow::anyhow!("{c:?} is not a keypad digit"))
        })
        .collect()
}

/// Runs the tour; returns the pictures written, in order.
pub fn run_tour(options: TourOptions) -> anyhow::Result<Vec<PathBuf>> {
    let id = digits(&options.resident_digits)?;
    let pin = digits(&options.pin)?;
    std::fs::create_dir_all(&options.out)?;
    let window = screenshot::install(options.width, options.height)?;
    let edge = QuicEdge::connect(options.edge, &options.bundle, &options.server_name)?;
    let mut d = Driver::new(edge, Settings::default(), Timestamp::now())?;
    d.set_id_prefix(&options.id_prefix);
    let mut written = Vec::new();
    let mut shoot = |name: &str| -> anyhow::Result<()> {
        let path = options.out.join(format!("{:02}-{name}.png", written.len() + 1));
        screenshot::capture(&window).save_png(&path)?;
        tracing::info!(path = %path.display(), "screenshot");
        written.push(path);
        Ok(())
    };

    shoot("login")?;
    d.log_in_with_keypad(&id, &pin);
    if d.kiosk.borrow().screen() != Screen::Home {
        anyhow::bail!("the edge did not log the demo resident in: {}", d.kiosk.borrow().login_view().message);
    }
    shoot("home")?;
    d.ui(UiEvent::Navigate(Screen::Contacts));
    shoot("contacts")?;
    d.ui(UiEvent::Navigate(Screen::Mailbox));
    shoot("messages")?;
    if d.kiosk.borrow().mailbox().is_some_and(|m| !m.rows.is_empty()) {
        d.ui(UiEvent::OpenMessage(0));
        shoot("message")?;
    }
    let writable = d.kiosk.borrow().contacts().and_then(|c| c.rows.iter().position(|r| r.message.enabled));
    if let Some(row) = writable {
        d.ui(UiEvent::Navigate(Screen::Contacts));
        d.ui(UiEvent::ContactAction { row, action: ContactAction::Message });
        shoot("compose")?;
    }
    d.ui(UiEvent::Navigate(Screen::Stamps));
    shoot("stamps")?;
    d.ui(UiEvent::Navigate(Screen::Settings));
    shoot("settings")?;
    d.ui(UiEvent::ChooseLanguage(Lang::Spanish));
    d.ui(UiEvent::Navigate(Screen::Home));
    shoot("home-es")?;
    d.ui(UiEvent::ChooseLanguage(Lang::English));
    d.ui(UiEvent::Logout);
    Ok(written)
}
