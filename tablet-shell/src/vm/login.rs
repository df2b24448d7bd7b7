//! The login screen: resident ID and PIN typed on an on-screen keypad, and
//! the edge's answer in plain words (wrong PIN, locked ID).
//!
//! The edge counts failures and decides lockouts; this VM only shows the
//! attempts it reports and counts down to the `until` it sends, against the
//! `now` the caller passes in. A lockout is of one resident ID, so it never
//! takes the keypad away from the next resident at a shared kiosk: only that
//! ID cannot be submitted again until the lock ends.

use jiff::Timestamp;
use proto::domain::ResidentId;
use proto::tablet::{ApiError, TabletRequest, TabletResponse};

use super::common::{deny_reason, minutes, Lang, Tone};

/// Longest resident ID the keypad accepts; longer input is ignored.
pub const MAX_ID_LEN: usize = 12;
/// Longest PIN the keypad accepts.
pub const MAX_PIN_LEN: usize = 8;

/// Which entry field the keypad types into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Field {
    #[default]
    /// The resident ID field.
    ResidentId,
    /// The PIN field.
    Pin,
}

/// What to send to the edge. `Debug` hides the PIN so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The resident ID as typed.
    pub resident: ResidentId,
    /// The PIN as typed.
    pub pin: String,
}

impl Credentials {
    /// The request that logs in with these credentials.
    pub fn into_request(self) -> TabletRequest {
        TabletRequest::Login { resident: self.resident, pin: self.pin }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("resident", &self.resident).field("pin", &"<hidden>").finish()
    }
}

/// The last thing the edge (or the link to it) said about a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    None,
    Waiting,
    BadCredentials {
        remaining_attempts: u32,
    },
    /// `id` is the locked ID as typed (without the prefix).
    LockedOut {
        until: Timestamp,
        id: String,
    },
    /// The lockout passed while the screen was showing it.
    Unlocked,
    /// Any other refusal, already in words (both languages kept so a language
    /// switch re-renders it).
    Other {
        en: String,
        es: String,
    },
    LoggedIn,
}

/// Keypad entry state plus the edge's last answer. Build the display with
/// [`LoginVm::view`].
#[derive(Clone, PartialEq, Eq)]
pub struct LoginVm {
    id_prefix: String,
    id: String,
    pin: String,
    active: Field,
    outcome: Outcome,
    /// The locked ID is still in its field but selected: the next digit
    /// starts a new ID instead of extending it.
    replace_id: bool,
    now: Timestamp,
}

impl std::fmt::Debug for LoginVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginVm")
            .field("id", &self.id)
            .field("pin_len", &self.pin.len())
            .field("active", &self.active)
            .field("outcome", &self.outcome)
            .field("now", &self.now)
            .finish()
    }
}

/// One keypad key, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    /// What the key shows, e.g. `7`.
    pub text: String,
    /// What a screen reader says, e.g. `Digit 7`.
    pub accessible: String,
    /// The digit it types.
    pub digit: u8,
}

/// One language a resident can pick on the login screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageChoice {
    /// The language this button picks.
    pub lang: Lang,
    /// Its own name (`English`, `Español`), so anyone finds theirs
    /// whatever the screen speaks now.
    pub name: String,
    /// What a screen reader says, in the language it picks: `Use English`,
    /// `Usar español`.
    pub accessible: String,
    /// The screen speaks it now.
    pub selected: bool,
}

