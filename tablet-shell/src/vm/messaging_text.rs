//! Words shared by the messaging screens (mailbox, compose, stamps): counts
//! with plurals, dates, and the edge's refusals in plain English or Spanish.
//!
//! Private to `vm`: kept apart from `common.rs` (which has its own owner) so
//! both can change without merge conflicts. Every function only formats what
//! the edge said; none of them judges anything again.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use proto::domain::{Approval, CallKind, Service};
use proto::messaging::{MessagingError, RefusalReason, TextField};
use proto::tablet::{DenyReason, Freshness};

use super::common::money;
use super::Lang;

/// `3,714`: counts are grouped with a comma in both languages, as US
/// Spanish (the facility's) writes them and as prices already are.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `1 stamp` / `2 stamps`: both languages use the singular for exactly one
/// and the plural otherwise, zero included.
pub(crate) fn plural(lang: Lang, n: u64, en: (&str, &str), es: (&str, &str)) -> String {
    let (one, many) = match lang {
        Lang::English => en,
        Lang::Spanish => es,
    };
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// Characters as the edge counts them: Unicode scalar values, not bytes.
pub(crate) fn char_count(text: &str) -> u64 {
    text.chars().count() as u64
}

const MONTHS_EN: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTHS_ES: [&str; 12] =
    ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"];

fn month_name(lang: Lang, month: i8) -> &'static str {
    let index = usize::try_from(month.clamp(1, 12) - 1).unwrap_or(0);
    match lang {
        Lang::English => MONTHS_EN[index],
        Lang::Spanish => MONTHS_ES[index],
    }
}

/// `Nov 3, 2026` / `3 nov 2026`.
pub(crate) fn civil_date(lang: Lang, date: jiff::civil::Date) -> String {
    let month = month_name(lang, date.month());
    match lang {
        Lang::English => format!("{month} {}, {}", date.day(), date.year()),
        Lang::Spanish => format!("{} {month} {}", date.day(), date.year()),
    }
}

/// A list row's date: relative while recent ("5 min ago", "Yesterday"),
/// then the day ("Nov 3"), with the year only when it is not this year.
pub(crate) fn short_date(lang: Lang, at: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    let secs = now.as_second().saturating_sub(at.as_second());
    // A message stamped slightly in the future (clock skew) is "just now".
    if secs < 60 {
        return lang.pick("Just now", "Ahora").to_string();
    }
    if secs < 3600 {
        let mins = secs / 60;
        return match lang {
            Lang::English => format!("{mins} min ago"),
            Lang::Spanish => format!("hace {mins} min"),
        };
    }
    if secs < 86_400 {
        let hours = secs / 3600;
        return match lang {
            Lang::English => format!("{hours} h ago"),
            Lang::Spanish => format!("hace {hours} h"),
        };
    }
    let days = secs / 86_400;
    if days == 1 {
        return lang.pick("Yesterday", "Ayer").to_string();
    }
    if days < 7 {
        return match lang {
            Lang::English => format!("{days} days ago"),
            Lang::Spanish => format!("hace {days} días"),
        };
    }
    let (then, today) = (at.to_zoned(tz.clone()).date(), now.to_zoned(tz.clone()).date());
    let month = month_name(lang, then.month());
    match (lang, then.year() == today.year()) {
        (Lang::English, true) => format!("{month} {}", then.day()),
        (Lang::Spanish, true) => format!("{} {month}", then.day()),
        (_, false) => civil_date(lang, then),
    }
}

/// A message header's date: `Nov 3, 2026, 14:05` in the facility's zone.
pub(crate) fn full_date(lang: Lang, at: Timestamp, tz: &TimeZone) -> String {
    let zoned = at.to_zoned(tz.clone());
    format!("{}, {:02}:{:02}", civil_date(lang, zoned.date()), zoned.hour(), zoned.minute())
}

