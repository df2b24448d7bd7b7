//! The mailbox (Inbox / Sent / Drafts) and one opened message.
//!
//! Built from the edge's [`MailboxView`] and [`MessageView`]; every state
//! the edge reports is put into plain words here (never only a colour), and
//! what the resident may do next is read off the state the edge gave.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use proto::domain::ContactId;
use proto::messaging::{Attachment, Direction, ECardId, ECardRecord, MediaId, MessageId};
use proto::tablet::{Folder, MailboxView, MessageState, MessageView};

use super::common::clock;
use super::messaging_text::{full_date, plural, refusal, short_date};
use super::{Lang, Tone};

/// One folder tab above the message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderTab {
    pub folder: Folder,
    pub label: String,
    pub selected: bool,
    /// `3 new` on the Inbox tab; empty when there is nothing unread.
    pub badge: String,
}

/// One line of the message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRow {
    pub id: MessageId,
    pub contact: ContactId,
    pub contact_name: String,
    /// The subject, or `(no subject)`.
    pub subject: String,
    /// `5 min ago`, `Yesterday`, `Nov 3`.
    pub date: String,
    /// `2 attachments`; empty when there are none.
    pub attachments: String,
    /// Where the message stands, in words (`Waiting to send`, `Rejected: ...`).
    pub state: String,
    pub tone: Tone,
    pub unread: bool,
    /// `New` for unread mail, so unread is said in text and not only in bold.
    pub unread_marker: String,
}

/// One folder of the mailbox, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxVm {
    pub title: String,
    pub tabs: Vec<FolderTab>,
    pub rows: Vec<MailboxRow>,
    /// Shown instead of the list when the folder is empty; empty otherwise.
    pub empty_text: String,
    /// The Compose button's label.
    pub compose_label: String,
}

/// The tab label of a folder.
pub fn folder_label(folder: Folder, lang: Lang) -> String {
    match folder {
        Folder::Inbox => lang.pick("Inbox", "Recibidos"),
        Folder::Sent => lang.pick("Sent", "Enviados"),
        Folder::Drafts => lang.pick("Drafts", "Borradores"),
    }
    .to_string()
}

/// `3 new` / `3 nuevos`; empty for zero so the badge hides.
pub fn unread_badge(unread: u32, lang: Lang) -> String {
    if unread == 0 {
        return String::new();
    }
    plural(lang, u64::from(unread), ("new", "new"), ("nuevo", "nuevos"))
}

/// A message's state in words, with the tone the theme colours it in.
pub fn state_text(state: &MessageState, lang: Lang) -> (String, Tone) {
    match state {
        MessageState::Draft => (lang.pick("Draft", "Borrador").to_string(), Tone::Normal),
        MessageState::Queued => {
            (lang.pick("Waiting to send", "Esperando para enviar").to_string(), Tone::Warning)
        }
        MessageState::PaymentFailed { reason } => (
            format!(
                "{} {}",
                lang.pick(
                    "Not sent: the stamp payment failed.",
                    "No enviado: falló el pago de la estampilla."
                ),
                refusal(reason, lang)
            ),
            Tone::Alert,
        ),
        MessageState::Refused { reason } => (
            format!("{} {}", lang.pick("Not delivered.", "No entregado."), refusal(reason, lang)),
            Tone::Alert,
        ),
        MessageState::InReview => (lang.pick("Being reviewed", "En revisión").to_string(), Tone::Normal),
        MessageState::Approved => (lang.pick("Approved", "Aprobado").to_string(), Tone::Positive),
        // The reviewer's reason is shown as written; without one, the word alone.
        MessageState::Rejected { reason } if reason.trim().is_empty() => {
            (lang.pick("Rejected", "Rechazado").to_string(), Tone::Alert)
        }
        MessageState::Rejected { reason } => {
            (format!("{}: {}", lang.pick("Rejected", "Rechazado"), reason.trim()), Tone::Alert)
        }
        MessageState::Received { read: false } => (lang.pick("New", "Nuevo").to_string(), Tone::Positive),
        MessageState::Received { read: true } => (lang.pick("Read", "Leído").to_string(), Tone::Normal),
    }
}