/// The login screen, display-ready.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginView {
    /// `Log in`
    pub title: String,
    /// `Resident ID`
    pub id_label: String,
    /// The ID typed so far, as typed.
    pub id_text: String,
    /// The keypad types into the ID field.
    pub id_active: bool,
    /// `PIN`
    pub pin_label: String,
    /// One dot per PIN digit typed; the digits are never shown.
    pub pin_dots: String,
    /// The keypad types into the PIN field.
    pub pin_active: bool,
    /// Screen-reader text for the PIN field: how many digits, never which.
    pub pin_accessible: String,
    /// Digits 1–9 then 0, in keypad order.
    pub keys: Vec<KeyView>,
    /// `Delete` (the backspace key).
    pub delete_label: String,
    /// `Delete last digit`
    pub delete_accessible: String,
    /// `Clear`
    pub clear_label: String,
    /// `Clear this field`
    pub clear_accessible: String,
    /// `Next` until a PIN is being typed, then `Log in`.
    pub submit_label: String,
    /// False while waiting for the edge (a locked ID leaves the keypad on
    /// for the next resident).
    pub keypad_enabled: bool,
    /// The submit key does something now.
    pub submit_enabled: bool,
    /// Empty when there is nothing to say.
    pub message: String,
    /// Alert for refusals, Normal otherwise.
    pub message_tone: Tone,
    /// `Language`, beside the language buttons.
    pub language_label: String,
    /// Every shipped language, in [`Lang::ALL`] order, the current one selected.
    pub languages: Vec<LanguageChoice>,
}

impl Default for LoginVm {
    fn default() -> Self {
        Self::new(Timestamp::UNIX_EPOCH)
    }
}

impl LoginVm {
    /// An empty form; `now` is the current time.
    pub fn new(now: Timestamp) -> Self {
        Self {
            id_prefix: String::new(),
            id: String::new(),
            pin: String::new(),
            active: Field::ResidentId,
            outcome: Outcome::None,
            replace_id: false,
            now,
        }
    }