/// `5 minutes`, `2 hours`, `3 days`: how old cached data is.
fn age(lang: Lang, secs: u64) -> String {
    if secs < 60 {
        lang.pick("less than a minute", "menos de un minuto").to_string()
    } else if secs < 2 * 3600 {
        plural(lang, secs / 60, ("minute", "minutes"), ("minuto", "minutos"))
    } else if secs < 2 * 86_400 {
        plural(lang, secs / 3600, ("hour", "hours"), ("hora", "horas"))
    } else {
        plural(lang, secs / 86_400, ("day", "days"), ("día", "días"))
    }
}

/// The banner shown while the edge cannot reach central: balances may be
/// stale and purchases wait. `None` while the uplink is up.
pub(crate) fn stamps_offline_banner(freshness: &Freshness, lang: Lang) -> Option<String> {
    if freshness.uplink_up {
        return None;
    }
    Some(match (freshness.cache_age_secs, lang) {
        (Some(secs), Lang::English) => format!(
            "Offline. Balances are from {} ago; purchases are confirmed when the connection returns.",
            age(lang, secs)
        ),
        (Some(secs), Lang::Spanish) => format!(
            "Sin conexión. Los saldos son de hace {}; las compras se confirman cuando vuelva la conexión.",
            age(lang, secs)
        ),
        (None, _) => lang
            .pick(
                "Offline. Balances have not been loaded yet; purchases are confirmed when the connection returns.",
                "Sin conexión. Los saldos aún no se han cargado; las compras se confirman cuando vuelva la conexión.",
            )
            .to_string(),
    })
}

fn service_name(lang: Lang, service: Service) -> &'static str {
    match service {
        Service::Voice => lang.pick("phone calls", "llamadas"),
        Service::Video => lang.pick("video calls", "videollamadas"),
        Service::Message => lang.pick("messages", "mensajes"),
    }
}

/// Why central refused a purchase or a message, as one sentence.
pub(crate) fn refusal(reason: &RefusalReason, lang: Lang) -> String {
    match reason {
        RefusalReason::InsufficientFunds { balance_cents, price_cents } => match lang {
            Lang::English => format!(
                "Not enough money in your account: the balance was {} and the price is {}.",
                money(*balance_cents),
                money(*price_cents)
            ),
            Lang::Spanish => format!(
                "No hay suficiente dinero en tu cuenta: el saldo era {} y el precio es {}.",
                money(*balance_cents),
                money(*price_cents)
            ),
        },
        RefusalReason::PackageUnavailable { .. } => lang
            .pick(
                "That stamp package is no longer sold at that price.",
                "Ese paquete de estampillas ya no se vende a ese precio.",
            )
            .to_string(),
        RefusalReason::NoStamps => {
            lang.pick("There was no stamp to pay for it.", "No había estampilla para pagarlo.").to_string()
        }
        RefusalReason::FundingRefused { .. } => lang
            .pick(
                "The stamp purchase that paid for it failed.",
                "Falló la compra de estampillas que lo pagaba.",
            )
            .to_string(),
        RefusalReason::NotAllowed { service, .. } => match lang {
            Lang::English => format!("This contact is not approved for {}.", service_name(lang, *service)),
            Lang::Spanish => format!("Este contacto no está aprobado para {}.", service_name(lang, *service)),
        },
        // The resident cannot act on these; the detail is for staff.
        RefusalReason::KeyReused | RefusalReason::Invalid { .. } => lang
            .pick(
                "It could not be processed. Please ask staff for help.",
                "No se pudo procesar. Pide ayuda al personal.",
            )
            .to_string(),
        RefusalReason::Unavailable { .. } => lang
            .pick(
                "The service is busy right now; it will be tried again.",
                "El servicio está ocupado ahora; se volverá a intentar.",
            )
            .to_string(),
    }
}