fn subject_or_placeholder(subject: &str, lang: Lang) -> String {
    let subject = subject.trim();
    if subject.is_empty() {
        lang.pick("(no subject)", "(sin asunto)").to_string()
    } else {
        subject.to_string()
    }
}

fn attachment_count(n: u32, lang: Lang) -> String {
    if n == 0 {
        return String::new();
    }
    plural(lang, u64::from(n), ("attachment", "attachments"), ("adjunto", "adjuntos"))
}

fn empty_folder_text(folder: Folder, lang: Lang) -> String {
    match folder {
        Folder::Inbox => lang.pick("No messages yet.", "Aún no hay mensajes."),
        Folder::Sent => lang.pick("You have not sent any messages.", "No has enviado mensajes."),
        Folder::Drafts => lang.pick("No drafts.", "No hay borradores."),
    }
    .to_string()
}

impl MailboxVm {
    /// Builds the folder the edge answered with. `tz` is the facility's time
    /// zone, for dates older than a week.
    pub fn new(view: &MailboxView, now: Timestamp, tz: &TimeZone, lang: Lang) -> Self {
        let tabs = [Folder::Inbox, Folder::Sent, Folder::Drafts]
            .into_iter()
            .map(|folder| FolderTab {
                folder,
                label: folder_label(folder, lang),
                selected: folder == view.folder,
                // The edge counts unread inbound mail whatever folder was asked.
                badge: if folder == Folder::Inbox { unread_badge(view.unread, lang) } else { String::new() },
            })
            .collect();
        let rows = view
            .messages
            .iter()
            .map(|m| {
                let (state, tone) = state_text(&m.state, lang);
                let unread = matches!(m.state, MessageState::Received { read: false });
                MailboxRow {
                    id: m.id,
                    contact: m.contact,
                    contact_name: m.contact_name.clone(),
                    subject: subject_or_placeholder(&m.subject, lang),
                    date: short_date(lang, m.at, now, tz),
                    attachments: attachment_count(m.attachments, lang),
                    state,
                    tone,
                    unread,
                    unread_marker: if unread { lang.pick("New", "Nuevo").to_string() } else { String::new() },
                }
            })
            .collect::<Vec<_>>();
        let empty_text = if rows.is_empty() { empty_folder_text(view.folder, lang) } else { String::new() };
        MailboxVm {
            title: lang.pick("Messages", "Mensajes").to_string(),
            tabs,
            rows,
            empty_text,
            compose_label: lang.pick("Write a message", "Escribir un mensaje").to_string(),
        }
    }
}

/// What an attachment is, so the screen picks the right viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    /// A card from the catalog.
    ECard,
    /// A photo attached to a contact's message.
    Photo,
    /// A photo a contact sent on its own.
    SnapNSend,
    /// A short video from a contact.
    VideoGram,
}

/// One attachment of an opened message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    pub kind: AttachmentKind,
    /// `Photo`, `eCard: Happy Birthday`, `VideoGram (0:30)`.
    pub label: String,
    /// The VideoGram's length, `0:30`; empty for other kinds.
    pub duration: String,
    pub duration_secs: u32,
    /// Set for photos and videos (held by central).
    pub media: Option<MediaId>,
    /// Set for eCards.
    pub ecard: Option<ECardId>,
}

