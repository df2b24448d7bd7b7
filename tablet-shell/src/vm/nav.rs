//! The navigation bar and the words shown while the edge has not answered yet.

use super::Lang;

/// Labels of the navigation bar, shown on every screen but login and call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavVm {
    pub resident: String,
    pub home: String,
    pub contacts: String,
    pub messages: String,
    pub stamps: String,
    pub settings: String,
    pub logout: String,
    /// Back to the list a screen was opened from.
    pub back: String,
}

impl NavVm {
    /// `resident` is the name the edge gave at login; `unread` adds a count to Messages.
    pub fn new(resident: &str, unread: u32, lang: Lang) -> Self {
        let messages = lang.pick("Messages", "Mensajes");
        NavVm {
            resident: resident.to_string(),
            home: lang.pick("Home", "Inicio").into(),
            contacts: lang.pick("Contacts", "Contactos").into(),
            messages: if unread > 0 { format!("{messages} ({unread})") } else { messages.into() },
            stamps: lang.pick("Stamps", "Estampillas").into(),
            settings: lang.pick("Settings", "Ajustes").into(),
            logout: lang.pick("Log out", "Salir").into(),
            back: lang.pick("Back", "Volver").into(),
        }
    }
}

/// Shown in place of a screen whose data the edge has not sent yet.
pub fn loading(lang: Lang) -> String {
    lang.pick("Loading…", "Cargando…").into()
}

/// Shown when the edge cannot be reached at all.
pub fn edge_unreachable(lang: Lang) -> String {
    lang.pick(
        "This tablet cannot reach the facility system. Please try again in a moment.",
        "Esta tableta no puede conectarse con el sistema del centro. Inténtelo de nuevo en un momento.",
    )
    .into()
}

/// Why the session ended, on the login screen afterwards.
pub fn session_ended(reason: proto::tablet::SessionEndReason, lang: Lang) -> String {
    use proto::tablet::SessionEndReason::*;
    match reason {
        LoggedOut => lang.pick("You have logged out.", "Ha cerrado la sesión."),
        LoggedInElsewhere => lang.pick(
            "You logged in on another tablet, so this one was logged out.",
            "Inició sesión en otra tableta, así que esta se cerró.",
        ),
        DeviceDisconnected => lang.pick(
            "The connection was lost. Please log in again.",
            "Se perdió la conexión. Vuelva a iniciar sesión.",
        ),
        ResidentInactive => lang.pick(
            "This account is not active. Please ask staff.",
            "Esta cuenta no está activa. Consulte al personal.",
        ),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_label_carries_the_unread_count_in_words_and_digits() {
        assert_eq!(NavVm::new("Ana", 0, Lang::English).messages, "Messages");
        assert_eq!(NavVm::new("Ana", 3, Lang::Spanish).messages, "Mensajes (3)");
        assert_eq!(NavVm::new("Ana", 0, Lang::Spanish).logout, "Salir");
    }

    #[test]
    fn every_session_end_has_words_in_both_languages() {
        use proto::tablet::SessionEndReason::*;
        for reason in [LoggedOut, LoggedInElsewhere, DeviceDisconnected, ResidentInactive] {
            let (en, es) = (session_ended(reason, Lang::English), session_ended(reason, Lang::Spanish));
            assert!(!en.is_empty() && !es.is_empty());
            assert_ne!(en, es);
        }
    }
}
