//! The home screen: greeting, money, unread mail, today's calling hours, and
//! banners for lockdown and offline data.
//!
//! Whether calls are open is the edge's `HoursView::open_now`; `now` is only
//! used to say until when the current window runs.

use jiff::Timestamp;
use proto::domain::LockdownScope;
use proto::tablet::{BalancesView, ContactView, HoursView, SessionInfo, WindowView};

use super::common::{
    lockdown_banner, money, offline_banner, per_minute, shows_video_balance, time_range, window_end,
    window_label, Banner, Lang, Tone,
};

/// Everything the home screen is built from, as the edge last sent it.
#[derive(Debug, Clone, Copy)]
pub struct HomeInput<'a> {
    /// Who is logged in.
    pub session: &'a SessionInfo,
    /// Debit and video balances, and how fresh they are.
    pub balances: &'a BalancesView,
    /// Today's calling hours for the resident's unit.
    pub hours: &'a HoursView,
    /// Decides which contacts' video balances are worth showing.
    pub contacts: &'a [ContactView],
    /// Unread inbox messages (from the mailbox or the last `MailChanged`).
    pub unread: u32,
    /// The latest known lockdown: `ServerEvent::LockdownChanged` is newer
    /// than `hours.lockdown`, so the caller passes whichever came last.
    pub lockdown: Option<&'a LockdownScope>,
    /// The current time (only to find the window open now).
    pub now: Timestamp,
}

/// One contact's video money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoBalanceRow {
    /// The contact's name.
    pub name: String,
    /// `$12.50`
    pub balance_text: String,
    /// `$0.20 a minute`
    pub rate_text: String,
    /// The whole row as one sentence for a screen reader.
    pub accessible: String,
}

/// The home screen, display-ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeVm {
    /// `Hello, Ana`
    pub greeting: String,
    /// `Your account`
    pub debit_label: String,
    /// The resident's own (debit) money: `$25.00`.
    pub debit_text: String,
    /// `Video balances`
    pub video_balances_title: String,
    /// Contacts whose video is not refused for lack of approval.
    pub video_balances: Vec<VideoBalanceRow>,
    /// Unread messages, for a badge.
    pub unread: u32,
    /// `3 unread messages`, `No unread messages`.
    pub unread_text: String,
    /// `Calling hours`
    pub hours_title: String,
    /// `Today: 07:00–22:00` or `No calls today`.
    pub today_text: String,
    /// Calls can be placed now (the edge's hours say open and no lockdown).
    pub calls_open: bool,
    /// `Calls open now until 22:00` / `Calls closed now. Next calls: …`.
    pub hours_status_text: String,
    /// Positive when open, Warning when closed, Alert in a lockdown.
    pub hours_tone: Tone,
    /// Set while a lockdown covers the resident (Alert tone).
    pub lockdown_banner: Option<Banner>,
    /// Set while the edge cannot reach central (Warning tone).
    pub offline_banner: Option<Banner>,
}

/// `3 unread messages`, `1 mensaje sin leer`, `No unread messages`.
pub fn unread_text(unread: u32, lang: Lang) -> String {
    match (unread, lang) {
        (0, _) => lang.pick("No unread messages", "No hay mensajes sin leer").to_string(),
        (1, Lang::English) => "1 unread message".to_string(),
        (n, Lang::English) => format!("{n} unread messages"),
        (1, Lang::Spanish) => "1 mensaje sin leer".to_string(),
        (n, Lang::Spanish) => format!("{n} mensajes sin leer"),
    }
}

/// `today 18:00–22:00`, `tomorrow 07:00–22:00`, or `Thu 07:00–22:00`.
fn next_window_label(window: &WindowView, hours: &HoursView, lang: Lang) -> String {
    let range = time_range(&window.local_start, &window.local_end);
    if window.local_date == hours.local_date {
        format!("{} {range}", lang.pick("today", "hoy"))
    } else if hours.local_date.tomorrow().ok() == Some(window.local_date) {
        format!("{} {range}", lang.pick("tomorrow", "mañana"))
    } else {
        window_label(window, lang)
    }
}