/// An attachment in words. `catalog` names eCards; a card missing from it
/// is still listed, just without its title.
pub fn attachment_row(attachment: &Attachment, catalog: &[ECardRecord], lang: Lang) -> AttachmentRow {
    match *attachment {
        Attachment::ECard(id) => {
            let title = catalog.iter().find(|card| card.id == id).map(|card| card.title.trim());
            let kind = lang.pick("eCard", "Tarjeta");
            AttachmentRow {
                kind: AttachmentKind::ECard,
                label: match title {
                    Some(title) if !title.is_empty() => format!("{kind}: {title}"),
                    _ => kind.to_string(),
                },
                duration: String::new(),
                duration_secs: 0,
                media: None,
                ecard: Some(id),
            }
        }
        Attachment::Photo(media) => AttachmentRow {
            kind: AttachmentKind::Photo,
            label: lang.pick("Photo", "Foto").to_string(),
            duration: String::new(),
            duration_secs: 0,
            media: Some(media),
            ecard: None,
        },
        Attachment::SnapNSend(media) => AttachmentRow {
            kind: AttachmentKind::SnapNSend,
            label: lang.pick("Snap n' Send photo", "Foto Snap n' Send").to_string(),
            duration: String::new(),
            duration_secs: 0,
            media: Some(media),
            ecard: None,
        },
        Attachment::VideoGram { media, duration_secs } => {
            let duration = clock(u64::from(duration_secs));
            AttachmentRow {
                kind: AttachmentKind::VideoGram,
                label: format!("VideoGram ({duration})"),
                duration,
                duration_secs: u32::from(duration_secs),
                media: Some(media),
                ecard: None,
            }
        }
    }
}

/// Something the resident can do with an opened message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAction {
    /// Answer an inbound message (opens Compose to the same contact).
    Reply,
    /// Hide a sent message from the Sent folder; the facility's record keeps it.
    HideSent,
    /// Open a draft in Compose.
    EditDraft,
    /// Delete a draft for good (it was never sent).
    DeleteDraft,
}

/// A button under an opened message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionButton {
    pub action: MessageAction,
    pub label: String,
    /// Asked before the action runs; empty when no confirmation is needed.
    pub confirm: String,
}

/// One message opened in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageVm {
    pub id: MessageId,
    pub contact: ContactId,
    pub contact_name: String,
    /// `From Maria Alvarez` / `To Maria Alvarez`.
    pub header: String,
    pub subject: String,
    /// `Nov 3, 2026, 14:05`.
    pub date: String,
    pub body: String,
    pub state: String,
    pub tone: Tone,
    /// `Rejected: <reason>` or why it was not sent; empty otherwise. Kept
    /// apart from `state` so the screen can show it as its own line.
    pub problem: String,
    /// `2 attachments`; empty when there are none.
    pub attachments_title: String,
    pub attachments: Vec<AttachmentRow>,
    pub actions: Vec<ActionButton>,
}

impl MessageVm {
    /// Builds an opened message. `catalog` names its eCards; `tz` is the
    /// facility's time zone.
    pub fn new(view: &MessageView, catalog: &[ECardRecord], tz: &TimeZone, lang: Lang) -> Self {
        let (state, tone) = state_text(&view.state, lang);
        let problem = match view.state {
            MessageState::Rejected { .. }
            | MessageState::PaymentFailed { .. }
            | MessageState::Refused { .. } => state.clone(),
            _ => String::new(),
        };
        let header = match (view.direction, lang) {
            (Direction::ContactToResident, Lang::English) => format!("From {}", view.contact_name),
            (Direction::ContactToResident, Lang::Spanish) => format!("De {}", view.contact_name),
            (Direction::ResidentToContact, Lang::English) => format!("To {}", view.contact_name),
            (Direction::ResidentToContact, Lang::Spanish) => format!("Para {}", view.contact_name),
        };
        let attachments: Vec<_> = view.attachments.iter().map(|a| attachment_row(a, catalog, lang)).collect();
        MessageVm {
            id: view.id,
            contact: view.contact,
            contact_name: view.contact_name.clone(),
            header,
            subject: subject_or_placeholder(&view.subject, lang),
            date: full_date(lang, view.at, tz),
            body: view.body.clone(),
            state,
            tone,
            problem,
            attachments_title: attachment_count(u32::try_from(attachments.len()).unwrap_or(u32::MAX), lang),
            attachments,
            actions: actions_for(view, lang),
        }
    }
}

