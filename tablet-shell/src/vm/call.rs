//! The call screen: a small state machine driven by the edge's answers and
//! pushed [`CallUpdate`]s, plus a monotonic millisecond clock the caller
//! passes in for the on-screen timer.
//!
//! The edge is the clock that matters: it decides the limit, warns, and ends
//! the call. This VM runs a display timer from the moment the edge says
//! "connected", turns it red at the edge's warning point, and reports the call
//! as ended only when the edge's `Ended` arrives (remaining time may sit at
//! 0:00 until then).

use proto::call::{CallEndReason, CallId, CallState, CallUpdate};
use proto::domain::CallKind;
use proto::tablet::{ApiError, CallDecision, DenyReason, TabletResponse};

use super::common::{call_kind_title, clock, deny_reason, minutes, Lang, Tone};

/// Warning lead used only when the edge's warning point is unknown (no
/// `CallStarted` seen); matches the rules' default of one minute.
const FALLBACK_WARNING_SECS: u32 = 60;

/// Where the call stands, as far as the screen knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallPhase {
    /// Asked the edge to place the call; no answer or ringing yet.
    Placing,
    /// The contact's phone is ringing.
    Ringing,
    /// The contact answered; the timer runs.
    Connected,
    /// The edge ended the call; `None` when the edge only said the call no
    /// longer exists.
    Ended(Option<CallEndReason>),
    /// The edge refused to place the call.
    Denied(DenyReason),
    /// The request failed for a reason other than a refusal.
    Failed(FailKind),
}

/// Why a call request failed without a policy refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The resident already has a live call.
    AlreadyInCall,
    /// The edge could not answer or could not be reached.
    Unreachable,
}

/// The call screen's state. Build the display with [`CallVm::view`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallVm {
    contact_name: String,
    kind: CallKind,
    phase: CallPhase,
    call_id: Option<CallId>,
    max_duration_secs: Option<u32>,
    warn_at_secs: Option<u32>,
    /// The limit the edge gave at connect; preferred over `max_duration_secs`.
    limit_secs: Option<u32>,
    connected_at_ms: Option<u64>,
    /// When the edge's `Warned` arrived and how much time it said was left;
    /// from then on the remaining time follows the edge's figure.
    edge_warned: Option<(u64, u32)>,
    /// Elapsed connected time frozen when the call ended.
    final_elapsed_ms: Option<u64>,
    now_ms: u64,
    hanging_up: bool,
}

/// The call screen, display-ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    /// `Video call`, `Llamada telefónica`.
    pub title: String,
    /// Who is being called.
    pub contact_name: String,
    /// `Calling Maria…`, `Ringing…`, `Connected`, `Call ended`.
    pub status_text: String,
    /// Whether the timers are shown (from connect on).
    pub show_timer: bool,
    /// Connected time so far: `4:05`.
    pub timer_text: String,
    /// The timer for a screen reader: `Call time 4:05`.
    pub timer_accessible: String,
    /// `Time left`
    pub remaining_label: String,
    /// Time left before the edge's limit: `0:59`; empty when unknown.
    pub remaining_text: String,
    /// `1 minute left` from the warning point on; empty before. Says in words
    /// what the red timer says in colour.
    pub warning_text: String,
    /// Normal until the warning point, then Alert.
    pub timer_tone: Tone,
    /// The call is over (ended, refused or failed): show `end_text` and the
    /// close button.
    pub is_over: bool,
    /// Why it ended, or why it was not placed; empty while live.
    pub end_text: String,
    /// Tone of `end_text`: Alert for refusals, Warning for cut-off calls.
    pub end_tone: Tone,
    /// A call id is known, the call is live, and no hang-up is pending.
    pub hang_up_enabled: bool,
    /// `Hang up`
    pub hang_up_label: String,
    /// `Hang up the call with Maria`
    pub hang_up_accessible: String,
    /// The button that leaves the screen once the call is over.
    pub close_label: String,
    /// Video calls show the contact's picture and a self view; voice calls neither.
    pub video: bool,
    pub remote_video_label: String,
    pub self_view_label: String,
}

