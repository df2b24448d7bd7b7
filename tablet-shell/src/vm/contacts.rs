//! The contacts screen: each contact with a button per service (call, video
//! call, message), enabled or not as the edge decided, and why not in words.

use proto::domain::{ContactId, Service};
use proto::tablet::{Availability, ContactList, ContactView};

use super::common::{
    deny_reason, deny_short, money, offline_banner, per_minute, phone_label, shows_video_balance, Banner,
    Lang, Tone,
};

/// One service of one contact: its button and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAction {
    /// Which service the button starts.
    pub service: Service,
    /// The button text: `Call`, `Video call`, `Message`.
    pub label: String,
    /// What a screen reader says for the button, with the contact's name.
    pub accessible: String,
    /// `Available` or a short reason such as `Closed now`.
    pub status: String,
    /// The full sentence from the edge's reason; empty when available.
    pub reason: String,
    /// The edge allows it now.
    pub enabled: bool,
    /// Normal when available, Warning when not.
    pub tone: Tone,
}

/// One contact row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    /// The contact to send with the request.
    pub id: ContactId,
    /// The contact's name as the edge gave it.
    pub name: String,
    /// Phone numbers as people read them.
    pub numbers: Vec<String>,
    /// The phone call button.
    pub voice: ServiceAction,
    /// The video call button.
    pub video: ServiceAction,
    /// The message button.
    pub message: ServiceAction,
    /// Whether to show the video balance (hidden when video is not approved).
    pub show_video_balance: bool,
    /// `Video balance: $12.50`
    pub video_balance_text: String,
    /// `$0.20 a minute`
    pub video_rate_text: String,
    /// Warning when nothing at all can be done with this contact now.
    pub tone: Tone,
}

/// The contacts screen, display-ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactsVm {
    /// `Contacts`
    pub title: String,
    /// One row per contact, in the edge's order.
    pub rows: Vec<ContactRow>,
    /// Shown when `rows` is empty.
    pub empty_text: String,
    /// Set while the edge cannot reach central (Warning tone).
    pub offline_banner: Option<Banner>,
}

fn action(contact: &ContactView, service: Service, availability: &Availability, lang: Lang) -> ServiceAction {
    let label = match service {
        Service::Voice => lang.pick("Call", "Llamar"),
        Service::Video => lang.pick("Video call", "Videollamada"),
        Service::Message => lang.pick("Message", "Mensaje"),
    };
    let accessible = match (service, lang) {
        (Service::Voice, Lang::English) => format!("Call {}", contact.name),
        (Service::Video, Lang::English) => format!("Video call {}", contact.name),
        (Service::Message, Lang::English) => format!("Write to {}", contact.name),
        (Service::Voice, Lang::Spanish) => format!("Llamar a {}", contact.name),
        (Service::Video, Lang::Spanish) => format!("Videollamada con {}", contact.name),
        (Service::Message, Lang::Spanish) => format!("Escribir a {}", contact.name),
    };
    match availability {
        Availability::Available => ServiceAction {
            service,
            label: label.into(),
            accessible,
            status: lang.pick("Available", "Disponible").into(),
            reason: String::new(),
            enabled: true,
            tone: Tone::Normal,
        },
        Availability::Unavailable(reason) => {
            let status = deny_short(reason, lang);
            ServiceAction {
                service,
                label: label.into(),
                // The reason travels with the disabled button so a screen
                // reader hears why, not just "dimmed".
                accessible: format!("{accessible}: {status}"),
                status: status.into(),
                reason: deny_reason(reason, lang),
                enabled: false,
                tone: Tone::Warning,
            }
        }
    }
}

impl ContactRow {
    /// One contact, in `lang`.
    pub fn new(contact: &ContactView, lang: Lang) -> Self {
        let voice = action(contact, Service::Voice, &contact.voice, lang);
        let video = action(contact, Service::Video, &contact.video, lang);
        let message = action(contact, Service::Message, &contact.message, lang);
        let show_video_balance = shows_video_balance(contact);
        let tone =
            if voice.enabled || video.enabled || message.enabled { Tone::Normal } else { Tone::Warning };
        ContactRow {
            id: contact.id,
            name: contact.name.clone(),
            numbers: contact.numbers.iter().map(|n| phone_label(n)).collect(),
            voice,
            video,
            message,
            show_video_balance,
            video_balance_text: format!(
                "{} {}",
                lang.pick("Video balance:", "Saldo de video:"),
                money(contact.video_balance_cents)
            ),
            video_rate_text: per_minute(contact.video_rate_cents_per_min, lang),
            tone,
        }
    }

    /// The three actions in button order.
    pub fn actions(&self) -> [&ServiceAction; 3] {
        [&self.voice, &self.video, &self.message]
    }
}