/// The edge tells drafts, sent and received mail apart by state and
/// direction; the buttons follow from that.
fn actions_for(view: &MessageView, lang: Lang) -> Vec<ActionButton> {
    let button = |action, en, es, confirm_en: &str, confirm_es: &str| ActionButton {
        action,
        label: lang.pick(en, es).to_string(),
        confirm: lang.pick(confirm_en, confirm_es).to_string(),
    };
    match (&view.state, view.direction) {
        (MessageState::Draft, _) => vec![
            button(MessageAction::EditDraft, "Edit", "Editar", "", ""),
            button(
                MessageAction::DeleteDraft,
                "Delete draft",
                "Borrar borrador",
                "Delete this draft? This cannot be undone.",
                "¿Borrar este borrador? No se puede deshacer.",
            ),
        ],
        (_, Direction::ContactToResident) => vec![button(MessageAction::Reply, "Reply", "Responder", "", "")],
        (_, Direction::ResidentToContact) => vec![button(
            MessageAction::HideSent,
            "Delete",
            "Borrar",
            "Remove this message from your Sent folder? The facility keeps its record.",
            "¿Quitar este mensaje de tus enviados? El centro conserva su registro.",
        )],
    }
}

/// Where an opened message's photo or VideoGram stands on this tablet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaState {
    /// Chunks are on their way from the edge.
    Loading,
    /// The edge has not downloaded it from central yet.
    NotDownloaded,
    /// The edge refused it or could not be reached.
    Unavailable,
    /// Every byte is here.
    Ready,
}

impl MediaState {
    /// Plain words for the viewer; empty once the media is here.
    pub fn words(self, lang: Lang) -> String {
        match self {
            MediaState::Loading => lang.pick("Loading…", "Cargando…"),
            MediaState::NotDownloaded => lang.pick(
                "Not downloaded yet. Please try again later.",
                "Todavía no se ha descargado. Inténtalo más tarde.",
            ),
            MediaState::Unavailable => {
                lang.pick("This attachment cannot be shown.", "Este adjunto no se puede mostrar.")
            }
            MediaState::Ready => "",
        }
        .to_string()
    }
}

/// Play/pause state of a VideoGram, and its labels. The player reports the
/// position; this only words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoGramPlayback {
    duration_secs: u32,
    position_ms: u64,
    playing: bool,
}

impl VideoGramPlayback {
    /// Stopped at the start.
    pub fn new(duration_secs: u32) -> Self {
        VideoGramPlayback { duration_secs, position_ms: 0, playing: false }
    }

    /// The video is playing (the button shows Pause).
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    pub fn set_playing(&mut self, playing: bool) {
        self.playing = playing;
    }

    /// Back to the start (played again from the beginning, or failed).
    pub fn rewind(&mut self) {
        self.position_ms = 0;
    }

    /// The player's position. The length central gave is whole seconds, so
    /// a video a little longer than it says stops at its end on the bar.
    pub fn set_position_ms(&mut self, ms: u64) {
        self.position_ms = ms.min(self.duration_ms());
    }

    /// The player reached the end.
    pub fn finish(&mut self) {
        self.position_ms = self.duration_ms();
        self.playing = false;
    }

    fn duration_ms(&self) -> u64 {
        u64::from(self.duration_secs) * 1000
    }

    /// `Play` or `Pause`, for the button (and screen readers).
    pub fn button_label(&self, lang: Lang) -> String {
        if self.playing { lang.pick("Pause", "Pausa") } else { lang.pick("Play", "Reproducir") }.to_string()
    }

    /// `0:12 / 0:30`.
    pub fn progress_label(&self) -> String {
        format!("{} / {}", clock(self.position_ms / 1000), clock(u64::from(self.duration_secs)))
    }