impl CallVm {
    /// The resident pressed call: the request is on its way to the edge.
    pub fn placing(contact_name: impl Into<String>, kind: CallKind) -> Self {
        CallVm {
            contact_name: contact_name.into(),
            kind,
            phase: CallPhase::Placing,
            call_id: None,
            max_duration_secs: None,
            warn_at_secs: None,
            limit_secs: None,
            connected_at_ms: None,
            edge_warned: None,
            final_elapsed_ms: None,
            now_ms: 0,
            hanging_up: false,
        }
    }

    /// The call's current phase.
    pub fn phase(&self) -> &CallPhase {
        &self.phase
    }

    /// The edge's id for this call, once it has given one.
    pub fn call_id(&self) -> Option<CallId> {
        self.call_id
    }

    /// Voice or video, as placed.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// Whether the contact has answered (the call may have ended since).
    pub fn has_connected(&self) -> bool {
        self.connected_at_ms.is_some()
    }

    /// Ended, refused or failed: nothing more will happen on this screen.
    pub fn is_over(&self) -> bool {
        matches!(self.phase, CallPhase::Ended(_) | CallPhase::Denied(_) | CallPhase::Failed(_))
    }

    fn is_live(&self) -> bool {
        matches!(self.phase, CallPhase::Placing | CallPhase::Ringing | CallPhase::Connected)
    }

    /// Applies the edge's answer to `StartCall` (or `PlaceCall`) or `HangUp`.
    /// Responses that are not about this call are ignored.
    pub fn apply_response(&mut self, response: &TabletResponse) {
        match response {
            TabletResponse::CallStarted { call_id, max_duration_secs, warn_at_secs, .. }
                if self.is_live() && self.call_id.is_none_or(|id| id == *call_id) =>
            {
                self.call_id = Some(*call_id);
                self.max_duration_secs = Some(*max_duration_secs);
                self.warn_at_secs = Some(*warn_at_secs);
            }
            TabletResponse::Call(CallDecision::Allowed { max_duration_secs, warn_at_secs, .. })
                if self.is_live() =>
            {
                self.max_duration_secs = Some(*max_duration_secs);
                self.warn_at_secs = Some(*warn_at_secs);
            }
            TabletResponse::Call(CallDecision::Denied(reason)) if self.phase == CallPhase::Placing => {
                self.phase = CallPhase::Denied(reason.clone());
            }
            // The edge confirmed the hang-up; the call is reported ended by
            // its `Ended` update, not here.
            TabletResponse::HungUp { .. } => {}
            TabletResponse::Error(error) => self.apply_error(error),
            _ => {}
        }
    }

    /// Applies an error answer to `StartCall` or `HangUp`.
    pub fn apply_error(&mut self, error: &ApiError) {
        if !self.is_live() {
            return;
        }
        match error {
            ApiError::Unavailable { reason } if self.phase == CallPhase::Placing => {
                self.phase = CallPhase::Denied(reason.clone());
            }
            ApiError::CallInProgress { .. } if self.phase == CallPhase::Placing => {
                self.phase = CallPhase::Failed(FailKind::AlreadyInCall);
            }
            // The edge no longer knows this call: it is over, though we
            // missed how.
            ApiError::UnknownCall { call_id } if Some(*call_id) == self.call_id => {
                self.end(None);
            }
            _ if self.phase == CallPhase::Placing && self.call_id.is_none() => {
                self.phase = CallPhase::Failed(FailKind::Unreachable);
            }
            // A failed hang-up leaves the call live: let the resident retry.
            _ => self.hanging_up = false,
        }
    }

    /// The request could not reach the edge at all.
    pub fn connection_failed(&mut self) {
        if self.phase == CallPhase::Placing && self.call_id.is_none() {
            self.phase = CallPhase::Failed(FailKind::Unreachable);
        } else if self.is_live() {
            self.hanging_up = false;
        }
    }

