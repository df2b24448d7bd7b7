//! Formatting shared by every screen: language, money, durations, tones,
//! dates, and the plain words for the edge's refusals and offline state.

use jiff::civil::{Date, Weekday};
use proto::domain::{Approval, CallKind, Cents, LockdownScope, Service};
use proto::tablet::{Availability, ContactView, DenyReason, Freshness, WindowView};

/// The languages the shell ships; switchable at run time from Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English (`en`), the default.
    #[default]
    English,
    /// Spanish (`es`).
    Spanish,
}

impl Lang {
    /// Every shipped language, in picker order.
    pub const ALL: [Lang; 2] = [Lang::English, Lang::Spanish];

    /// BCP 47 code, as the settings file and the CLI take it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::English => "en",
            Lang::Spanish => "es",
        }
    }

    /// The language for a BCP 47 code, ignoring case; `None` if not shipped.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code().eq_ignore_ascii_case(code))
    }

    /// The language's own name, as the language picker shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::English => "English",
            Lang::Spanish => "Español",
        }
    }

    /// Picks the English or the Spanish text.
    pub fn pick<'a>(self, english: &'a str, spanish: &'a str) -> &'a str {
        match self {
            Lang::English => english,
            Lang::Spanish => spanish,
        }
    }
}

/// What a piece of text means, so the theme can colour it. Never the only
/// carrier of meaning: the text itself always says it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    /// Nothing special.
    #[default]
    Normal,
    /// Needs attention soon (e.g. the last minute of a call, offline data).
    Warning,
    /// Something was refused or failed.
    Alert,
    /// Something succeeded.
    Positive,
}

/// `$12.50`, `-$0.05`; the facility's accounts are in US dollars in both
/// languages.
pub fn money(cents: Cents) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}${}.{:02}", group_thousands(abs / 100), abs % 100)
}

fn group_thousands(mut n: u64) -> String {
    let mut groups = Vec::new();
    loop {
        if n < 1000 {
            groups.push(n.to_string());
            break;
        }
        groups.push(format!("{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join(",")
}

/// A call timer: `4:05`, `12:00`, `1:02:03`.
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A line of text across the top of a screen, with the tone the theme
/// colours it by (the words carry the meaning on their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// The full sentence.
    pub text: String,
    /// How the theme colours it.
    pub tone: Tone,
}

/// A per-minute price: `$0.20 a minute`, `$0.20 por minuto`.
pub fn per_minute(cents: u32, lang: Lang) -> String {
    format!("{} {}", money(i64::from(cents)), lang.pick("a minute", "por minuto"))
}

/// `1 minute`, `3 minutes`, `0 minutes`: English and Spanish both use the
/// singular for exactly one and the plural otherwise, so one rule serves both.
pub fn count(n: u64, one: &str, other: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {other}")
    }
}

/// A number of minutes in words: `1 minute`, `15 minutos`.
pub fn minutes(n: u64, lang: Lang) -> String {
    count(n, lang.pick("minute", "minuto"), lang.pick("minutes", "minutos"))
}

/// A coarse age in words, in the largest whole unit (rounded down):
/// `45 seconds`, `12 minutes`, `1 hour`, `3 días`.
pub fn age_words(secs: u64, lang: Lang) -> String {
    const MIN: u64 = 60;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    if secs < MIN {
        count(secs, lang.pick("second", "segundo"), lang.pick("seconds", "segundos"))
    } else if secs < HOUR {
        minutes(secs / MIN, lang)
    } else if secs < DAY {
        count(secs / HOUR, lang.pick("hour", "hora"), lang.pick("hours", "horas"))
    } else {
        count(secs / DAY, lang.pick("day", "día"), lang.pick("days", "días"))
    }
}

/// The full weekday name: `Thursday`, `jueves` (Spanish weekdays are not
/// capitalised mid-sentence).
pub fn weekday_name(day: Weekday, lang: Lang) -> &'static str {
    match day {
        Weekday::Monday => lang.pick("Monday", "lunes"),
        Weekday::Tuesday => lang.pick("Tuesday", "martes"),
        Weekday::Wednesday => lang.pick("Wednesday", "miércoles"),
        Weekday::Thursday => lang.pick("Thursday", "jueves"),
        Weekday::Friday => lang.pick("Friday", "viernes"),
        Weekday::Saturday => lang.pick("Saturday", "sábado"),
        Weekday::Sunday => lang.pick("Sunday", "domingo"),
    }
}