    /// 0.0 ..= 1.0, for the progress bar.
    pub fn fraction(&self) -> f32 {
        if self.duration_secs == 0 {
            return 0.0;
        }
        self.position_ms as f32 / self.duration_ms() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::messaging::RefusalReason;
    use proto::tablet::MessageSummary;

    const NOW: i64 = 1_795_000_000;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn media_states_are_plain_words_in_both_languages() {
        assert_eq!(MediaState::Loading.words(Lang::English), "Loading…");
        assert_eq!(MediaState::Loading.words(Lang::Spanish), "Cargando…");
        assert_eq!(
            MediaState::NotDownloaded.words(Lang::English),
            "Not downloaded yet. Please try again later."
        );
        assert_eq!(
            MediaState::NotDownloaded.words(Lang::Spanish),
            "Todavía no se ha descargado. Inténtalo más tarde."
        );
        assert_eq!(MediaState::Unavailable.words(Lang::Spanish), "Este adjunto no se puede mostrar.");
        assert_eq!(MediaState::Ready.words(Lang::English), "");
    }

    fn summary(n: u128, subject: &str, state: MessageState, attachments: u32) -> MessageSummary {
        MessageSummary {
            id: MessageId::from_u128(n),
            contact: ContactId(7),
            contact_name: "Maria Alvarez".into(),
            direction: match state {
                MessageState::Received { .. } => Direction::ContactToResident,
                _ => Direction::ResidentToContact,
            },
            subject: subject.into(),
            at: ts(NOW - 600),
            attachments,
            state,
        }
    }

    fn view(state: MessageState, direction: Direction, attachments: Vec<Attachment>) -> MessageView {
        MessageView {
            id: MessageId::from_u128(1),
            contact: ContactId(7),
            contact_name: "Maria Alvarez".into(),
            direction,
            subject: "Hola".into(),
            body: "¿Cómo estás? 😀".into(),
            attachments,
            at: ts(NOW),
            state,
        }
    }

    #[test]
    fn inbox_tabs_badge_and_rows() {
        let mailbox = MailboxView {
            folder: Folder::Inbox,
            messages: vec![
                summary(1, "Hi", MessageState::Received { read: false }, 2),
                summary(2, "  ", MessageState::Received { read: true }, 0),
            ],
            unread: 3,
        };
        let vm = MailboxVm::new(&mailbox, ts(NOW), &TimeZone::UTC, Lang::English);
        assert_eq!(vm.title, "Messages");
        let labels: Vec<_> = vm.tabs.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["Inbox", "Sent", "Drafts"]);
        assert!(vm.tabs[0].selected && !vm.tabs[1].selected && !vm.tabs[2].selected);
        assert_eq!(vm.tabs[0].badge, "3 new");
        assert_eq!(vm.tabs[1].badge, "");
        assert_eq!(vm.empty_text, "");
        let row = &vm.rows[0];
        assert_eq!(row.contact_name, "Maria Alvarez");
        assert_eq!(row.subject, "Hi");
        assert_eq!(row.date, "10 min ago");
        assert_eq!(row.attachments, "2 attachments");
        assert!(row.unread);
        assert_eq!(row.unread_marker, "New");
        assert_eq!(vm.rows[1].subject, "(no subject)");
        assert_eq!(vm.rows[1].attachments, "");
        assert_eq!(vm.rows[1].unread_marker, "");
        assert_eq!(vm.rows[1].state, "Read");
    }

    #[test]
    fn spanish_mailbox_and_plurals() {
        let mailbox = MailboxView {
            folder: Folder::Sent,
            messages: vec![summary(1, "", MessageState::Queued, 1)],
            unread: 1,
        };
        let vm = MailboxVm::new(&mailbox, ts(NOW), &TimeZone::UTC, Lang::Spanish);
        assert_eq!(vm.tabs[0].label, "Recibidos");
        assert_eq!(vm.tabs[0].badge, "1 nuevo");
        assert!(vm.tabs[1].selected);
        assert_eq!(vm.rows[0].subject, "(sin asunto)");
        assert_eq!(vm.rows[0].attachments, "1 adjunto");
        assert_eq!(vm.rows[0].date, "hace 10 min");
        assert_eq!(vm.rows[0].state, "Esperando para enviar");
        assert_eq!(unread_badge(3, Lang::Spanish), "3 nuevos");
        assert_eq!(unread_badge(0, Lang::Spanish), "");
    }

    #[test]
    fn empty_folders_say_so() {
        for (folder, en, es) in [
            (Folder::Inbox, "No messages yet.", "Aún no hay mensajes."),
            (Folder::Sent, "You have not sent any messages.", "No has enviado mensajes."),
            (Folder::Drafts, "No drafts.", "No hay borradores."),
        ] {
            let mailbox = MailboxView { folder, messages: Vec::new(), unread: 0 };
            assert_eq!(MailboxVm::new(&mailbox, ts(NOW), &TimeZone::UTC, Lang::English).empty_text, en);
            assert_eq!(MailboxVm::new(&mailbox, ts(NOW), &TimeZone::UTC, Lang::Spanish).empty_text, es);
        }
    }