impl ContactsVm {
    /// The screen from the edge's contact list, in `lang`.
    pub fn new(list: &ContactList, lang: Lang) -> Self {
        ContactsVm {
            title: lang.pick("Contacts", "Contactos").into(),
            rows: list.contacts.iter().map(|c| ContactRow::new(c, lang)).collect(),
            empty_text: lang
                .pick(
                    "No contacts yet. Family and friends add you from outside.",
                    "Todavía no tiene contactos. Sus familiares y amigos pueden agregarle desde afuera.",
                )
                .into(),
            offline_banner: offline_banner(&list.freshness, lang)
                .map(|text| Banner { text, tone: Tone::Warning }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proto::domain::{Approval, LockdownScope};
    use proto::tablet::{DenyReason, Freshness, WindowView};

    fn maria() -> ContactView {
        ContactView {
            id: ContactId(1),
            name: "Maria".into(),
            numbers: vec!["+15551234567".into()],
            voice: Availability::Available,
            video: Availability::Unavailable(DenyReason::InsufficientBalance {
                balance_cents: 0,
                rate_cents_per_min: 20,
            }),
            message: Availability::Available,
            video_balance_cents: 0,
            video_rate_cents_per_min: 20,
        }
    }

    fn list(contacts: Vec<ContactView>, uplink_up: bool) -> ContactList {
        ContactList { contacts, freshness: Freshness { uplink_up, cache_age_secs: Some(3600 * 2) } }
    }

    #[test]
    fn rows_show_each_service_as_the_edge_decided() {
        let vm = ContactsVm::new(&list(vec![maria()], true), Lang::English);
        assert_eq!(vm.title, "Contacts");
        assert_eq!(vm.offline_banner, None);
        let row = &vm.rows[0];
        assert_eq!(row.numbers, vec!["(555) 123-4567".to_string()]);
        assert!(row.voice.enabled);
        assert_eq!(row.voice.status, "Available");
        assert_eq!(row.voice.label, "Call");
        assert_eq!(row.voice.accessible, "Call Maria");
        assert!(!row.video.enabled);
        assert_eq!(row.video.status, "Low balance");
        assert!(row.video.reason.starts_with("This contact has $0.00; video calls cost $0.20 a minute."));
        assert_eq!(row.video.accessible, "Video call Maria: Low balance");
        assert_eq!(row.video.tone, Tone::Warning);
        assert!(row.show_video_balance);
        assert_eq!(row.video_balance_text, "Video balance: $0.00");
        assert_eq!(row.video_rate_text, "$0.20 a minute");
        assert_eq!(row.tone, Tone::Normal);
        assert_eq!(row.actions().map(|a| a.enabled), [true, false, true]);
    }

    #[test]
    fn spanish_rows_and_offline_banner() {
        let mut c = maria();
        let reason = DenyReason::OutsideCallingHours {
            next_window: Some(WindowView {
                starts_at: jiff::Timestamp::UNIX_EPOCH,
                ends_at: jiff::Timestamp::UNIX_EPOCH,
                local_start: "07:00".into(),
                local_end: "22:00".into(),
                local_date: date(2026, 11, 27),
            }),
        };
        c.voice = Availability::Unavailable(reason);
        c.message = Availability::Unavailable(DenyReason::NotApproved {
            service: Service::Message,
            status: Approval::Pending,
        });
        c.video = Availability::Unavailable(DenyReason::Lockdown { scope: LockdownScope::Facility });
        let vm = ContactsVm::new(&list(vec![c], false), Lang::Spanish);
        assert_eq!(vm.title, "Contactos");
        assert_eq!(
            vm.offline_banner.as_ref().map(|b| b.text.as_str()),
            Some("Sin conexión — información de hace 2 horas")
        );
        let row = &vm.rows[0];
        assert_eq!(row.voice.label, "Llamar");
        assert_eq!(row.voice.status, "Cerrado ahora");
        assert_eq!(row.voice.reason, "Las llamadas están cerradas ahora. Próximas llamadas: vie 07:00–22:00");
        assert_eq!(row.video.status, "Cierre de seguridad");
        assert_eq!(row.message.status, "Esperando aprobación");
        assert_eq!(row.video_rate_text, "$0.20 por minuto");
        assert_eq!(row.tone, Tone::Warning, "nothing possible now");
    }

    #[test]
    fn video_balance_hidden_when_video_not_approved() {
        let mut c = maria();
        c.video = Availability::Unavailable(DenyReason::NotApproved {
            service: Service::Video,
            status: Approval::Rejected,
        });
        let vm = ContactsVm::new(&list(vec![c], true), Lang::English);
        assert!(!vm.rows[0].show_video_balance);
        assert_eq!(vm.rows[0].video.status, "Not approved");
        let empty = ContactsVm::new(&list(vec![], true), Lang::English);
        assert!(empty.rows.is_empty());
        assert!(empty.empty_text.starts_with("No contacts yet"));
    }
}