/// Why messaging is not available, as a clause (no capital, no full stop)
/// to follow "Messages are not available: ".
fn deny_clause(reason: &DenyReason, lang: Lang) -> String {
    match reason {
        DenyReason::OutsideCallingHours { next_window: Some(window) } => match lang {
            Lang::English => format!("outside the allowed hours; next from {}", window.local_start),
            Lang::Spanish => {
                format!("fuera del horario permitido; el próximo desde las {}", window.local_start)
            }
        },
        DenyReason::OutsideCallingHours { next_window: None } => {
            lang.pick("outside the allowed hours", "fuera del horario permitido").to_string()
        }
        DenyReason::Lockdown { .. } => {
            lang.pick("the facility is on lockdown", "el centro está en cierre de seguridad").to_string()
        }
        DenyReason::Suspended { ends_on, reason, .. } => {
            let until = civil_date(lang, *ends_on);
            match (lang, reason.trim().is_empty()) {
                (Lang::English, true) => format!("suspended until {until}"),
                (Lang::Spanish, true) => format!("suspendido hasta el {until}"),
                (Lang::English, false) => format!("suspended until {until} ({})", reason.trim()),
                (Lang::Spanish, false) => format!("suspendido hasta el {until} ({})", reason.trim()),
            }
        }
        DenyReason::NotApproved { status: Approval::Pending, .. } => lang
            .pick("this contact is still waiting for approval", "este contacto aún espera aprobación")
            .to_string(),
        DenyReason::NotApproved { .. } => {
            lang.pick("this contact is not approved", "este contacto no está aprobado").to_string()
        }
        DenyReason::NumberBlocked { .. }
        | DenyReason::BarredNumber { .. }
        | DenyReason::NumberNotAuthorized { .. }
        | DenyReason::NoNumber => {
            lang.pick("this number cannot be used", "este número no se puede usar").to_string()
        }
        // The notice is the facility's own text; shown as written.
        DenyReason::PrivilegedNumber { notice } => notice.clone(),
        DenyReason::AccountClosed => {
            lang.pick("your account is closed", "tu cuenta está cerrada").to_string()
        }
        DenyReason::InsufficientBalance { .. } => {
            lang.pick("there is not enough balance", "no hay saldo suficiente").to_string()
        }
        DenyReason::CapReached { kind, resets_on } => {
            let what = match kind {
                CallKind::Voice => lang.pick("call", "llamadas"),
                CallKind::Video => lang.pick("video call", "videollamadas"),
            };
            match lang {
                Lang::English => {
                    format!("the {what} limit is reached until {}", civil_date(lang, *resets_on))
                }
                Lang::Spanish => {
                    format!("se alcanzó el límite de {what} hasta el {}", civil_date(lang, *resets_on))
                }
            }
        }
        DenyReason::ResidentInactive => {
            lang.pick("your account is not active", "tu cuenta no está activa").to_string()
        }
        DenyReason::UnknownContact { .. } => {
            lang.pick("this contact is not on your list", "este contacto no está en tu lista").to_string()
        }
        DenyReason::FacilityMisconfigured { .. } => lang
            .pick(
                "the facility's settings are not ready; ask staff",
                "la configuración del centro no está lista; pregunta al personal",
            )
            .to_string(),
    }
}