impl HomeVm {
    /// Builds the screen from the edge's answers, `now`, and the language.
    pub fn new(input: &HomeInput<'_>, lang: Lang) -> Self {
        let HomeInput { session, balances, hours, contacts, unread, lockdown, now } = *input;

        let video_balances = balances
            .contacts
            .iter()
            .filter(|b| contacts.iter().any(|c| c.id == b.contact && shows_video_balance(c)))
            .map(|b| {
                let balance_text = money(b.video_balance_cents);
                let rate_text = per_minute(b.video_rate_cents_per_min, lang);
                let accessible = match lang {
                    Lang::English => format!("{}: video balance {balance_text}, {rate_text}", b.name),
                    Lang::Spanish => format!("{}: saldo de video {balance_text}, {rate_text}", b.name),
                };
                VideoBalanceRow { name: b.name.clone(), balance_text, rate_text, accessible }
            })
            .collect();

        let today_text = if hours.today.is_empty() {
            lang.pick("No calls today", "Hoy no hay llamadas").to_string()
        } else {
            let ranges: Vec<String> =
                hours.today.iter().map(|w| time_range(&w.local_start, &w.local_end)).collect();
            format!("{} {}", lang.pick("Today:", "Hoy:"), ranges.join(", "))
        };

        let calls_open = hours.open_now && lockdown.is_none();
        let (hours_status_text, hours_tone) = if lockdown.is_some() {
            (
                lang.pick("Calls are paused for the lockdown.", "Las llamadas están en pausa por el cierre.")
                    .to_string(),
                Tone::Alert,
            )
        } else if hours.open_now {
            let current = hours.today.iter().find(|w| w.starts_at <= now && now < w.ends_at);
            let text = match (current, lang) {
                (Some(w), Lang::English) => format!("Calls open now until {}", window_end(&w.local_end)),
                (Some(w), Lang::Spanish) => {
                    format!("Llamadas abiertas hasta las {}", window_end(&w.local_end))
                }
                (None, _) => lang.pick("Calls open now", "Llamadas abiertas ahora").to_string(),
            };
            (text, Tone::Positive)
        } else {
            let closed = lang.pick("Calls closed now.", "Llamadas cerradas ahora.");
            let text = match &hours.next_window {
                Some(w) => format!(
                    "{closed} {} {}",
                    lang.pick("Next calls:", "Próximas llamadas:"),
                    next_window_label(w, hours, lang)
                ),
                None => format!(
                    "{closed} {}",
                    lang.pick("No calling hours are scheduled.", "No hay horario de llamadas programado.")
                ),
            };
            (text, Tone::Warning)
        };

        HomeVm {
            greeting: format!("{}, {}", lang.pick("Hello", "Hola"), session.name),
            debit_label: lang.pick("Your account", "Su cuenta").into(),
            debit_text: money(balances.debit_balance_cents),
            video_balances_title: lang.pick("Video balances", "Saldos para videollamadas").into(),
            video_balances,
            unread,
            unread_text: unread_text(unread, lang),
            hours_title: lang.pick("Calling hours", "Horario de llamadas").into(),
            today_text,
            calls_open,
            hours_status_text,
            hours_tone,
            lockdown_banner: lockdown
                .map(|scope| Banner { text: lockdown_banner(scope, lang), tone: Tone::Alert }),
            offline_banner: offline_banner(&balances.freshness, lang)
                .map(|text| Banner { text, tone: Tone::Warning }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proto::domain::{Approval, ContactId, ResidentId, Service, UnitId};
    use proto::tablet::{Availability, ContactBalance, DenyReason, Freshness};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn window(day: jiff::civil::Date, start: &str, end: &str, from: &str, to: &str) -> WindowView {
        WindowView {
            starts_at: ts(from),
            ends_at: ts(to),
            local_start: start.into(),
            local_end: end.into(),
            local_date: day,
        }
    }

    fn contact(id: u64, name: &str, video: Availability) -> ContactView {
        ContactView {
            id: ContactId(id),
            name: name.into(),
            numbers: vec![],
            voice: Availability::Available,
            video,
            message: Availability::Available,
            video_balance_cents: 0,
            video_rate_cents_per_min: 20,
        }
    }

    struct Fixture {
        session: SessionInfo,
        balances: BalancesView,
        hours: HoursView,
        contacts: Vec<ContactView>,
    }

    fn fixture() -> Fixture {
        let today = date(2026, 11, 26);
        Fixture {
            session: SessionInfo {
                resident: ResidentId::new("1234"),
                name: "Ana".into(),
                unit: UnitId::new("A"),
                session_id: 1,
            },
            balances: BalancesView {
                debit_balance_cents: 2500,
                contacts: vec![
                    ContactBalance {
                        contact: ContactId(1),
                        name: "Maria".into(),
                        video_balance_cents: 1250,
                        video_rate_cents_per_min: 20,
                    },
                    ContactBalance {
                        contact: ContactId(2),
                        name: "Luis".into(),
                        video_balance_cents: 0,
                        video_rate_cents_per_min: 20,
                    },
                ],
                freshness: Freshness { uplink_up: true, cache_age_secs: Some(3) },
            },
            hours: HoursView {
                time_zone: "America/Los_Angeles".into(),
                local_date: today,
                today: vec![window(today, "07:00", "22:00", "2026-11-26T15:00:00Z", "2026-11-27T06:00:00Z")],
                open_now: true,
                next_window: None,
                lockdown: None,
            },
            contacts: vec![
                contact(1, "Maria", Availability::Available),
                contact(
                    2,
                    "Luis",
                    Availability::Unavailable(DenyReason::NotApproved {
                        service: Service::Video,
                        status: Approval::Pending,
                    }),
                ),
            ],
        }
    }

    fn build(f: &Fixture, unread: u32, lockdown: Option<&LockdownScope>, now: &str, lang: Lang) -> HomeVm {
        let input = HomeInput {
            session: &f.session,
            balances: &f.balances,
            hours: &f.hours,
            contacts: &f.contacts,
            unread,
            lockdown,
            now: ts(now),
        };
        HomeVm::new(&input, lang)
    }

    #[test]
    fn english_home_while_open() {
        let f = fixture();
        let vm = build(&f, 3, None, "2026-11-26T20:00:00Z", Lang::English);
        assert_eq!(vm.greeting, "Hello, Ana");
        assert_eq!(vm.debit_text, "$25.00");
        assert_eq!(vm.unread_text, "3 unread messages");
        assert_eq!(vm.today_text, "Today: 07:00–22:00");
        assert!(vm.calls_open);
        assert_eq!(vm.hours_status_text, "Calls open now until 22:00");
        assert_eq!(vm.video_balances.len(), 1, "Luis is not approved for video");
        assert_eq!(vm.video_balances[0].name, "Maria");
        assert_eq!(vm.video_balances[0].balance_text, "$12.50");
        assert_eq!(vm.video_balances[0].rate_text, "$0.20 a minute");
        assert_eq!(vm.lockdown_banner, None);
        assert_eq!(vm.offline_banner, None);
    }

    #[test]
    fn spanish_home_with_plurals() {
        let f = fixture();
        let vm = build(&f, 1, None, "2026-11-26T20:00:00Z", Lang::Spanish);
        assert_eq!(vm.greeting, "Hola, Ana");
        assert_eq!(vm.unread_text, "1 mensaje sin leer");
        assert_eq!(vm.today_text, "Hoy: 07:00–22:00");
        assert_eq!(vm.hours_status_text, "Llamadas abiertas hasta las 22:00");
        assert_eq!(vm.video_balances[0].rate_text, "$0.20 por minuto");
        assert_eq!(unread_text(0, Lang::Spanish), "No hay mensajes sin leer");
        assert_eq!(unread_text(4, Lang::Spanish), "4 mensajes sin leer");
        assert_eq!(unread_text(1, Lang::English), "1 unread message");
        assert_eq!(unread_text(0, Lang::English), "No unread messages");
    }

    #[test]
    fn closed_hours_name_the_next_window() {
        let mut f = fixture();
        f.hours.open_now = false;
        f.hours.today.clear();
        f.hours.next_window = Some(window(
            date(2026, 11, 27),
            "07:00",
            "22:00",
            "2026-11-27T15:00:00Z",
            "2026-11-28T06:00:00Z",
        ));
        let vm = build(&f, 0, None, "2026-11-26T20:00:00Z", Lang::English);
        assert_eq!(vm.today_text, "No calls today");
        assert!(!vm.calls_open);
        assert_eq!(vm.hours_status_text, "Calls closed now. Next calls: tomorrow 07:00–22:00");
        assert_eq!(vm.hours_tone, Tone::Warning);
        let es = build(&f, 0, None, "2026-11-26T20:00:00Z", Lang::Spanish);
        assert_eq!(es.today_text, "Hoy no hay llamadas");
        assert_eq!(es.hours_status_text, "Llamadas cerradas ahora. Próximas llamadas: mañana 07:00–22:00");
        f.hours.next_window = f.hours.next_window.map(|mut w| {
            w.local_date = date(2026, 11, 30);
            w
        });
        let later = build(&f, 0, None, "2026-11-26T20:00:00Z", Lang::English);
        assert_eq!(later.hours_status_text, "Calls closed now. Next calls: Mon 07:00–22:00");
    }

    #[test]
    fn lockdown_and_offline_banners() {
        let mut f = fixture();
        f.balances.freshness = Freshness { uplink_up: false, cache_age_secs: Some(12 * 60) };
        let unit = LockdownScope::Unit(UnitId::new("A"));
        let vm = build(&f, 0, Some(&unit), "2026-11-26T20:00:00Z", Lang::English);
        assert!(!vm.calls_open);
        let lockdown = vm.lockdown_banner.expect("lockdown banner");
        assert!(lockdown.text.starts_with("Your unit (A) is on lockdown."));
        assert_eq!(lockdown.tone, Tone::Alert);
        assert_eq!(
            vm.offline_banner,
            Some(Banner { text: "Offline — information from 12 minutes ago".into(), tone: Tone::Warning })
        );
        let es = build(&f, 0, Some(&unit), "2026-11-26T20:00:00Z", Lang::Spanish);
        assert_eq!(
            es.offline_banner.map(|b| b.text).as_deref(),
            Some("Sin conexión — información de hace 12 minutos")
        );
        assert_eq!(es.hours_status_text, "Las llamadas están en pausa por el cierre.");
    }
}