    #[test]
    fn every_state_has_words() {
        let funds = RefusalReason::InsufficientFunds { balance_cents: 100, price_cents: 475 };
        let cases = [
            (MessageState::Draft, "Draft", "Borrador", Tone::Normal),
            (MessageState::Queued, "Waiting to send", "Esperando para enviar", Tone::Warning),
            (
                MessageState::PaymentFailed { reason: funds.clone() },
                "Not sent: the stamp payment failed. Not enough money in your account: the balance was $1.00 and the price is $4.75.",
                "No enviado: falló el pago de la estampilla. No hay suficiente dinero en tu cuenta: el saldo era $1.00 y el precio es $4.75.",
                Tone::Alert,
            ),
            (
                MessageState::Refused { reason: RefusalReason::NoStamps },
                "Not delivered. There was no stamp to pay for it.",
                "No entregado. No había estampilla para pagarlo.",
                Tone::Alert,
            ),
            (MessageState::InReview, "Being reviewed", "En revisión", Tone::Normal),
            (MessageState::Approved, "Approved", "Aprobado", Tone::Positive),
            (
                MessageState::Rejected { reason: "Contains a phone number".into() },
                "Rejected: Contains a phone number",
                "Rechazado: Contains a phone number",
                Tone::Alert,
            ),
            (MessageState::Received { read: false }, "New", "Nuevo", Tone::Positive),
            (MessageState::Received { read: true }, "Read", "Leído", Tone::Normal),
        ];
        assert_eq!(
            state_text(&MessageState::Rejected { reason: " ".into() }, Lang::Spanish),
            ("Rechazado".to_string(), Tone::Alert)
        );
        for (state, en, es, tone) in cases {
            assert_eq!(state_text(&state, Lang::English), (en.to_string(), tone));
            assert_eq!(state_text(&state, Lang::Spanish), (es.to_string(), tone));
        }
    }

    #[test]
    fn received_message_with_attachments_offers_reply() {
        let catalog = vec![ECardRecord {
            id: ECardId(4),
            category: "Birthdays".into(),
            title: "Happy Birthday".into(),
        }];
        let attachments = vec![
            Attachment::Photo(MediaId(1)),
            Attachment::ECard(ECardId(4)),
            Attachment::ECard(ECardId(99)),
            Attachment::SnapNSend(MediaId(2)),
            Attachment::VideoGram { media: MediaId(3), duration_secs: 30 },
        ];
        let vm = MessageVm::new(
            &view(MessageState::Received { read: true }, Direction::ContactToResident, attachments),
            &catalog,
            &TimeZone::UTC,
            Lang::English,
        );
        assert_eq!(vm.header, "From Maria Alvarez");
        assert_eq!(vm.subject, "Hola");
        assert_eq!(vm.body, "¿Cómo estás? 😀");
        assert_eq!(vm.date, "Nov 18, 2026, 11:06");
        assert_eq!(vm.problem, "");
        assert_eq!(vm.attachments_title, "5 attachments");
        let labels: Vec<_> = vm.attachments.iter().map(|a| a.label.as_str()).collect();
        assert_eq!(
            labels,
            ["Photo", "eCard: Happy Birthday", "eCard", "Snap n' Send photo", "VideoGram (0:30)"]
        );
        assert_eq!(vm.attachments[4].kind, AttachmentKind::VideoGram);
        assert_eq!(vm.attachments[4].duration, "0:30");
        assert_eq!(vm.attachments[4].media, Some(MediaId(3)));
        assert_eq!(vm.attachments[1].ecard, Some(ECardId(4)));
        assert_eq!(vm.actions.len(), 1);
        assert_eq!(vm.actions[0].action, MessageAction::Reply);
        assert_eq!(vm.actions[0].label, "Reply");

        let es = MessageVm::new(
            &view(
                MessageState::Received { read: true },
                Direction::ContactToResident,
                vec![Attachment::Photo(MediaId(1))],
            ),
            &catalog,
            &TimeZone::UTC,
            Lang::Spanish,
        );
        assert_eq!(es.header, "De Maria Alvarez");
        assert_eq!(es.date, "18 nov 2026, 11:06");
        assert_eq!(es.attachments_title, "1 adjunto");
        assert_eq!(es.attachments[0].label, "Foto");
        assert_eq!(es.actions[0].label, "Responder");

        // Dates are in the facility's zone, not UTC.
        let central = TimeZone::fixed(jiff::tz::offset(-6));
        let local = MessageVm::new(
            &view(MessageState::Received { read: true }, Direction::ContactToResident, vec![]),
            &[],
            &central,
            Lang::English,
        );
        assert_eq!(local.date, "Nov 18, 2026, 05:06");
    }