    /// Applies a pushed update at monotonic time `now_ms`. Updates for other
    /// calls, and anything after the end, are ignored.
    pub fn apply_update(&mut self, update: &CallUpdate, now_ms: u64) {
        self.tick(now_ms);
        if !self.is_live() {
            return;
        }
        match self.call_id {
            Some(id) if id != update.call_id => return,
            // An update may overtake the `CallStarted` answer on another
            // stream; the first one names our call.
            None => self.call_id = Some(update.call_id),
            Some(_) => {}
        }
        match update.state {
            CallState::Ringing => {
                if self.phase == CallPhase::Placing {
                    self.phase = CallPhase::Ringing;
                }
            }
            CallState::Connected { limit_secs } => {
                if self.phase != CallPhase::Connected {
                    self.phase = CallPhase::Connected;
                    self.limit_secs = Some(limit_secs);
                    self.connected_at_ms = Some(self.now_ms);
                }
            }
            CallState::Warned { remaining_secs } => {
                if self.connected_at_ms.is_none() {
                    self.phase = CallPhase::Connected;
                    self.connected_at_ms = Some(self.now_ms);
                }
                self.edge_warned = Some((self.now_ms, remaining_secs));
            }
            CallState::Ended { reason } => self.end(Some(reason)),
        }
    }

    fn end(&mut self, reason: Option<CallEndReason>) {
        self.final_elapsed_ms = self.connected_at_ms.map(|at| self.now_ms.saturating_sub(at));
        self.phase = CallPhase::Ended(reason);
        self.hanging_up = false;
    }