/// The short weekday name for tight spaces: `Thu`, `jue`.
pub fn weekday_short(day: Weekday, lang: Lang) -> &'static str {
    match day {
        Weekday::Monday => lang.pick("Mon", "lun"),
        Weekday::Tuesday => lang.pick("Tue", "mar"),
        Weekday::Wednesday => lang.pick("Wed", "mié"),
        Weekday::Thursday => lang.pick("Thu", "jue"),
        Weekday::Friday => lang.pick("Fri", "vie"),
        Weekday::Saturday => lang.pick("Sat", "sáb"),
        Weekday::Sunday => lang.pick("Sun", "dom"),
    }
}

fn month_short(month: i8, lang: Lang) -> &'static str {
    const EN: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const ES: [&str; 12] =
        ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"];
    let index = usize::try_from(month.saturating_sub(1)).unwrap_or(0).min(11);
    lang.pick(EN[index], ES[index])
}

/// A date with its weekday and year, so a date months away is not mistaken
/// for one this week: `Thu, Dec 3, 2026`, `jue 3 dic 2026`.
pub fn date_label(date: Date, lang: Lang) -> String {
    let day = weekday_short(date.weekday(), lang);
    let month = month_short(date.month(), lang);
    match lang {
        Lang::English => format!("{day}, {month} {}, {}", date.day(), date.year()),
        Lang::Spanish => format!("{day} {} {month} {}", date.day(), date.year()),
    }
}

/// A calling window as its weekday and local times: `Thu 07:00–22:00`.
pub fn window_label(window: &WindowView, lang: Lang) -> String {
    format!(
        "{} {}",
        weekday_short(window.local_date.weekday(), lang),
        time_range(&window.local_start, &window.local_end)
    )
}

/// `07:00–22:00` (an en dash, as both languages write ranges). A window
/// that runs to midnight ends at `24:00`, not at the `00:00` the clock shows.
pub fn time_range(start: &str, end: &str) -> String {
    format!("{start}\u{2013}{}", window_end(end))
}

/// The end of a window: `24:00` for one that runs to midnight.
pub fn window_end(end: &str) -> &str {
    if end == "00:00" {
        "24:00"
    } else {
        end
    }
}

/// A phone number as people read it: North American E.164 numbers become
/// `(555) 123-4567`; anything else (short codes, other countries) is kept as
/// the edge sent it rather than guessed at.
pub fn phone_label(number: &str) -> String {
    let digits = number.strip_prefix("+1").unwrap_or("");
    if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("({}) {}-{}", &digits[..3], &digits[3..6], &digits[6..])
    } else {
        number.to_string()
    }
}

/// The service as a plural noun inside a sentence: `video calls`,
/// `videollamadas`.
pub fn service_noun(service: Service, lang: Lang) -> &'static str {
    match service {
        Service::Voice => lang.pick("phone calls", "llamadas telefónicas"),
        Service::Video => lang.pick("video calls", "videollamadas"),
        Service::Message => lang.pick("messages", "mensajes"),
    }
}

/// The call kind as a title: `Phone call`, `Videollamada`.
pub fn call_kind_title(kind: CallKind, lang: Lang) -> &'static str {
    match kind {
        CallKind::Voice => lang.pick("Phone call", "Llamada telefónica"),
        CallKind::Video => lang.pick("Video call", "Videollamada"),
    }
}

/// `a, b and c` / `a, b y c`.
fn join_words(words: &[&str], lang: Lang) -> String {
    match words {
        [] => String::new(),
        [only] => (*only).to_string(),
        [rest @ .., last] => format!("{} {} {last}", rest.join(", "), lang.pick("and", "y")),
    }
}