/// The edge's refusal of a compose, a draft or a purchase, as one or two
/// sentences.
pub(crate) fn messaging_error(err: &MessagingError, lang: Lang) -> String {
    match err {
        MessagingError::NoStamps { .. } => lang
            .pick(
                "You have no stamps left for this contact. Buy a stamp package first.",
                "No te quedan estampillas para este contacto. Primero compra un paquete de estampillas.",
            )
            .to_string(),
        MessagingError::TooLong { field, chars, limit } => {
            let chars =
                plural(lang, u64::from(*chars), ("character", "characters"), ("carácter", "caracteres"));
            let limit = count(u64::from(*limit));
            match (lang, field) {
                (Lang::English, TextField::Body) => format!("The message is {chars}; the limit is {limit}."),
                (Lang::English, TextField::Subject) => {
                    format!("The subject is {chars}; the limit is {limit}.")
                }
                (Lang::Spanish, TextField::Body) => {
                    format!("El mensaje tiene {chars}; el límite es {limit}.")
                }
                (Lang::Spanish, TextField::Subject) => {
                    format!("El asunto tiene {chars}; el límite es {limit}.")
                }
            }
        }
        MessagingError::TooManyAttachments { max, .. } => {
            let max = plural(lang, u64::from(*max), ("attachment", "attachments"), ("adjunto", "adjuntos"));
            match lang {
                Lang::English => format!("A message can have at most {max}."),
                Lang::Spanish => format!("Un mensaje puede tener como máximo {max}."),
            }
        }
        MessagingError::UnknownECard(_) => lang
            .pick(
                "That eCard is no longer in the catalog. Choose another one.",
                "Esa tarjeta ya no está en el catálogo. Elige otra.",
            )
            .to_string(),
        MessagingError::AttachmentNotAllowed(_) => lang
            .pick("You can attach eCards only.", "Solo puedes adjuntar tarjetas electrónicas.")
            .to_string(),
        MessagingError::InsufficientFunds { available_cents, price_cents } => match lang {
            Lang::English => format!(
                "Not enough money: you have {} available and the price is {}.",
                money(*available_cents),
                money(*price_cents)
            ),
            Lang::Spanish => format!(
                "No hay suficiente dinero: tienes {} disponibles y el precio es {}.",
                money(*available_cents),
                money(*price_cents)
            ),
        },
        MessagingError::ContactNotApproved { status: Approval::Pending } => lang
            .pick(
                "This contact is still waiting for approval for messages.",
                "Este contacto aún espera aprobación para mensajes.",
            )
            .to_string(),
        MessagingError::ContactNotApproved { .. } => lang
            .pick(
                "This contact is not approved for messages.",
                "Este contacto no está aprobado para mensajes.",
            )
            .to_string(),
        MessagingError::UnknownContact { .. } => {
            lang.pick("This contact is not on your list.", "Este contacto no está en tu lista.").to_string()
        }
        MessagingError::NotAllowed(reason) => match lang {
            Lang::English => format!("Messages are not available: {}.", deny_clause(reason, lang)),
            Lang::Spanish => format!("Los mensajes no están disponibles: {}.", deny_clause(reason, lang)),
        },
        MessagingError::UnknownPackage(_) => lang
            .pick(
                "That stamp package is no longer on sale. Choose another one.",
                "Ese paquete de estampillas ya no está a la venta. Elige otro.",
            )
            .to_string(),
        MessagingError::UnknownDraft(_) => lang
            .pick("This draft was already sent or deleted.", "Este borrador ya se envió o se borró.")
            .to_string(),
        MessagingError::Empty => lang
            .pick(
                "Write a subject or a message, or add an eCard, first.",
                "Primero escribe un asunto o un mensaje, o agrega una tarjeta.",
            )
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::domain::ContactId;
    use proto::messaging::{ECardId, PackageId};

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn counts_group_thousands_and_plurals_follow_one_versus_other() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(3714), "3,714");
        assert_eq!(count(1_234_567), "1,234,567");
        let stamps = |lang, n| plural(lang, n, ("stamp", "stamps"), ("estampilla", "estampillas"));
        assert_eq!(stamps(Lang::English, 0), "0 stamps");
        assert_eq!(stamps(Lang::English, 1), "1 stamp");
        assert_eq!(stamps(Lang::Spanish, 1), "1 estampilla");
        assert_eq!(stamps(Lang::Spanish, 40), "40 estampillas");
    }

    #[test]
    fn characters_are_counted_not_bytes() {
        assert_eq!(char_count("niño"), 4);
        assert_eq!("niño".len(), 5);
        assert_eq!(char_count("hola 😀"), 6);
    }

    #[test]
    fn short_dates_are_relative_then_calendar() {
        let now = ts(1_795_000_000); // 2026-11-18 in UTC
        let utc = TimeZone::UTC;
        assert_eq!(short_date(Lang::English, ts(1_795_000_000 + 5), now, &utc), "Just now");
        assert_eq!(short_date(Lang::English, ts(1_795_000_000 - 300), now, &utc), "5 min ago");
        assert_eq!(short_date(Lang::Spanish, ts(1_795_000_000 - 300), now, &utc), "hace 5 min");
        assert_eq!(short_date(Lang::English, ts(1_795_000_000 - 3 * 3600), now, &utc), "3 h ago");
        assert_eq!(short_date(Lang::Spanish, ts(1_795_000_000 - 86_400 - 10), now, &utc), "Ayer");
        assert_eq!(short_date(Lang::English, ts(1_795_000_000 - 3 * 86_400), now, &utc), "3 days ago");
        assert_eq!(short_date(Lang::Spanish, ts(1_795_000_000 - 3 * 86_400), now, &utc), "hace 3 días");
        let older = ts(1_795_000_000 - 15 * 86_400);
        assert_eq!(short_date(Lang::English, older, now, &utc), "Nov 3");
        assert_eq!(short_date(Lang::Spanish, older, now, &utc), "3 nov");
        let last_year = ts(1_795_000_000 - 365 * 86_400);
        assert_eq!(short_date(Lang::English, last_year, now, &utc), "Nov 18, 2025");
    }

    #[test]
    fn offline_banner_only_while_the_uplink_is_down() {
        assert_eq!(
            stamps_offline_banner(&Freshness { uplink_up: true, cache_age_secs: Some(9000) }, Lang::English),
            None
        );
        let down = Freshness { uplink_up: false, cache_age_secs: Some(300) };
        assert_eq!(
            stamps_offline_banner(&down, Lang::English).unwrap(),
            "Offline. Balances are from 5 minutes ago; purchases are confirmed when the connection returns."
        );
        assert!(stamps_offline_banner(&down, Lang::Spanish)
            .unwrap()
            .starts_with("Sin conexión. Los saldos son de hace 5 minutos"));
        let hours = Freshness { uplink_up: false, cache_age_secs: Some(3 * 3600) };
        assert!(stamps_offline_banner(&hours, Lang::English).unwrap().contains("from 3 hours ago"));
        let never = Freshness { uplink_up: false, cache_age_secs: None };
        assert!(stamps_offline_banner(&never, Lang::English).unwrap().contains("not been loaded"));
    }

    #[test]
    fn every_refusal_has_words_in_both_languages() {
        let reasons = [
            RefusalReason::InsufficientFunds { balance_cents: 200, price_cents: 475 },
            RefusalReason::PackageUnavailable { package: PackageId(1) },
            RefusalReason::NoStamps,
            RefusalReason::FundingRefused { purchase: proto::messaging::IdempotencyKey::from_u128(1) },
            RefusalReason::NotAllowed { service: Service::Message, detail: "x".into() },
            RefusalReason::KeyReused,
            RefusalReason::Invalid { detail: "x".into() },
            RefusalReason::Unavailable { detail: "x".into() },
        ];
        for reason in &reasons {
            let (en, es) = (refusal(reason, Lang::English), refusal(reason, Lang::Spanish));
            assert!(en.ends_with('.') && es.ends_with('.'), "{en} / {es}");
            assert_ne!(en, es);
            assert!(!en.contains("x)") && !en.contains(": x"), "details are for staff: {en}");
        }
        assert_eq!(
            refusal(&reasons[0], Lang::English),
            "Not enough money in your account: the balance was $2.00 and the price is $4.75."
        );
        assert_eq!(refusal(&reasons[4], Lang::Spanish), "Este contacto no está aprobado para mensajes.");
    }

    #[test]
    fn every_messaging_error_has_words_in_both_languages() {
        let errors = [
            MessagingError::NoStamps { contact: ContactId(1) },
            MessagingError::TooLong { field: TextField::Body, chars: 4001, limit: 4000 },
            MessagingError::TooLong { field: TextField::Subject, chars: 121, limit: 120 },
            MessagingError::TooManyAttachments { count: 6, max: 5 },
            MessagingError::UnknownECard(ECardId(3)),
            MessagingError::AttachmentNotAllowed(proto::messaging::Attachment::Photo(
                proto::messaging::MediaId(1),
            )),
            MessagingError::InsufficientFunds { available_cents: 200, price_cents: 475 },
            MessagingError::ContactNotApproved { status: Approval::Pending },
            MessagingError::ContactNotApproved { status: Approval::Rejected },
            MessagingError::UnknownContact { contact: ContactId(1) },
            MessagingError::NotAllowed(DenyReason::AccountClosed),
            MessagingError::UnknownPackage(PackageId(2)),
            MessagingError::UnknownDraft(proto::messaging::MessageId::from_u128(1)),
            MessagingError::Empty,
        ];
        for err in &errors {
            let (en, es) = (messaging_error(err, Lang::English), messaging_error(err, Lang::Spanish));
            assert!(en.ends_with('.') && es.ends_with('.'), "{en} / {es}");
            assert_ne!(en, es);
        }
        assert_eq!(
            messaging_error(&errors[1], Lang::English),
            "The message is 4,001 characters; the limit is 4,000."
        );
        assert_eq!(
            messaging_error(&errors[1], Lang::Spanish),
            "El mensaje tiene 4,001 caracteres; el límite es 4,000."
        );
        assert_eq!(
            messaging_error(&errors[2], Lang::English),
            "The subject is 121 characters; the limit is 120."
        );
        assert_eq!(messaging_error(&errors[3], Lang::English), "A message can have at most 5 attachments.");
        assert_eq!(
            messaging_error(&errors[3], Lang::Spanish),
            "Un mensaje puede tener como máximo 5 adjuntos."
        );
        assert_eq!(
            messaging_error(&errors[6], Lang::English),
            "Not enough money: you have $2.00 available and the price is $4.75."
        );
        assert_eq!(
            messaging_error(&errors[10], Lang::Spanish),
            "Los mensajes no están disponibles: tu cuenta está cerrada."
        );
    }

    #[test]
    fn every_deny_reason_reads_as_a_clause() {
        let date = jiff::civil::date(2026, 12, 1);
        let reasons = [
            DenyReason::OutsideCallingHours { next_window: None },
            DenyReason::Lockdown { scope: proto::domain::LockdownScope::Facility },
            DenyReason::Suspended {
                services: vec![Service::Message],
                ends_on: date,
                reason: "rule 12".into(),
            },
            DenyReason::NotApproved { service: Service::Message, status: Approval::Pending },
            DenyReason::NotApproved { service: Service::Message, status: Approval::Rejected },
            DenyReason::NoNumber,
            DenyReason::AccountClosed,
            DenyReason::InsufficientBalance { balance_cents: 0, rate_cents_per_min: 10 },
            DenyReason::CapReached { kind: CallKind::Voice, resets_on: date },
            DenyReason::ResidentInactive,
            DenyReason::UnknownContact { contact: ContactId(1) },
            DenyReason::FacilityMisconfigured { detail: "tz".into() },
        ];
        for reason in &reasons {
            assert_ne!(deny_clause(reason, Lang::English), deny_clause(reason, Lang::Spanish));
        }
        assert_eq!(deny_clause(&reasons[2], Lang::English), "suspended until Dec 1, 2026 (rule 12)");
        assert_eq!(deny_clause(&reasons[2], Lang::Spanish), "suspendido hasta el 1 dic 2026 (rule 12)");
    }
}