    /// Advances the display clock to monotonic time `now_ms`.
    pub fn tick(&mut self, now_ms: u64) {
        // Monotonic input, but never let a stale value run the timer back.
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// The resident pressed hang up: returns the call to hang up, or `None`
    /// if there is nothing to hang up yet (or already asked). The call stays
    /// on screen until the edge's `Ended` arrives.
    pub fn hang_up(&mut self) -> Option<CallId> {
        if !self.hang_up_enabled() {
            return None;
        }
        self.hanging_up = true;
        self.call_id
    }

    fn hang_up_enabled(&self) -> bool {
        self.is_live() && self.call_id.is_some() && !self.hanging_up
    }

    /// Connected time in milliseconds (frozen once ended).
    fn elapsed_ms(&self) -> u64 {
        match (self.final_elapsed_ms, self.connected_at_ms) {
            (Some(done), _) => done,
            (None, Some(at)) => self.now_ms.saturating_sub(at),
            (None, None) => 0,
        }
    }

    /// Whole seconds connected.
    pub fn elapsed_secs(&self) -> u64 {
        self.elapsed_ms() / 1000
    }

    /// Seconds left before the edge's limit, rounded up (so it reads 1:00 at
    /// the warning point and 0:00 only at the limit); `None` when no limit
    /// is known.
    pub fn remaining_secs(&self) -> Option<u64> {
        let remaining_ms = match self.edge_warned {
            Some((at, remaining)) if self.final_elapsed_ms.is_none() => {
                u64::from(remaining).saturating_mul(1000).saturating_sub(self.now_ms.saturating_sub(at))
            }
            _ => {
                let limit = self.limit_secs.or(self.max_duration_secs)?;
                u64::from(limit).saturating_mul(1000).saturating_sub(self.elapsed_ms())
            }
        };
        Some(remaining_ms.div_ceil(1000))
    }

    /// The edge's warning point has been reached (or the edge said so).
    pub fn is_warned(&self) -> bool {
        if self.phase != CallPhase::Connected {
            return false;
        }
        if self.edge_warned.is_some() {
            return true;
        }
        let warn_at = match (self.warn_at_secs, self.limit_secs.or(self.max_duration_secs)) {
            (Some(at), _) => at,
            (None, Some(limit)) => limit.saturating_sub(FALLBACK_WARNING_SECS),
            (None, None) => return false,
        };
        self.elapsed_ms() >= u64::from(warn_at) * 1000
    }

    fn status_text(&self, lang: Lang) -> String {
        if self.hanging_up {
            return lang.pick("Hanging up…", "Colgando…").into();
        }
        match &self.phase {
            CallPhase::Placing => match lang {
                Lang::English => format!("Calling {}…", self.contact_name),
                Lang::Spanish => format!("Llamando a {}…", self.contact_name),
            },
            CallPhase::Ringing => lang.pick("Ringing…", "Sonando…").into(),
            CallPhase::Connected => lang.pick("Connected", "Llamada conectada").into(),
            CallPhase::Ended(_) => lang.pick("Call ended", "Llamada terminada").into(),
            CallPhase::Denied(_) | CallPhase::Failed(_) => {
                lang.pick("The call was not placed", "No se hizo la llamada").into()
            }
        }
    }

    fn end_text(&self, lang: Lang) -> (String, Tone) {
        let name = &self.contact_name;
        let (text, tone) = match &self.phase {
            CallPhase::Placing | CallPhase::Ringing | CallPhase::Connected => (String::new(), Tone::Normal),
            CallPhase::Denied(reason) => (deny_reason(reason, lang), Tone::Alert),
            CallPhase::Failed(FailKind::AlreadyInCall) => (
                lang.pick("You already have a call under way.", "Ya tiene una llamada en curso.").into(),
                Tone::Alert,
            ),
            CallPhase::Failed(FailKind::Unreachable) => (
                lang.pick(
                    "The call could not be placed. Please try again.",
                    "No se pudo hacer la llamada. Intente de nuevo.",
                )
                .into(),
                Tone::Alert,
            ),
            CallPhase::Ended(None) => {
                (lang.pick("The call has ended.", "La llamada terminó.").into(), Tone::Normal)
            }
            CallPhase::Ended(Some(reason)) => end_reason_text(*reason, name, lang),
        };
        (text, tone)
    }

    /// The screen at the last time seen, in `lang`.
    pub fn view(&self, lang: Lang) -> CallView {
        let show_timer = self.connected_at_ms.is_some();
        let elapsed = self.elapsed_secs();
        let remaining = self.remaining_secs().filter(|_| show_timer);
        let warned = self.is_warned();
        let warning_text = match (warned, remaining) {
            (true, Some(0)) => lang.pick("The call is ending…", "La llamada está terminando…").to_string(),
            (true, Some(secs)) => {
                let mins = secs.div_ceil(60);
                match lang {
                    Lang::English => format!("{} left", minutes(mins, lang)),
                    Lang::Spanish if mins == 1 => "Queda 1 minuto".to_string(),
                    Lang::Spanish => format!("Quedan {}", minutes(mins, lang)),
                }
            }
            (true, None) => lang.pick("Almost out of time", "Queda poco tiempo").to_string(),
            (false, _) => String::new(),
        };
        let (end_text, end_tone) = self.end_text(lang);
        let timer_text = clock(elapsed);
        CallView {
            title: call_kind_title(self.kind, lang).into(),
            contact_name: self.contact_name.clone(),
            status_text: self.status_text(lang),
            show_timer,
            timer_accessible: format!("{} {timer_text}", lang.pick("Call time", "Tiempo de llamada")),
            timer_text,
            remaining_label: lang.pick("Time left", "Tiempo restante").into(),
            remaining_text: remaining.map(clock).unwrap_or_default(),
            warning_text,
            timer_tone: if warned { Tone::Alert } else { Tone::Normal },
            is_over: self.is_over(),
            end_text,
            end_tone,
            hang_up_enabled: self.hang_up_enabled(),
            hang_up_label: lang.pick("Hang up", "Colgar").into(),
            hang_up_accessible: match lang {
                Lang::English => format!("Hang up the call with {}", self.contact_name),
                Lang::Spanish => format!("Colgar la llamada con {}", self.contact_name),
            },
            close_label: lang.pick("Close", "Cerrar").into(),
            video: self.kind == CallKind::Video,
            remote_video_label: match lang {
                Lang::English => format!("Video of {}", self.contact_name),
                Lang::Spanish => format!("Video de {}", self.contact_name),
            },
            self_view_label: lang.pick("Your camera", "Su cámara").into(),
        }
    }
}

/// How a call ended, in plain words. A declined or unanswered call reads
/// only "did not answer" (rules: never "declined").
pub fn end_reason_text(reason: CallEndReason, contact_name: &str, lang: Lang) -> (String, Tone) {
    let name = contact_name;
    let normal = |en: &str, es: &str| (lang.pick(en, es).to_string(), Tone::Normal);
    let warning = |en: &str, es: &str| (lang.pick(en, es).to_string(), Tone::Warning);
    match reason {
        CallEndReason::DidNotAnswer => match lang {
            Lang::English => (format!("{name} did not answer."), Tone::Normal),
            Lang::Spanish => (format!("{name} no contestó."), Tone::Normal),
        },
        CallEndReason::TimeLimit => {
            normal("The call reached its time limit.", "La llamada llegó a su límite de tiempo.")
        }
        CallEndReason::ResidentHungUp => normal("You ended the call.", "Usted terminó la llamada."),
        CallEndReason::ContactHungUp => match lang {
            Lang::English => (format!("{name} ended the call."), Tone::Normal),
            Lang::Spanish => (format!("{name} terminó la llamada."), Tone::Normal),
        },
        CallEndReason::Lockdown => {
            warning("The call ended because of a lockdown.", "La llamada terminó por un cierre de seguridad.")
        }
        CallEndReason::Suspended => warning(
            "The call ended because this service was suspended.",
            "La llamada terminó porque este servicio fue suspendido.",
        ),
        // Worded so nobody is blamed, like the refusal before a call.
        CallEndReason::Blocked => warning(
            "The call ended: this number cannot take calls from here now.",
            "La llamada terminó: este número no puede recibir llamadas de aquí ahora.",
        ),
        CallEndReason::AccountClosed => warning(
            "The call ended because the contact's account was closed.",
            "La llamada terminó porque se cerró la cuenta del contacto.",
        ),
        CallEndReason::ConnectionLost => warning("The connection was lost.", "Se perdió la conexión."),
        CallEndReason::EdgeShutdown => warning(
            "The call ended because the system is shutting down.",
            "La llamada terminó porque el sistema se está apagando.",
        ),
        CallEndReason::EdgeRestarted => warning(
            "The call ended because the system restarted.",
            "La llamada terminó porque el sistema se reinició.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: CallId = 77;

    fn update(state: CallState) -> CallUpdate {
        CallUpdate { call_id: ID, state }
    }

    fn started(max: u32, warn: u32) -> TabletResponse {
        TabletResponse::CallStarted { call_id: ID, max_duration_secs: max, warn_at_secs: warn, media: None }
    }

    /// A video call connected at t = 10 s with a 15-minute limit.
    fn connected() -> CallVm {
        let mut vm = CallVm::placing("Maria", CallKind::Video);
        vm.apply_response(&started(900, 840));
        vm.apply_update(&update(CallState::Ringing), 1_000);
        vm.apply_update(&update(CallState::Connected { limit_secs: 900 }), 10_000);
        vm
    }

    #[test]
    fn status_follows_the_edge() {
        let mut vm = CallVm::placing("Maria", CallKind::Video);
        let view = vm.view(Lang::English);
        assert_eq!(view.title, "Video call");
        assert_eq!(view.status_text, "Calling Maria…");
        assert!(!view.hang_up_enabled, "no call id to hang up yet");
        assert!(!view.show_timer);
        assert_eq!(vm.view(Lang::Spanish).status_text, "Llamando a Maria…");

        vm.apply_response(&started(900, 840));
        assert_eq!(vm.call_id(), Some(ID));
        assert!(vm.view(Lang::English).hang_up_enabled);

        vm.apply_update(&update(CallState::Ringing), 1_000);
        assert_eq!(vm.view(Lang::English).status_text, "Ringing…");
        assert_eq!(vm.view(Lang::Spanish).status_text, "Sonando…");

        vm.apply_update(&update(CallState::Connected { limit_secs: 900 }), 10_000);
        vm.tick(10_000 + 245_500);
        let view = vm.view(Lang::English);
        assert_eq!(view.status_text, "Connected");
        assert!(view.show_timer);
        assert_eq!(view.timer_text, "4:05");
        assert_eq!(view.remaining_text, "10:55");
        assert_eq!(view.timer_tone, Tone::Normal);
        assert_eq!(view.warning_text, "");
        assert_eq!(view.hang_up_label, "Hang up");
        assert_eq!(view.hang_up_accessible, "Hang up the call with Maria");
        assert_eq!(vm.view(Lang::Spanish).hang_up_label, "Colgar");
    }

    #[test]
    fn timer_turns_red_at_the_warning_point() {
        let mut vm = connected();
        vm.tick(10_000 + 839_999);
        let before = vm.view(Lang::English);
        assert_eq!(before.timer_tone, Tone::Normal);
        assert_eq!(before.warning_text, "");
        assert_eq!(before.remaining_text, "1:01");

        vm.tick(10_000 + 840_000);
        let at = vm.view(Lang::English);
        assert_eq!(at.timer_tone, Tone::Alert);
        assert_eq!(at.warning_text, "1 minute left");
        assert_eq!(at.remaining_text, "1:00");
        assert_eq!(vm.view(Lang::Spanish).warning_text, "Queda 1 minuto");

        // Past the limit the VM shows 0:00 but does not end the call itself.
        vm.tick(10_000 + 905_000);
        let late = vm.view(Lang::English);
        assert_eq!(late.remaining_text, "0:00");
        assert!(!late.is_over);
        assert!(late.hang_up_enabled);
        assert_eq!(late.warning_text, "The call is ending…");
    }

    #[test]
    fn edge_warning_is_trusted_even_early() {
        let mut vm = connected();
        vm.tick(20_000);
        vm.apply_update(&update(CallState::Warned { remaining_secs: 120 }), 20_000);
        vm.tick(21_000);
        let view = vm.view(Lang::English);
        assert_eq!(view.timer_tone, Tone::Alert);
        assert_eq!(view.remaining_text, "1:59");
        assert_eq!(view.warning_text, "2 minutes left");
        assert_eq!(vm.view(Lang::Spanish).warning_text, "Quedan 2 minutos");
    }

    #[test]
    fn fallback_warning_when_call_started_was_missed() {
        let mut vm = CallVm::placing("Maria", CallKind::Voice);
        vm.apply_update(&update(CallState::Connected { limit_secs: 300 }), 0);
        assert_eq!(vm.call_id(), Some(ID));
        vm.tick(239_000);
        assert!(!vm.is_warned());
        vm.tick(240_000);
        assert!(vm.is_warned());
    }

    #[test]
    fn did_not_answer_never_says_declined() {
        let mut vm = CallVm::placing("Maria", CallKind::Voice);
        vm.apply_response(&started(900, 840));
        vm.apply_update(&update(CallState::Ringing), 1_000);
        vm.apply_update(&update(CallState::Ended { reason: CallEndReason::DidNotAnswer }), 30_000);
        let view = vm.view(Lang::English);
        assert!(view.is_over);
        assert_eq!(view.status_text, "Call ended");
        assert_eq!(view.end_text, "Maria did not answer.");
        assert!(!view.hang_up_enabled);
        assert!(!view.show_timer);
        assert_eq!(vm.view(Lang::Spanish).end_text, "Maria no contestó.");
        for lang in Lang::ALL {
            let text = vm.view(lang).end_text.to_lowercase();
            assert!(!text.contains("declin") && !text.contains("rechaz"), "{text}");
        }
    }

    #[test]
    fn end_reasons_in_plain_words() {
        let mut vm = connected();
        vm.tick(910_000);
        vm.apply_update(&update(CallState::Ended { reason: CallEndReason::TimeLimit }), 910_000);
        let view = vm.view(Lang::English);
        assert_eq!(view.end_text, "The call reached its time limit.");
        assert_eq!(view.timer_text, "15:00", "timer frozen at the end");
        assert_eq!(view.timer_tone, Tone::Normal);
        vm.tick(999_000);
        assert_eq!(vm.view(Lang::English).timer_text, "15:00");
        assert_eq!(vm.view(Lang::Spanish).end_text, "La llamada llegó a su límite de tiempo.");

        let all = [
            CallEndReason::DidNotAnswer,
            CallEndReason::TimeLimit,
            CallEndReason::ResidentHungUp,
            CallEndReason::ContactHungUp,
            CallEndReason::Lockdown,
            CallEndReason::Suspended,
            CallEndReason::Blocked,
            CallEndReason::AccountClosed,
            CallEndReason::ConnectionLost,
            CallEndReason::EdgeShutdown,
            CallEndReason::EdgeRestarted,
        ];
        for reason in all {
            let (en, _) = end_reason_text(reason, "Maria", Lang::English);
            let (es, _) = end_reason_text(reason, "Maria", Lang::Spanish);
            assert!(!en.is_empty() && !es.is_empty() && en != es, "{reason:?}");
        }
        assert_eq!(
            end_reason_text(CallEndReason::ConnectionLost, "M", Lang::English).0,
            "The connection was lost."
        );
        assert_eq!(
            end_reason_text(CallEndReason::Lockdown, "M", Lang::English),
            ("The call ended because of a lockdown.".to_string(), Tone::Warning)
        );
    }

    #[test]
    fn hang_up_waits_for_the_edge() {
        let mut vm = connected();
        assert_eq!(vm.hang_up(), Some(ID));
        assert_eq!(vm.hang_up(), None, "asked once");
        let view = vm.view(Lang::English);
        assert_eq!(view.status_text, "Hanging up…");
        assert!(!view.hang_up_enabled && !view.is_over);
        vm.apply_response(&TabletResponse::HungUp { call_id: ID });
        assert!(!vm.is_over());
        vm.apply_update(&update(CallState::Ended { reason: CallEndReason::ResidentHungUp }), 20_000);
        assert_eq!(vm.view(Lang::English).end_text, "You ended the call.");
        assert_eq!(vm.view(Lang::Spanish).end_text, "Usted terminó la llamada.");
    }

    #[test]
    fn failed_hang_up_can_be_retried_and_unknown_call_ends() {
        let mut vm = connected();
        let _ = vm.hang_up();
        vm.apply_error(&ApiError::Internal("x".into()));
        assert!(vm.view(Lang::English).hang_up_enabled);
        vm.apply_error(&ApiError::UnknownCall { call_id: ID });
        let view = vm.view(Lang::English);
        assert!(view.is_over);
        assert_eq!(view.end_text, "The call has ended.");
    }

    #[test]
    fn refusals_and_failures() {
        let mut vm = CallVm::placing("Maria", CallKind::Video);
        vm.apply_response(&TabletResponse::Call(CallDecision::Denied(DenyReason::InsufficientBalance {
            balance_cents: 0,
            rate_cents_per_min: 20,
        })));
        let view = vm.view(Lang::English);
        assert!(view.is_over);
        assert_eq!(view.status_text, "The call was not placed");
        assert!(view.end_text.starts_with("This contact has $0.00; video calls cost $0.20 a minute."));
        assert_eq!(view.end_tone, Tone::Alert);
        assert_eq!(vm.view(Lang::Spanish).status_text, "No se hizo la llamada");

        let mut busy = CallVm::placing("Maria", CallKind::Voice);
        busy.apply_response(&TabletResponse::Error(ApiError::CallInProgress { call_id: 5 }));
        assert_eq!(busy.view(Lang::English).end_text, "You already have a call under way.");

        let mut down = CallVm::placing("Maria", CallKind::Voice);
        down.connection_failed();
        assert_eq!(down.view(Lang::Spanish).end_text, "No se pudo hacer la llamada. Intente de nuevo.");

        // Updates for another call or after the end change nothing.
        vm.apply_update(&CallUpdate { call_id: 9, state: CallState::Ringing }, 5);
        assert!(matches!(vm.phase(), CallPhase::Denied(_)));
    }

    #[test]
    fn call_started_after_an_overtaking_update_still_counts() {
        let mut vm = CallVm::placing("Maria", CallKind::Voice);
        vm.apply_update(&update(CallState::Ringing), 1_000);
        vm.apply_response(&started(300, 200));
        vm.apply_update(&update(CallState::Connected { limit_secs: 300 }), 2_000);
        vm.tick(2_000 + 199_000);
        assert!(!vm.is_warned());
        vm.tick(2_000 + 200_000);
        assert!(vm.is_warned(), "warns at the edge's warn_at_secs, not at T-60");
        assert_eq!(vm.view(Lang::English).warning_text, "2 minutes left");
        // A `CallStarted` for some other call changes nothing.
        vm.apply_response(&TabletResponse::CallStarted {
            call_id: 5,
            max_duration_secs: 1,
            warn_at_secs: 0,
            media: None,
        });
        assert_eq!(vm.call_id(), Some(ID));
        assert_eq!(vm.remaining_secs(), Some(100));
    }

    #[test]
    fn other_calls_updates_are_ignored() {
        let mut vm = connected();
        vm.apply_update(
            &CallUpdate { call_id: 9, state: CallState::Ended { reason: CallEndReason::Lockdown } },
            11_000,
        );
        assert_eq!(vm.phase(), &CallPhase::Connected);
    }
}