/// The lockdown banner and refusal: who it covers and what it stops. The
/// edge stops calls only (a lockdown does not stop messaging), so the words
/// say calls.
pub fn lockdown_banner(scope: &LockdownScope, lang: Lang) -> String {
    match (scope, lang) {
        (LockdownScope::Facility, Lang::English) => {
            "The facility is on lockdown. Calls are paused until it ends.".to_string()
        }
        (LockdownScope::Facility, Lang::Spanish) => {
            "El centro está en cierre de seguridad. Las llamadas están en pausa hasta que termine."
                .to_string()
        }
        (LockdownScope::Unit(unit), Lang::English) => {
            format!("Your unit ({unit}) is on lockdown. Calls are paused until it ends.")
        }
        (LockdownScope::Unit(unit), Lang::Spanish) => format!(
            "Su unidad ({unit}) está en cierre de seguridad. Las llamadas están en pausa hasta que termine."
        ),
    }
}

/// The edge's refusal in plain, kind words for the resident, in full
/// sentences. Shows the edge's decision only; nothing here judges again.
pub fn deny_reason(reason: &DenyReason, lang: Lang) -> String {
    match reason {
        DenyReason::OutsideCallingHours { next_window } => {
            let closed = lang.pick("Calls are closed now.", "Las llamadas están cerradas ahora.");
            match next_window {
                Some(window) => format!(
                    "{closed} {} {}",
                    lang.pick("Next calls:", "Próximas llamadas:"),
                    window_label(window, lang)
                ),
                None => format!(
                    "{closed} {}",
                    lang.pick(
                        "No calling hours are scheduled yet.",
                        "Todavía no hay horario de llamadas programado."
                    )
                ),
            }
        }
        DenyReason::Lockdown { scope } => lockdown_banner(scope, lang),
        DenyReason::Suspended { services, ends_on, reason } => {
            let mut names: Vec<Service> = services.clone();
            names.sort();
            names.dedup();
            let words: Vec<&str> = names.iter().map(|s| service_noun(*s, lang)).collect();
            let date = date_label(*ends_on, lang);
            let mut text = match lang {
                Lang::English => {
                    let what =
                        if words.is_empty() { "services".to_string() } else { join_words(&words, lang) };
                    format!("Your {what} are suspended until the end of {date}.")
                }
                Lang::Spanish => {
                    // Spanish agrees in gender: any masculine noun (mensajes,
                    // servicios) makes the participle masculine.
                    let (what, masculine) = if words.is_empty() {
                        ("servicios".to_string(), true)
                    } else {
                        (join_words(&words, lang), names.contains(&Service::Message))
                    };
                    let part = if masculine { "suspendidos" } else { "suspendidas" };
                    format!("Sus {what} están {part} hasta el final del {date}.")
                }
            };
            let reason = reason.trim();
            if !reason.is_empty() {
                text.push_str(&format!(" {} {reason}", lang.pick("Reason:", "Motivo:")));
            }
            text
        }
        DenyReason::NotApproved { service, status } => {
            let noun = service_noun(*service, lang);
            match (status, lang) {
                (Approval::Pending, Lang::English) => {
                    format!("The facility has not approved {noun} with this contact yet.")
                }
                (Approval::Pending, Lang::Spanish) => {
                    let article = if *service == Service::Message { "los" } else { "las" };
                    format!("El centro todavía no ha aprobado {article} {noun} con este contacto.")
                }
                (Approval::Rejected, Lang::English) => {
                    format!("The facility did not approve {noun} with this contact.")
                }
                (Approval::Rejected, Lang::Spanish) => {
                    let article = if *service == Service::Message { "los" } else { "las" };
                    format!("El centro no aprobó {article} {noun} con este contacto.")
                }
                (Approval::Approved, Lang::English) => {
                    format!("{} with this contact are not available now.", capitalise(noun))
                }
                (Approval::Approved, Lang::Spanish) => {
                    let article = if *service == Service::Message { "Los" } else { "Las" };
                    format!("{article} {noun} con este contacto no están disponibles ahora.")
                }
            }
        }
        // Worded so nobody is blamed: the resident is not told who blocked
        // the number, only that calls to it cannot go through.
        DenyReason::NumberBlocked { number, .. } => match lang {
            Lang::English => format!("Calls to {} cannot go through right now.", phone_label(number)),
            Lang::Spanish => {
                format!("Las llamadas al {} no se pueden realizar en este momento.", phone_label(number))
            }
        },
        DenyReason::AccountClosed => lang
            .pick(
                "This contact's account is closed, so calls and messages cannot go through.",
                "La cuenta de este contacto está cerrada, así que las llamadas y los mensajes no \
                 pueden realizarse.",
            )
            .to_string(),
        // The notice is the facility's own text; English shows it as given,
        // Spanish leads with our own sentence because the notice may be in
        // English only.
        DenyReason::PrivilegedNumber { notice } => {
            let notice = notice.trim();
            match lang {
                Lang::English if !notice.is_empty() => notice.to_string(),
                Lang::English => {
                    "Calls to attorneys cannot use this system. Ask staff about a legal call.".to_string()
                }
                Lang::Spanish => {
                    let lead = "Las llamadas a abogados no pueden usar este sistema. Pregunte al personal \
                                por una llamada legal.";
                    if notice.is_empty() {
                        lead.to_string()
                    } else {
                        format!("{lead} Aviso del centro: {notice}")
                    }
                }
            }
        }
        DenyReason::BarredNumber { number } => match lang {
            Lang::English => format!(
                "{} cannot be called from here. Toll-free, premium, emergency and information numbers \
                 are not available.",
                phone_label(number)
            ),
            Lang::Spanish => format!(
                "No se puede llamar al {} desde aquí. Los números gratuitos, de tarifa especial, de \
                 emergencia y de información no están disponibles.",
                phone_label(number)
            ),
        },
        DenyReason::NumberNotAuthorized { number } => match lang {
            Lang::English => {
                format!("{} is not one of this contact's approved numbers.", phone_label(number))
            }
            Lang::Spanish => {
                format!("El {} no es uno de los números aprobados de este contacto.", phone_label(number))
            }
        },
        DenyReason::NoNumber => lang
            .pick(
                "This contact has no approved phone number yet.",
                "Este contacto todavía no tiene un número de teléfono aprobado.",
            )
            .to_string(),
        DenyReason::InsufficientBalance { balance_cents, rate_cents_per_min } => {
            let balance = money(*balance_cents);
            let rate = money(i64::from(*rate_cents_per_min));
            match lang {
                Lang::English => format!(
                    "This contact has {balance}; video calls cost {rate} a minute. They can add money to \
                     their account."
                ),
                Lang::Spanish => format!(
                    "Este contacto tiene {balance}; las videollamadas cuestan {rate} por minuto. Puede \
                     agregar dinero a su cuenta."
                ),
            }
        }
        DenyReason::CapReached { kind, resets_on } => {
            let date = date_label(*resets_on, lang);
            match (kind, lang) {
                (CallKind::Voice, Lang::English) => format!(
                    "You have used all your phone call minutes for this period. More minutes on {date}."
                ),
                (CallKind::Video, Lang::English) => format!(
                    "You have used all your video call minutes for this period. More minutes on {date}."
                ),
                (CallKind::Voice, Lang::Spanish) => format!(
                    "Ya usó todos sus minutos de llamadas telefónicas de este período. Tendrá más minutos \
                     el {date}."
                ),
                (CallKind::Video, Lang::Spanish) => format!(
                    "Ya usó todos sus minutos de videollamadas de este período. Tendrá más minutos el {date}."
                ),
            }
        }
        DenyReason::ResidentInactive => lang
            .pick(
                "Your account is not active. Please ask staff for help.",
                "Su cuenta no está activa. Pida ayuda al personal.",
            )
            .to_string(),
        DenyReason::UnknownContact { .. } => lang
            .pick("This contact is no longer on your list.", "Este contacto ya no está en su lista.")
            .to_string(),
        // The detail is for technicians; the resident only learns that the
        // fault is not theirs and whom to tell.
        DenyReason::FacilityMisconfigured { .. } => lang
            .pick(
                "This service is not set up correctly at this facility yet. Please tell staff.",
                "Este servicio todavía no está bien configurado en este centro. Avise al personal.",
            )
            .to_string(),
    }
}