    #[test]
    fn rejected_sent_message_shows_reason_and_can_be_hidden() {
        let vm = MessageVm::new(
            &view(
                MessageState::Rejected { reason: "Gang references".into() },
                Direction::ResidentToContact,
                vec![],
            ),
            &[],
            &TimeZone::UTC,
            Lang::English,
        );
        assert_eq!(vm.header, "To Maria Alvarez");
        assert_eq!(vm.problem, "Rejected: Gang references");
        assert_eq!(vm.tone, Tone::Alert);
        assert_eq!(vm.attachments_title, "");
        assert_eq!(vm.actions.len(), 1);
        assert_eq!(vm.actions[0].action, MessageAction::HideSent);
        assert_eq!(vm.actions[0].label, "Delete");
        assert!(vm.actions[0].confirm.contains("keeps its record"));
        let es = MessageVm::new(
            &view(MessageState::Approved, Direction::ResidentToContact, vec![]),
            &[],
            &TimeZone::UTC,
            Lang::Spanish,
        );
        assert_eq!(es.header, "Para Maria Alvarez");
        assert_eq!(es.problem, "");
        assert_eq!(es.actions[0].label, "Borrar");
    }

    #[test]
    fn drafts_can_be_edited_or_deleted() {
        let vm = MessageVm::new(
            &view(MessageState::Draft, Direction::ResidentToContact, vec![]),
            &[],
            &TimeZone::UTC,
            Lang::English,
        );
        let actions: Vec<_> = vm.actions.iter().map(|a| a.action).collect();
        assert_eq!(actions, [MessageAction::EditDraft, MessageAction::DeleteDraft]);
        assert_eq!(vm.actions[0].label, "Edit");
        assert_eq!(vm.actions[0].confirm, "");
        assert_eq!(vm.actions[1].confirm, "Delete this draft? This cannot be undone.");
    }

    #[test]
    fn videogram_playback_labels() {
        let mut playback = VideoGramPlayback::new(30);
        assert_eq!(playback.button_label(Lang::English), "Play");
        assert_eq!(playback.progress_label(), "0:00 / 0:30");
        playback.set_playing(true);
        assert!(playback.is_playing());
        assert_eq!(playback.button_label(Lang::English), "Pause");
        assert_eq!(playback.button_label(Lang::Spanish), "Pausa");
        playback.set_position_ms(12_400);
        assert_eq!(playback.progress_label(), "0:12 / 0:30");
        assert!((playback.fraction() - 12.4 / 30.0).abs() < 1e-6);
        playback.set_position_ms(99_000);
        assert_eq!(playback.progress_label(), "0:30 / 0:30", "a longer file stops at the end of the bar");
        assert!(playback.is_playing(), "only the player says when it has ended");
        playback.finish();
        assert!(!playback.is_playing());
        assert_eq!(playback.button_label(Lang::Spanish), "Reproducir");
        assert_eq!(playback.fraction(), 1.0);
        playback.rewind();
        assert_eq!(playback.progress_label(), "0:00 / 0:30");
        assert_eq!(VideoGramPlayback::new(0).fraction(), 0.0);
    }
}