    /// Resident IDs at this facility start with letters the keypad cannot
    /// type (e.g. `R` in `R1001`): shown before the digits and sent with them.
    pub fn with_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = prefix.into();
        self
    }

    /// The field the keypad types into.
    pub fn active(&self) -> Field {
        self.active
    }

    /// Moves the keypad to another field (the resident tapped it).
    pub fn select(&mut self, field: Field) {
        self.active = field;
    }

    /// True while the edge's lockout of the ID in the field is still in force
    /// at the last known time.
    pub fn is_locked(&self) -> bool {
        matches!(&self.outcome, Outcome::LockedOut { until, id } if self.now < *until && *id == self.id)
    }

    /// True once the edge accepted the login.
    pub fn is_logged_in(&self) -> bool {
        self.outcome == Outcome::LoggedIn
    }

    fn keypad_enabled(&self) -> bool {
        self.outcome != Outcome::Waiting && self.outcome != Outcome::LoggedIn
    }

    /// After an edit of the ID field: a lockout message is about the ID that
    /// was there, so it goes once the field holds another one.
    fn id_edited(&mut self) {
        self.replace_id = false;
        if matches!(&self.outcome, Outcome::LockedOut { id, .. } if *id != self.id) {
            self.outcome = Outcome::None;
        }
    }

    /// Forgets what was typed and any answer about it (not a login still
    /// waiting for the edge): the screen is left for the next resident.
    pub fn forget_entry(&mut self) {
        if !self.keypad_enabled() {
            return;
        }
        self.id.clear();
        self.pin.clear();
        self.active = Field::ResidentId;
        self.outcome = Outcome::None;
        self.replace_id = false;
    }

    /// Whether there is anything on the screen for [`LoginVm::forget_entry`] to forget.
    pub fn has_entry(&self) -> bool {
        self.keypad_enabled()
            && (!self.id.is_empty() || !self.pin.is_empty() || self.outcome != Outcome::None)
    }

    /// Types one digit into the active field; ignored when the keypad is
    /// disabled, the field is full, or `digit` is not 0–9.
    pub fn press_digit(&mut self, digit: u8) {
        if !self.keypad_enabled() || digit > 9 {
            return;
        }
        if self.active == Field::ResidentId && self.replace_id {
            self.id.clear();
        }
        let (field, max) = match self.active {
            Field::ResidentId => (&mut self.id, MAX_ID_LEN),
            Field::Pin => (&mut self.pin, MAX_PIN_LEN),
        };
        if field.len() < max {
            field.push(char::from(b'0' + digit));
        }
        if self.active == Field::ResidentId {
            self.id_edited();
        }
        // A reply about the previous attempt stops being news once typing
        // resumes (a lockout stays until it passes).
        if matches!(self.outcome, Outcome::Unlocked) {
            self.outcome = Outcome::None;
        }
    }

    /// Deletes the last digit of the active field; from an empty PIN it goes
    /// back to the ID field, as people expect on a keypad.
    pub fn backspace(&mut self) {
        if !self.keypad_enabled() {
            return;
        }
        match self.active {
            Field::ResidentId => {
                self.id.pop();
                self.id_edited();
            }
            Field::Pin => {
                if self.pin.pop().is_none() {
                    self.active = Field::ResidentId;
                }
            }
        }
    }

    /// Empties the active field.
    pub fn clear(&mut self) {
        if !self.keypad_enabled() {
            return;
        }
        match self.active {
            Field::ResidentId => {
                self.id.clear();
                self.id_edited();
            }
            Field::Pin => self.pin.clear(),
        }
    }

    /// Both fields have something and the keypad is usable. Length rules
    /// beyond that are the edge's to judge.
    pub fn can_submit(&self) -> bool {
        self.keypad_enabled() && !self.is_locked() && !self.id.is_empty() && !self.pin.is_empty()
    }

    /// The "Log in" key: the credentials to send, or `None` when it cannot
    /// submit. With an empty PIN it moves to the PIN field instead (the
    /// "next" behaviour). The keypad is disabled until the answer arrives.
    pub fn submit(&mut self) -> Option<Credentials> {
        if self.keypad_enabled() && !self.id.is_empty() && self.pin.is_empty() {
            self.active = Field::Pin;
            return None;
        }
        if !self.can_submit() {
            return None;
        }
        self.outcome = Outcome::Waiting;
        Some(Credentials {
            resident: ResidentId::new(format!("{}{}", self.id_prefix, self.id)),
            pin: self.pin.clone(),
        })
    }

    /// Applies the edge's answer to the login request at time `now`.
    /// Unrelated responses are ignored.
    pub fn apply_response(&mut self, response: &TabletResponse, now: Timestamp) {
        self.now = now;
        match response {
            TabletResponse::LoggedIn(_) => {
                self.pin.clear();
                self.outcome = Outcome::LoggedIn;
            }
            TabletResponse::Error(error) => self.apply_error(error, now),
            _ => {}
        }
    }

    /// Applies a refusal from the edge at time `now`. The PIN is always
    /// cleared so it is not left on screen, even masked.
    pub fn apply_error(&mut self, error: &ApiError, now: Timestamp) {
        self.now = now;
        self.pin.clear();
        // The ID is kept so only the PIN needs retyping.
        self.active = if self.id.is_empty() { Field::ResidentId } else { Field::Pin };
        self.replace_id = false;
        self.outcome = match error {
            ApiError::BadCredentials { remaining_attempts } => {
                Outcome::BadCredentials { remaining_attempts: *remaining_attempts }
            }
            ApiError::LockedOut { until } => {
                // Retyping a PIN for this ID is pointless until the lock
                // ends; the next resident starts a new ID at the first digit.
                self.active = Field::ResidentId;
                self.replace_id = true;
                Outcome::LockedOut { until: *until, id: self.id.clone() }
            }
            ApiError::Unavailable { reason } => Outcome::Other {
                en: deny_reason(reason, Lang::English),
                es: deny_reason(reason, Lang::Spanish),
            },
            // Internal details are for technicians, not the login screen.
            _ => Outcome::Other {
                en: "The system could not check your login. Please try again.".into(),
                es: "El sistema no pudo comprobar su ingreso. Intente de nuevo.".into(),
            },
        };
    }

    /// The edge could not be reached; the attempt can be retried at once.
    pub fn connection_failed(&mut self, now: Timestamp) {
        self.now = now;
        self.outcome = Outcome::Other {
            en: "Cannot reach the system. Please try again.".into(),
            es: "No se puede conectar con el sistema. Intente de nuevo.".into(),
        };
    }

    /// Advances the screen's notion of time: the countdown updates and, once
    /// the edge's `until` has passed, the keypad is enabled again.
    pub fn tick(&mut self, now: Timestamp) {
        self.now = now;
        if let Outcome::LockedOut { until, .. } = self.outcome {
            if now >= until {
                self.outcome = Outcome::Unlocked;
                self.replace_id = false;
                self.active = if self.id.is_empty() { Field::ResidentId } else { Field::Pin };
            }
        }
    }

    fn message(&self, lang: Lang) -> (String, Tone) {
        match &self.outcome {
            Outcome::None | Outcome::LoggedIn => (String::new(), Tone::Normal),
            Outcome::Waiting => (lang.pick("Checking…", "Comprobando…").to_string(), Tone::Normal),
            Outcome::BadCredentials { remaining_attempts } => {
                let n = u64::from(*remaining_attempts);
                let text = match lang {
                    Lang::English => {
                        format!("Wrong ID or PIN. {n} {} left.", if n == 1 { "attempt" } else { "attempts" })
                    }
                    Lang::Spanish if n == 1 => "ID o PIN incorrecto. Le queda 1 intento.".to_string(),
                    Lang::Spanish => format!("ID o PIN incorrecto. Le quedan {n} intentos."),
                };
                (text, Tone::Alert)
            }
            // Passed, though `tick` has not caught up yet: no "0 minutes".
            Outcome::LockedOut { until, .. } if self.now >= *until => {
                (lang.pick("You can try again now.", "Ya puede intentar de nuevo.").to_string(), Tone::Normal)
            }
            Outcome::LockedOut { until, .. } => {
                let left_ms = until.as_millisecond().saturating_sub(self.now.as_millisecond()).max(0);
                // Rounded up: "1 minute" until the very end, never "0 minutes".
                let mins = (left_ms.unsigned_abs().div_ceil(60_000)).max(1);
                let text = match lang {
                    Lang::English => format!("This ID is locked. Try again in {}.", minutes(mins, lang)),
                    Lang::Spanish => {
                        format!("Este ID está bloqueado. Intente de nuevo en {}.", minutes(mins, lang))
                    }
                };
                (text, Tone::Alert)
            }
            Outcome::Unlocked => {
                (lang.pick("You can try again now.", "Ya puede intentar de nuevo.").to_string(), Tone::Normal)
            }
            Outcome::Other { en, es } => (lang.pick(en, es).to_string(), Tone::Alert),
        }
    }

    /// The screen as of the last `now` seen, in `lang`.
    pub fn view(&self, lang: Lang) -> LoginView {
        let enabled = self.keypad_enabled();
        let (message, message_tone) = self.message(lang);
        let keys = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 0]
            .into_iter()
            .map(|digit| KeyView {
                text: digit.to_string(),
                accessible: format!("{} {digit}", lang.pick("Digit", "Dígito")),
                digit,
            })
            .collect();
        let pin_len = self.pin.chars().count();
        let pin_accessible = match lang {
            Lang::English => {
                format!("PIN, {pin_len} {} entered", if pin_len == 1 { "digit" } else { "digits" })
            }
            Lang::Spanish => format!(
                "PIN, {pin_len} {} {}",
                if pin_len == 1 { "dígito" } else { "dígitos" },
                if pin_len == 1 { "ingresado" } else { "ingresados" }
            ),
        };
        LoginView {
            title: lang.pick("Log in", "Iniciar sesión").into(),
            id_label: lang.pick("Resident ID", "Número de residente").into(),
            id_text: format!("{}{}", self.id_prefix, self.id),
            id_active: self.active == Field::ResidentId,
            pin_label: "PIN".into(),
            pin_dots: "\u{2022}".repeat(pin_len),
            pin_active: self.active == Field::Pin,
            pin_accessible,
            keys,
            delete_label: lang.pick("Delete", "Borrar").into(),
            delete_accessible: lang.pick("Delete last digit", "Borrar el último dígito").into(),
            clear_label: lang.pick("Clear", "Limpiar").into(),
            clear_accessible: lang.pick("Clear this field", "Limpiar este campo").into(),
            submit_label: match (self.active, self.pin.is_empty()) {
                (Field::ResidentId, true) => lang.pick("Next", "Siguiente"),
                _ => lang.pick("Log in", "Entrar"),
            }
            .into(),
            keypad_enabled: enabled,
            submit_enabled: enabled && !self.is_locked() && !self.id.is_empty(),
            message,
            message_tone,
            language_label: lang.pick("Language", "Idioma").into(),
            languages: Lang::ALL
                .into_iter()
                .map(|l| LanguageChoice {
                    lang: l,
                    name: l.native_name().into(),
                    accessible: l.pick("Use English", "Usar español").into(),
                    selected: l == lang,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn type_digits(vm: &mut LoginVm, digits: &str) {
        for b in digits.bytes() {
            vm.press_digit(b - b'0');
        }
    }

    fn filled() -> LoginVm {
        let mut vm = LoginVm::new(at(0));
        type_digits(&mut vm, "1234");
        vm.select(Field::Pin);
        type_digits(&mut vm, "9876");
        vm
    }

    #[test]
    fn the_language_buttons_speak_their_own_language() {
        let vm = LoginVm::new(at(0));
        for (lang, label) in [(Lang::English, "Language"), (Lang::Spanish, "Idioma")] {
            let view = vm.view(lang);
            assert_eq!(view.language_label, label);
            let buttons: Vec<_> =
                view.languages.iter().map(|c| (c.name.as_str(), c.accessible.as_str(), c.selected)).collect();
            assert_eq!(
                buttons,
                [
                    ("English", "Use English", lang == Lang::English),
                    ("Español", "Usar español", lang == Lang::Spanish)
                ]
            );
            // The shell maps a touched button back through this order.
            assert_eq!(view.languages.iter().map(|c| c.lang).collect::<Vec<_>>(), Lang::ALL);
        }
    }

    #[test]
    fn typing_masks_the_pin_and_respects_max_lengths() {
        let mut vm = LoginVm::new(at(0));
        type_digits(&mut vm, "12345678901234");
        assert_eq!(vm.view(Lang::English).id_text, "123456789012");
        vm.select(Field::Pin);
        type_digits(&mut vm, "1234567890");
        let view = vm.view(Lang::English);
        assert_eq!(view.pin_dots, "••••••••");
        assert!(view.pin_active && !view.id_active);
        assert!(!format!("{vm:?}").contains("12345678\""), "PIN must not be in Debug");
        vm.press_digit(10);
        vm.backspace();
        assert_eq!(vm.view(Lang::English).pin_dots.chars().count(), 7);
        vm.clear();
        assert_eq!(vm.view(Lang::English).pin_dots, "");
        // Backspace on an empty PIN goes back to the ID.
        vm.backspace();
        assert_eq!(vm.active(), Field::ResidentId);
    }

    #[test]
    fn submit_needs_both_fields_and_moves_to_pin_first() {
        let mut vm = LoginVm::new(at(0));
        assert!(!vm.can_submit());
        assert_eq!(vm.submit(), None);
        type_digits(&mut vm, "42");
        assert_eq!(vm.view(Lang::English).submit_label, "Next");
        assert_eq!(vm.submit(), None);
        assert_eq!(vm.active(), Field::Pin);
        type_digits(&mut vm, "1111");
        assert!(vm.can_submit());
        let creds = vm.submit().expect("can submit");
        assert_eq!(creds.resident, ResidentId::new("42"));
        assert!(!format!("{creds:?}").contains("1111"));
        assert!(matches!(creds.into_request(), TabletRequest::Login { pin, .. } if pin == "1111"));
        // Waiting for the edge: keypad off.
        let view = vm.view(Lang::English);
        assert!(!view.keypad_enabled && !view.submit_enabled);
        assert_eq!(view.message, "Checking…");
    }

    #[test]
    fn wrong_pin_clears_pin_and_counts_attempts() {
        let mut vm = filled();
        let _ = vm.submit();
        vm.apply_response(&TabletResponse::Error(ApiError::BadCredentials { remaining_attempts: 3 }), at(1));
        let view = vm.view(Lang::English);
        assert_eq!(view.message, "Wrong ID or PIN. 3 attempts left.");
        assert_eq!(view.message_tone, Tone::Alert);
        assert_eq!(view.pin_dots, "");
        assert_eq!(view.id_text, "1234");
        assert!(view.pin_active && view.keypad_enabled);
        assert_eq!(vm.view(Lang::Spanish).message, "ID o PIN incorrecto. Le quedan 3 intentos.");
        vm.apply_error(&ApiError::BadCredentials { remaining_attempts: 1 }, at(2));
        assert_eq!(vm.view(Lang::English).message, "Wrong ID or PIN. 1 attempt left.");
        assert_eq!(vm.view(Lang::Spanish).message, "ID o PIN incorrecto. Le queda 1 intento.");
    }

    #[test]
    fn lockout_counts_down_and_re_enables() {
        let mut vm = filled();
        let _ = vm.submit();
        vm.apply_error(&ApiError::LockedOut { until: at(15 * 60) }, at(0));
        assert!(vm.is_locked());
        let view = vm.view(Lang::English);
        assert_eq!(view.message, "This ID is locked. Try again in 15 minutes.");
        assert!(view.keypad_enabled, "the keypad stays on for the next resident");
        assert!(!view.submit_enabled, "the locked ID cannot be submitted again");
        assert!(view.id_active && view.id_text == "1234");
        assert_eq!(vm.view(Lang::Spanish).message, "Este ID está bloqueado. Intente de nuevo en 15 minutos.");
        // Retyping the PIN of the locked ID gets nowhere.
        vm.select(Field::Pin);
        type_digits(&mut vm, "1111");
        assert!(!vm.can_submit() && vm.submit().is_none());
        assert_eq!(vm.view(Lang::English).message, "This ID is locked. Try again in 15 minutes.");
        vm.clear();

        vm.tick(at(14 * 60 + 1));
        assert_eq!(vm.view(Lang::English).message, "This ID is locked. Try again in 1 minute.");
        assert_eq!(vm.view(Lang::Spanish).message, "Este ID está bloqueado. Intente de nuevo en 1 minuto.");
        vm.tick(at(15 * 60 - 1));
        assert!(vm.is_locked());
        assert_eq!(vm.view(Lang::English).message, "This ID is locked. Try again in 1 minute.");

        // A lockout already over when it arrives (clock skew) leaves the
        // keypad usable.
        let mut skewed = filled();
        skewed.apply_error(&ApiError::LockedOut { until: at(-5) }, at(0));
        assert!(skewed.view(Lang::English).keypad_enabled);
        assert_eq!(skewed.view(Lang::English).message, "You can try again now.");

        vm.tick(at(15 * 60));
        assert!(!vm.is_locked());
        let view = vm.view(Lang::English);
        assert!(view.keypad_enabled);
        assert_eq!(view.message, "You can try again now.");
        assert_eq!(view.message_tone, Tone::Normal);
        vm.press_digit(5);
        assert_eq!(vm.view(Lang::English).pin_dots, "•");
        assert_eq!(vm.view(Lang::English).message, "");
    }

    #[test]
    fn a_locked_id_leaves_the_kiosk_to_the_next_resident() {
        let mut vm = filled();
        let _ = vm.submit();
        vm.apply_error(&ApiError::LockedOut { until: at(15 * 60) }, at(0));
        // The first digit starts a new ID; the lockout words were about the old one.
        vm.press_digit(7);
        let view = vm.view(Lang::English);
        assert_eq!((view.id_text.as_str(), view.message.as_str()), ("7", ""));
        assert!(!vm.is_locked());
        vm.select(Field::Pin);
        type_digits(&mut vm, "2222");
        let creds = vm.submit().expect("another ID can log in during the lockout");
        assert_eq!(creds.resident, ResidentId::new("7"));

        // Typing the locked ID again is the edge's to refuse, as it would be
        // on any other tablet.
        let mut again = filled();
        let _ = again.submit();
        again.apply_error(&ApiError::LockedOut { until: at(15 * 60) }, at(0));
        again.clear();
        type_digits(&mut again, "1234");
        assert!(!again.is_locked(), "the words went with the first edit");
        again.select(Field::Pin);
        type_digits(&mut again, "9876");
        assert!(again.submit().is_some());
    }

    #[test]
    fn forgetting_the_entry_leaves_a_clean_screen_but_not_a_pending_login() {
        let mut vm = filled();
        let _ = vm.submit();
        vm.apply_error(&ApiError::BadCredentials { remaining_attempts: 2 }, at(1));
        assert!(vm.has_entry());
        vm.forget_entry();
        assert!(!vm.has_entry());
        let view = vm.view(Lang::English);
        assert_eq!((view.id_text.as_str(), view.pin_dots.as_str(), view.message.as_str()), ("", "", ""));
        assert!(view.id_active);

        let mut waiting = filled();
        let _ = waiting.submit();
        waiting.forget_entry();
        assert_eq!(waiting.view(Lang::English).message, "Checking…", "the answer is still coming");
        assert!(!waiting.has_entry());
    }

    #[test]
    fn logged_in_and_other_errors() {
        let mut vm = filled();
        let _ = vm.submit();
        vm.apply_error(&ApiError::Internal("db".into()), at(0));
        assert_eq!(
            vm.view(Lang::English).message,
            "The system could not check your login. Please try again."
        );
        assert!(!vm.view(Lang::English).message.contains("db"));
        vm.connection_failed(at(1));
        assert_eq!(vm.view(Lang::Spanish).message, "No se puede conectar con el sistema. Intente de nuevo.");
        type_digits(&mut vm, "1");
        let _ = vm.submit();
        let session = proto::tablet::SessionInfo {
            resident: ResidentId::new("1234"),
            name: "Ana".into(),
            unit: proto::domain::UnitId::new("A"),
            session_id: 7,
        };
        vm.apply_response(&TabletResponse::LoggedIn(session), at(2));
        assert!(vm.is_logged_in());
        assert_eq!(vm.view(Lang::English).pin_dots, "");
    }

    #[test]
    fn static_labels_in_both_languages() {
        let vm = LoginVm::new(at(0));
        let en = vm.view(Lang::English);
        let es = vm.view(Lang::Spanish);
        assert_eq!(en.title, "Log in");
        assert_eq!(es.title, "Iniciar sesión");
        assert_eq!(en.keys.len(), 10);
        assert_eq!(en.keys[0].accessible, "Digit 1");
        assert_eq!(es.keys[9].accessible, "Dígito 0");
        assert_eq!(en.delete_label, "Delete");
        assert_eq!(es.delete_label, "Borrar");
        assert_eq!(es.id_label, "Número de residente");
        assert_eq!(en.pin_accessible, "PIN, 0 digits entered");
    }

    #[test]
    fn the_facility_id_prefix_is_shown_and_sent_with_the_digits() {
        let mut vm = LoginVm::new(at(0)).with_id_prefix("R");
        type_digits(&mut vm, "1001");
        assert_eq!(vm.view(Lang::English).id_text, "R1001");
        vm.submit();
        type_digits(&mut vm, "1234");
        let credentials = vm.submit().expect("credentials");
        assert_eq!(credentials.resident.as_str(), "R1001");
    }
}