/// The refusal in a word or two, for a status chip next to a button; the
/// full sentence from [`deny_reason`] goes with it.
pub fn deny_short(reason: &DenyReason, lang: Lang) -> &'static str {
    match reason {
        DenyReason::OutsideCallingHours { .. } => lang.pick("Closed now", "Cerrado ahora"),
        DenyReason::Lockdown { .. } => lang.pick("Lockdown", "Cierre de seguridad"),
        DenyReason::Suspended { .. } => lang.pick("Suspended", "Suspendido"),
        DenyReason::NotApproved { status: Approval::Pending, .. } => {
            lang.pick("Waiting for approval", "Esperando aprobación")
        }
        DenyReason::NotApproved { .. } => lang.pick("Not approved", "No aprobado"),
        DenyReason::NumberBlocked { .. } => lang.pick("Unavailable", "No disponible"),
        DenyReason::AccountClosed => lang.pick("Account closed", "Cuenta cerrada"),
        DenyReason::PrivilegedNumber { .. } => {
            lang.pick("Legal call: ask staff", "Llamada legal: consulte al personal")
        }
        DenyReason::BarredNumber { .. } => lang.pick("Number not allowed", "Número no permitido"),
        DenyReason::NumberNotAuthorized { .. } => lang.pick("Number not approved", "Número no aprobado"),
        DenyReason::NoNumber => lang.pick("No number", "Sin número"),
        DenyReason::InsufficientBalance { .. } => lang.pick("Low balance", "Saldo insuficiente"),
        DenyReason::CapReached { .. } => lang.pick("Minutes used up", "Minutos agotados"),
        DenyReason::ResidentInactive => lang.pick("Account inactive", "Cuenta inactiva"),
        DenyReason::UnknownContact { .. } => lang.pick("Unknown contact", "Contacto desconocido"),
        DenyReason::FacilityMisconfigured { .. } => lang.pick("Not set up", "Sin configurar"),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether a contact's video balance is worth showing: not when the edge
/// refuses video for lack of approval, since money for a service the
/// resident cannot use would only confuse.
pub fn shows_video_balance(contact: &ContactView) -> bool {
    !matches!(contact.video, Availability::Unavailable(DenyReason::NotApproved { .. }))
}

/// The offline banner, or `None` while the uplink is up: `Offline —
/// information from 12 minutes ago`. Says how old the data is so a resident
/// knows a balance or approval may have changed since.
pub fn offline_banner(freshness: &Freshness, lang: Lang) -> Option<String> {
    if freshness.uplink_up {
        return None;
    }
    Some(match (freshness.cache_age_secs, lang) {
        (None, Lang::English) => "Offline \u{2014} information never updated".to_string(),
        (None, Lang::Spanish) => "Sin conexión \u{2014} la información nunca se actualizó".to_string(),
        (Some(age), Lang::English) => {
            format!("Offline \u{2014} information from {} ago", age_words(age, lang))
        }
        (Some(age), Lang::Spanish) => {
            format!("Sin conexión \u{2014} información de hace {}", age_words(age, lang))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use jiff::civil::date;
    use proto::domain::{BlockScope, UnitId};

    fn window(day: Date, start: &str, end: &str) -> WindowView {
        WindowView {
            starts_at: jiff::Timestamp::UNIX_EPOCH,
            ends_at: jiff::Timestamp::UNIX_EPOCH,
            local_start: start.into(),
            local_end: end.into(),
            local_date: day,
        }
    }

    #[test]
    fn counts_use_singular_for_one_only() {
        assert_eq!(minutes(1, Lang::English), "1 minute");
        assert_eq!(minutes(0, Lang::English), "0 minutes");
        assert_eq!(minutes(15, Lang::Spanish), "15 minutos");
        assert_eq!(minutes(1, Lang::Spanish), "1 minuto");
    }

    #[test]
    fn weekdays_and_dates_in_both_languages() {
        assert_eq!(weekday_name(Weekday::Thursday, Lang::English), "Thursday");
        assert_eq!(weekday_name(Weekday::Wednesday, Lang::Spanish), "miércoles");
        // 2026-12-03 is a Thursday.
        assert_eq!(date_label(date(2026, 12, 3), Lang::English), "Thu, Dec 3, 2026");
        assert_eq!(date_label(date(2026, 12, 3), Lang::Spanish), "jue 3 dic 2026");
    }

    #[test]
    fn outside_hours_names_the_next_window() {
        let reason = DenyReason::OutsideCallingHours {
            next_window: Some(window(date(2026, 11, 26), "07:00", "22:00")),
        };
        assert_eq!(deny_reason(&reason, Lang::English), "Calls are closed now. Next calls: Thu 07:00–22:00");
        assert_eq!(
            deny_reason(&reason, Lang::Spanish),
            "Las llamadas están cerradas ahora. Próximas llamadas: jue 07:00–22:00"
        );
        let none = DenyReason::OutsideCallingHours { next_window: None };
        assert!(deny_reason(&none, Lang::English).starts_with("Calls are closed now."));
    }

    #[test]
    fn lockdown_names_facility_or_unit() {
        let facility = DenyReason::Lockdown { scope: LockdownScope::Facility };
        assert!(deny_reason(&facility, Lang::English).starts_with("The facility is on lockdown."));
        let unit = DenyReason::Lockdown { scope: LockdownScope::Unit(UnitId::new("B")) };
        assert!(deny_reason(&unit, Lang::English).starts_with("Your unit (B) is on lockdown."));
        assert!(deny_reason(&unit, Lang::Spanish).starts_with("Su unidad (B) está en cierre"));
    }

    #[test]
    fn suspension_lists_services_date_and_reason() {
        let reason = DenyReason::Suspended {
            services: vec![Service::Message, Service::Video],
            ends_on: date(2026, 12, 3),
            reason: "Rule violation".into(),
        };
        assert_eq!(
            deny_reason(&reason, Lang::English),
            "Your video calls and messages are suspended until the end of Thu, Dec 3, 2026. Reason: Rule \
             violation"
        );
        assert_eq!(
            deny_reason(&reason, Lang::Spanish),
            "Sus videollamadas y mensajes están suspendidos hasta el final del jue 3 dic 2026. Motivo: Rule \
             violation"
        );
        let video_only = DenyReason::Suspended {
            services: vec![Service::Video],
            ends_on: date(2026, 12, 3),
            reason: " ".into(),
        };
        assert_eq!(
            deny_reason(&video_only, Lang::Spanish),
            "Sus videollamadas están suspendidas hasta el final del jue 3 dic 2026."
        );
    }

    #[test]
    fn blocked_number_blames_nobody() {
        let reason =
            DenyReason::NumberBlocked { number: "+15551234567".into(), scope: BlockScope::AllFacilities };
        for lang in Lang::ALL {
            let text = deny_reason(&reason, lang).to_lowercase();
            assert!(text.contains("(555) 123-4567"), "{text}");
            for word in ["block", "bloque", "refus", "rechaz", "declin"] {
                assert!(!text.contains(word), "{text}");
            }
        }
    }

    #[test]
    fn balance_and_cap_and_privileged() {
        let reason = DenyReason::InsufficientBalance { balance_cents: 0, rate_cents_per_min: 20 };
        assert!(deny_reason(&reason, Lang::English)
            .starts_with("This contact has $0.00; video calls cost $0.20 a minute."));
        assert!(
            deny_reason(&reason, Lang::Spanish).contains("$0.00; las videollamadas cuestan $0.20 por minuto")
        );
        let cap = DenyReason::CapReached { kind: CallKind::Video, resets_on: date(2026, 12, 3) };
        assert!(deny_reason(&cap, Lang::English).ends_with("More minutes on Thu, Dec 3, 2026."));
        assert!(deny_reason(&cap, Lang::Spanish).ends_with("el jue 3 dic 2026."));
        let notice = DenyReason::PrivilegedNumber { notice: "Ask your counselor.".into() };
        assert_eq!(deny_reason(&notice, Lang::English), "Ask your counselor.");
        assert!(deny_reason(&notice, Lang::Spanish).ends_with("Aviso del centro: Ask your counselor."));
    }

    #[test]
    fn not_approved_distinguishes_pending_and_rejected() {
        let pending = DenyReason::NotApproved { service: Service::Message, status: Approval::Pending };
        assert_eq!(
            deny_reason(&pending, Lang::English),
            "The facility has not approved messages with this contact yet."
        );
        assert_eq!(
            deny_reason(&pending, Lang::Spanish),
            "El centro todavía no ha aprobado los mensajes con este contacto."
        );
        let rejected = DenyReason::NotApproved { service: Service::Video, status: Approval::Rejected };
        assert_eq!(
            deny_reason(&rejected, Lang::Spanish),
            "El centro no aprobó las videollamadas con este contacto."
        );
        assert_eq!(deny_short(&pending, Lang::English), "Waiting for approval");
    }

    #[test]
    fn every_reason_has_words_in_both_languages() {
        let reasons = [
            DenyReason::AccountClosed,
            DenyReason::BarredNumber { number: "911".into() },
            DenyReason::NumberNotAuthorized { number: "+15550000000".into() },
            DenyReason::NoNumber,
            DenyReason::ResidentInactive,
            DenyReason::UnknownContact { contact: proto::domain::ContactId(4) },
            DenyReason::FacilityMisconfigured { detail: "tz".into() },
            DenyReason::NotApproved { service: Service::Voice, status: Approval::Approved },
        ];
        for reason in &reasons {
            let (en, es) = (deny_reason(reason, Lang::English), deny_reason(reason, Lang::Spanish));
            assert!(!en.is_empty() && !es.is_empty() && en != es, "{reason:?}");
            assert!(!deny_short(reason, Lang::Spanish).is_empty());
        }
        assert!(!deny_reason(&reasons[6], Lang::English).contains("tz"));
    }

    #[test]
    fn offline_banner_says_how_old() {
        let up = Freshness { uplink_up: true, cache_age_secs: Some(5) };
        assert_eq!(offline_banner(&up, Lang::English), None);
        let banner =
            |age| offline_banner(&Freshness { uplink_up: false, cache_age_secs: age }, Lang::English);
        let banner_es =
            |age| offline_banner(&Freshness { uplink_up: false, cache_age_secs: age }, Lang::Spanish);
        assert_eq!(banner(Some(12 * 60 + 59)).as_deref(), Some("Offline — information from 12 minutes ago"));
        assert_eq!(banner(Some(1)).as_deref(), Some("Offline — information from 1 second ago"));
        assert_eq!(banner(Some(45)).as_deref(), Some("Offline — information from 45 seconds ago"));
        assert_eq!(banner(Some(3600)).as_deref(), Some("Offline — information from 1 hour ago"));
        assert_eq!(banner(Some(3 * 86400)).as_deref(), Some("Offline — information from 3 days ago"));
        assert_eq!(banner(None).as_deref(), Some("Offline — information never updated"));
        assert_eq!(banner_es(Some(60)).as_deref(), Some("Sin conexión — información de hace 1 minuto"));
        assert_eq!(banner_es(Some(7200)).as_deref(), Some("Sin conexión — información de hace 2 horas"));
        assert_eq!(banner_es(None).as_deref(), Some("Sin conexión — la información nunca se actualizó"));
    }

    #[test]
    fn phone_numbers_read_naturally() {
        assert_eq!(phone_label("+15551234567"), "(555) 123-4567");
        assert_eq!(phone_label("911"), "911");
        assert_eq!(phone_label("+525512345678"), "+525512345678");
    }

    #[test]
    fn money_has_two_decimals_and_groups_thousands() {
        assert_eq!(money(0), "$0.00");
        assert_eq!(money(5), "$0.05");
        assert_eq!(money(2500), "$25.00");
        assert_eq!(money(123_456_789), "$1,234,567.89");
        assert_eq!(money(-5), "-$0.05");
    }

    #[test]
    fn clock_shows_hours_only_when_needed() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(245), "4:05");
        assert_eq!(clock(720), "12:00");
        assert_eq!(clock(3723), "1:02:03");
    }

    #[test]
    fn language_codes_round_trip() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code("ES"), Some(Lang::Spanish));
        assert_eq!(Lang::from_code("fr"), None);
    }

    #[test]
    fn a_window_to_midnight_ends_at_24_00() {
        assert_eq!(time_range("07:00", "22:00"), "07:00\u{2013}22:00");
        assert_eq!(time_range("00:00", "00:00"), "00:00\u{2013}24:00");
    }
}
