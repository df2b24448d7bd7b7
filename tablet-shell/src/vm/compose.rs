//! Writing a message: recipient, stamps, subject, body with its character
//! counter, eCard attachments, and the eCard picker.
//!
//! The UI proposes each edit here and sends [`ComposeVm::to_compose`] to the
//! edge (as a draft save or a send); the edge checks it. What the edge
//! accepted is kept, so when it refuses an edit the screen shows why in plain
//! words and goes back to the last accepted text: nothing here decides
//! whether a message is too long or may be sent.

use proto::domain::{ContactId, FacilityRecord};
use proto::messaging::{
    Attachment, Compose, ECardId, ECardRecord, MessageId, MessagingError, MAX_ATTACHMENTS,
};
use proto::tablet::{MessageState, MessageView};

use super::messages::state_text;
use super::messaging_text::{char_count, count, messaging_error, plural};
use super::{Lang, Tone};

/// A body shorter than this many characters left turns the counter to a
/// warning, so the resident sees the end coming before the edge refuses.
const COUNTER_WARNING_CHARS: u64 = 100;

fn chars_word(lang: Lang, n: u64) -> String {
    plural(lang, n, ("character", "characters"), ("carácter", "caracteres"))
}

fn stamps_word(lang: Lang, n: u64) -> String {
    plural(lang, n, ("stamp", "stamps"), ("estampilla", "estampillas"))
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Content {
    subject: String,
    body: String,
    attachments: Vec<Attachment>,
}

/// The last answer of the edge, kept structured so a language switch
/// re-words it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Notice {
    Refused(MessagingError),
    Saved,
    Sent(MessageState),
}

/// One attachment on the compose screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeAttachmentRow {
    /// `eCard: Happy Birthday`.
    pub label: String,
    /// The remove button's label (`Remove`).
    pub remove_label: String,
}

/// Everything the compose screen shows, ready to copy into the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeScreen {
    /// `New message` or `Edit draft`.
    pub title: String,
    pub contact: ContactId,
    /// `To: Maria Alvarez`.
    pub to: String,
    /// `2 stamps left`, or `No stamps left — buy a package`.
    pub stamps: String,
    pub stamps_tone: Tone,
    /// No stamps for this contact: composing needs one, so the screen
    /// offers (or goes to) the stamps screen for this contact.
    pub go_to_stamps: bool,
    pub buy_stamps_label: String,
    pub subject_label: String,
    pub subject: String,
    pub body_label: String,
    pub body: String,
    /// `3,714 characters left` / `1 character over the limit`.
    pub counter: String,
    pub counter_tone: Tone,
    /// `Attachments: 2 of 5`.
    pub attachments_title: String,
    pub attachments: Vec<ComposeAttachmentRow>,
    pub add_ecard_label: String,
    /// Display only: the edge still checks the count.
    pub add_ecard_enabled: bool,
    /// The edge's last answer in words (an error, `Draft saved.`, `Sent. ...`);
    /// empty when there is none.
    pub notice: String,
    pub notice_tone: Tone,
    pub send_label: String,
    pub send_enabled: bool,
    pub save_label: String,
    pub save_enabled: bool,
    /// The message was queued; the screen can close.
    pub finished: bool,
}

/// A message being written to one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeVm {
    lang: Lang,
    contact: ContactId,
    contact_name: String,
    stamps: u32,
    limit: u32,
    draft: Option<MessageId>,
    /// What the edge last accepted (or what the screen opened with).
    accepted: Content,
    /// What the resident has typed and picked, proposed to the edge.
    current: Content,
    /// Titles of eCards, to name attachments.
    titles: Vec<(ECardId, String)>,
    notice: Option<Notice>,
    finished: bool,
}

impl ComposeVm {
    /// A new, empty message. `stamps` is the edge's count of stamps usable
    /// for this contact.
    pub fn new(contact: ContactId, contact_name: impl Into<String>, stamps: u32, lang: Lang) -> Self {
        ComposeVm {
            lang,
            contact,
            contact_name: contact_name.into(),
            stamps,
            limit: FacilityRecord::DEFAULT_MESSAGE_CHAR_LIMIT,
            draft: None,
            accepted: Content::default(),
            current: Content::default(),
            titles: Vec::new(),
            notice: None,
            finished: false,
        }
    }

    /// Reopens a draft the edge holds (`view.state` is `Draft`).
    pub fn edit_draft(view: &MessageView, stamps: u32, catalog: &[ECardRecord], lang: Lang) -> Self {
        let content = Content {
            subject: view.subject.clone(),
            body: view.body.clone(),
            attachments: view.attachments.clone(),
        };
        ComposeVm {
            draft: Some(view.id),
            accepted: content.clone(),
            current: content,
            ..ComposeVm::new(view.contact, view.contact_name.clone(), stamps, lang).with_catalog(catalog)
        }
    }

    /// Answers a received message: same contact, subject `Re: ...`.
    pub fn reply_to(view: &MessageView, stamps: u32, lang: Lang) -> Self {
        let subject = view.subject.trim();
        let subject = if subject.is_empty() || subject.to_lowercase().starts_with("re:") {
            subject.to_string()
        } else {
            format!("Re: {subject}")
        };
        let mut vm = ComposeVm::new(view.contact, view.contact_name.clone(), stamps, lang);
        vm.current.subject = subject;
        vm
    }

    /// The facility's body limit in characters, when it is not the default.
    /// Only the counter uses it; the edge enforces its own.
    pub fn with_char_limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Names attached eCards from the catalog.
    pub fn with_catalog(mut self, catalog: &[ECardRecord]) -> Self {
        for card in catalog {
            self.remember_title(card);
        }
        self
    }

    fn remember_title(&mut self, card: &ECardRecord) {
        match self.titles.iter_mut().find(|(id, _)| *id == card.id) {
            Some((_, title)) => title.clone_from(&card.title),
            None => self.titles.push((card.id, card.title.clone())),
        }
    }

    /// Switches the screen's language; the edge's last answer is re-worded.
    pub fn set_lang(&mut self, lang: Lang) {
        self.lang = lang;
    }

    /// The edge's new count, e.g. after a purchase.
    pub fn set_stamps(&mut self, stamps: u32) {
        self.stamps = stamps;
    }

    /// The recipient.
    pub fn contact(&self) -> ContactId {
        self.contact
    }

    /// The draft this compose saves into; `None` until the edge saved one.
    pub fn draft_id(&self) -> Option<MessageId> {
        self.draft
    }

    /// The subject as typed (proposed, maybe not yet accepted).
    pub fn subject(&self) -> &str {
        &self.current.subject
    }

    /// The body as typed (proposed, maybe not yet accepted).
    pub fn body(&self) -> &str {
        &self.current.body
    }

    /// The attachments as picked (proposed, maybe not yet accepted).
    pub fn attachments(&self) -> &[Attachment] {
        &self.current.attachments
    }

    /// Something typed or picked has not been accepted by the edge yet.
    pub fn has_unsaved_changes(&self) -> bool {
        self.current != self.accepted
    }

    /// Proposes a new subject.
    pub fn set_subject(&mut self, subject: impl Into<String>) {
        self.current.subject = subject.into();
        self.notice = None;
    }

    /// Proposes a new body.
    pub fn set_body(&mut self, body: impl Into<String>) {
        self.current.body = body.into();
        self.notice = None;
    }

    /// Proposes attaching an eCard picked from the catalog. A sixth one is
    /// proposed too: the edge says no, and the screen says why.
    pub fn add_ecard(&mut self, card: &ECardRecord) {
        self.remember_title(card);
        self.current.attachments.push(Attachment::ECard(card.id));
        self.notice = None;
    }

    /// Proposes removing the attachment at `index`; out of range does nothing.
    pub fn remove_attachment(&mut self, index: usize) {
        if index < self.current.attachments.len() {
            self.current.attachments.remove(index);
            self.notice = None;
        }
    }

    /// The proposed message, for `SaveDraft` or `SendMessage`.
    pub fn to_compose(&self) -> Compose {
        Compose {
            contact: self.contact,
            subject: self.current.subject.clone(),
            body: self.current.body.clone(),
            attachments: self.current.attachments.clone(),
        }
    }

    /// The edge saved the proposal as draft `id`.
    pub fn apply_saved(&mut self, id: MessageId) {
        self.draft = Some(id);
        self.accepted = self.current.clone();
        self.notice = Some(Notice::Saved);
    }

    /// The edge queued the message (and removed its draft).
    pub fn apply_queued(&mut self, message: &MessageView) {
        self.draft = None;
        self.accepted = self.current.clone();
        self.notice = Some(Notice::Sent(message.state.clone()));
        self.finished = true;
    }

    /// The edge refused the proposal. Errors about what was edited (too
    /// long, too many or wrong attachments) roll back to the last accepted
    /// content; the others keep the text, since it was not at fault and the
    /// resident would lose it for nothing.
    pub fn apply_edge_error(&mut self, err: &MessagingError) {
        match err {
            MessagingError::TooLong { .. }
            | MessagingError::TooManyAttachments { .. }
            | MessagingError::UnknownECard(_)
            | MessagingError::AttachmentNotAllowed(_) => self.current = self.accepted.clone(),
            MessagingError::NoStamps { .. } => self.stamps = 0,
            // The draft is gone at the edge; the next save creates a new one
            // so the text is not lost.
            MessagingError::UnknownDraft(_) => self.draft = None,
            MessagingError::InsufficientFunds { .. }
            | MessagingError::ContactNotApproved { .. }
            | MessagingError::UnknownContact { .. }
            | MessagingError::NotAllowed(_)
            | MessagingError::UnknownPackage(_)
            | MessagingError::Empty => {}
        }
        self.notice = Some(Notice::Refused(err.clone()));
    }

    fn title_of(&self, attachment: &Attachment) -> String {
        let lang = self.lang;
        match attachment {
            Attachment::ECard(id) => {
                let kind = lang.pick("eCard", "Tarjeta");
                match self.titles.iter().find(|(known, _)| known == id) {
                    Some((_, title)) if !title.trim().is_empty() => format!("{kind}: {}", title.trim()),
                    _ => kind.to_string(),
                }
            }
            // Residents attach only eCards; a draft could still hold others.
            Attachment::Photo(_) | Attachment::SnapNSend(_) => lang.pick("Photo", "Foto").to_string(),
            Attachment::VideoGram { .. } => "VideoGram".to_string(),
        }
    }

    fn counter(&self) -> (String, Tone) {
        let lang = self.lang;
        let chars = char_count(&self.current.body);
        let limit = u64::from(self.limit);
        if chars > limit {
            let over = chars - limit;
            let text = match lang {
                Lang::English => format!("{} over the limit", chars_word(lang, over)),
                Lang::Spanish => format!("{} de más", chars_word(lang, over)),
            };
            return (text, Tone::Alert);
        }
        let left = limit - chars;
        let text = match lang {
            Lang::English => format!("{} left", chars_word(lang, left)),
            Lang::Spanish => {
                let verb = if left == 1 { "Queda" } else { "Quedan" };
                format!("{verb} {}", chars_word(lang, left))
            }
        };
        (text, if left < COUNTER_WARNING_CHARS { Tone::Warning } else { Tone::Normal })
    }

    fn stamps_line(&self) -> (String, Tone) {
        let lang = self.lang;
        if self.stamps == 0 {
            let text =
                lang.pick("No stamps left — buy a package", "No te quedan estampillas — compra un paquete");
            return (text.to_string(), Tone::Alert);
        }
        let n = u64::from(self.stamps);
        let text = match lang {
            Lang::English => format!("{} left", stamps_word(lang, n)),
            Lang::Spanish => {
                let verb = if n == 1 { "Te queda" } else { "Te quedan" };
                format!("{verb} {}", stamps_word(lang, n))
            }
        };
        (text, Tone::Normal)
    }

    fn notice_line(&self) -> (String, Tone) {
        let lang = self.lang;
        match &self.notice {
            None => (String::new(), Tone::Normal),
            Some(Notice::Refused(err)) => (messaging_error(err, lang), Tone::Alert),
            Some(Notice::Saved) => {
                (lang.pick("Draft saved.", "Borrador guardado.").to_string(), Tone::Positive)
            }
            Some(Notice::Sent(MessageState::Queued)) => (
                lang.pick(
                    "Sent. It will be delivered when the connection returns.",
                    "Enviado. Se entregará cuando vuelva la conexión.",
                )
                .to_string(),
                Tone::Positive,
            ),
            Some(Notice::Sent(MessageState::InReview)) => (
                lang.pick(
                    "Sent. The facility reviews every message before it is delivered.",
                    "Enviado. El centro revisa cada mensaje antes de entregarlo.",
                )
                .to_string(),
                Tone::Positive,
            ),
            Some(Notice::Sent(state)) => {
                let (words, tone) = state_text(state, lang);
                let prefix = lang.pick("Sent.", "Enviado.");
                match tone {
                    Tone::Alert => (words, tone),
                    _ => (format!("{prefix} {words}."), Tone::Positive),
                }
            }
        }
    }

    /// Everything the screen shows now.
    pub fn screen(&self) -> ComposeScreen {
        let lang = self.lang;
        let (stamps, stamps_tone) = self.stamps_line();
        let (counter, counter_tone) = self.counter();
        let (notice, notice_tone) = self.notice_line();
        let attached = self.current.attachments.len();
        ComposeScreen {
            title: if self.draft.is_some() {
                lang.pick("Edit draft", "Editar borrador")
            } else {
                lang.pick("New message", "Nuevo mensaje")
            }
            .to_string(),
            contact: self.contact,
            to: format!("{} {}", lang.pick("To:", "Para:"), self.contact_name),
            stamps,
            stamps_tone,
            go_to_stamps: self.stamps == 0 && !self.finished,
            buy_stamps_label: lang.pick("Buy stamps", "Comprar estampillas").to_string(),
            subject_label: lang.pick("Subject", "Asunto").to_string(),
            subject: self.current.subject.clone(),
            body_label: lang.pick("Message", "Mensaje").to_string(),
            body: self.current.body.clone(),
            counter,
            counter_tone,
            attachments_title: match lang {
                Lang::English => format!("Attachments: {} of {}", count(attached as u64), MAX_ATTACHMENTS),
                Lang::Spanish => format!("Adjuntos: {} de {}", count(attached as u64), MAX_ATTACHMENTS),
            },
            attachments: self
                .current
                .attachments
                .iter()
                .map(|a| ComposeAttachmentRow {
                    label: self.title_of(a),
                    remove_label: lang.pick("Remove", "Quitar").to_string(),
                })
                .collect(),
            add_ecard_label: lang.pick("Add an eCard", "Agregar una tarjeta").to_string(),
            add_ecard_enabled: attached < MAX_ATTACHMENTS && !self.finished,
            notice,
            notice_tone,
            send_label: lang.pick("Send", "Enviar").to_string(),
            send_enabled: self.stamps > 0 && !self.finished,
            save_label: lang.pick("Save draft", "Guardar borrador").to_string(),
            save_enabled: !self.finished,
            finished: self.finished,
        }
    }
}

/// One card in the picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ECardChoice {
    pub id: ECardId,
    pub title: String,
}

/// The cards of one catalog category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ECardGroup {
    /// The catalog's category (e.g. `Birthdays`), or `Other`.
    pub category: String,
    pub cards: Vec<ECardChoice>,
}

/// The eCard picker: the catalog grouped by category, in catalog order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ECardPickerVm {
    pub title: String,
    pub groups: Vec<ECardGroup>,
    /// Shown when the catalog is empty; empty otherwise.
    pub empty_text: String,
    pub cancel_label: String,
    cards: Vec<ECardRecord>,
}

impl ECardPickerVm {
    /// Groups the catalog as the edge sent it. Cards without a category go
    /// last, under `Other`. Category names are central's and shown as given.
    pub fn new(catalog: &[ECardRecord], lang: Lang) -> Self {
        let mut groups: Vec<ECardGroup> = Vec::new();
        let mut uncategorised = Vec::new();
        for card in catalog {
            let choice = ECardChoice { id: card.id, title: card.title.trim().to_string() };
            let category = card.category.trim();
            if category.is_empty() {
                uncategorised.push(choice);
            } else if let Some(group) = groups.iter_mut().find(|g| g.category == category) {
                group.cards.push(choice);
            } else {
                groups.push(ECardGroup { category: category.to_string(), cards: vec![choice] });
            }
        }
        if !uncategorised.is_empty() {
            groups
                .push(ECardGroup { category: lang.pick("Other", "Otras").to_string(), cards: uncategorised });
        }
        ECardPickerVm {
            title: lang.pick("Choose an eCard", "Elige una tarjeta").to_string(),
            empty_text: if groups.is_empty() {
                lang.pick("No eCards are available.", "No hay tarjetas disponibles.").to_string()
            } else {
                String::new()
            },
            groups,
            cancel_label: lang.pick("Cancel", "Cancelar").to_string(),
            cards: catalog.to_vec(),
        }
    }

    /// The card the resident tapped, to hand to [`ComposeVm::add_ecard`].
    pub fn card(&self, id: ECardId) -> Option<&ECardRecord> {
        self.cards.iter().find(|card| card.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use proto::domain::Approval;
    use proto::messaging::{Direction, MediaId, RefusalReason, TextField};
    use proto::tablet::DenyReason;

    fn card(id: u64, category: &str, title: &str) -> ECardRecord {
        ECardRecord { id: ECardId(id), category: category.into(), title: title.into() }
    }

    fn vm(stamps: u32) -> ComposeVm {
        ComposeVm::new(ContactId(7), "Maria Alvarez", stamps, Lang::English)
    }

    fn message(state: MessageState) -> MessageView {
        MessageView {
            id: MessageId::from_u128(42),
            contact: ContactId(7),
            contact_name: "Maria Alvarez".into(),
            direction: Direction::ResidentToContact,
            subject: "Hi".into(),
            body: "Hello".into(),
            attachments: vec![Attachment::ECard(ECardId(1))],
            at: Timestamp::from_second(1_795_000_000).unwrap(),
            state,
        }
    }

    #[test]
    fn new_message_screen() {
        let screen = vm(2).screen();
        assert_eq!(screen.title, "New message");
        assert_eq!(screen.to, "To: Maria Alvarez");
        assert_eq!(screen.stamps, "2 stamps left");
        assert!(!screen.go_to_stamps);
        assert!(screen.send_enabled);
        assert_eq!(screen.counter, "4,000 characters left");
        assert_eq!(screen.attachments_title, "Attachments: 0 of 5");
        assert_eq!(screen.notice, "");
        assert_eq!(vm(1).screen().stamps, "1 stamp left");
        let es = ComposeVm::new(ContactId(7), "Maria Alvarez", 1, Lang::Spanish).screen();
        assert_eq!(es.title, "Nuevo mensaje");
        assert_eq!(es.to, "Para: Maria Alvarez");
        assert_eq!(es.stamps, "Te queda 1 estampilla");
        assert_eq!(es.counter, "Quedan 4,000 caracteres");
        assert_eq!(es.attachments_title, "Adjuntos: 0 de 5");
        assert_eq!(
            ComposeVm::new(ContactId(7), "M", 3, Lang::Spanish).screen().stamps,
            "Te quedan 3 estampillas"
        );
    }

    #[test]
    fn no_stamps_sends_the_resident_to_buy_some() {
        let screen = vm(0).screen();
        assert_eq!(screen.stamps, "No stamps left — buy a package");
        assert_eq!(screen.stamps_tone, Tone::Alert);
        assert!(screen.go_to_stamps);
        assert!(!screen.send_enabled);
        assert_eq!(screen.buy_stamps_label, "Buy stamps");
        let es = ComposeVm::new(ContactId(7), "M", 0, Lang::Spanish).screen();
        assert_eq!(es.stamps, "No te quedan estampillas — compra un paquete");

        // The edge's word wins over a stale count.
        let mut stale = vm(1);
        stale.apply_edge_error(&MessagingError::NoStamps { contact: ContactId(7) });
        let screen = stale.screen();
        assert!(screen.go_to_stamps);
        assert_eq!(screen.notice, "You have no stamps left for this contact. Buy a stamp package first.");
        stale.set_stamps(5);
        assert!(!stale.screen().go_to_stamps);
    }

    #[test]
    fn counter_counts_characters_not_bytes() {
        let mut compose = vm(1);
        compose.set_body("Hola niña 😀");
        assert_eq!("Hola niña 😀".len(), 15);
        assert_eq!(compose.screen().counter, "3,989 characters left");
        compose.set_body("a".repeat(286));
        assert_eq!(compose.screen().counter, "3,714 characters left");
        compose.set_body("ñ".repeat(3999));
        let screen = compose.screen();
        assert_eq!(screen.counter, "1 character left");
        assert_eq!(screen.counter_tone, Tone::Warning);
        compose.set_lang(Lang::Spanish);
        assert_eq!(compose.screen().counter, "Queda 1 carácter");
        compose.set_body("😀".repeat(4002));
        assert_eq!(compose.screen().counter, "2 caracteres de más");
        compose.set_lang(Lang::English);
        let screen = compose.screen();
        assert_eq!(screen.counter, "2 characters over the limit");
        assert_eq!(screen.counter_tone, Tone::Alert);
        let short = vm(1).with_char_limit(10).screen();
        assert_eq!(short.counter, "10 characters left");
        assert_eq!(short.counter_tone, Tone::Warning);
    }

    #[test]
    fn the_4001st_character_is_rolled_back_with_the_edges_words() {
        let mut compose = vm(1);
        let full = "ñ".repeat(3999) + "😀";
        compose.set_body(full.clone());
        compose.apply_saved(MessageId::from_u128(9));
        assert_eq!(compose.screen().notice, "Draft saved.");
        assert_eq!(compose.screen().counter, "0 characters left");
        assert!(!compose.has_unsaved_changes());

        compose.set_body(format!("{full}!"));
        assert_eq!(compose.to_compose().body.chars().count(), 4001);
        assert!(compose.has_unsaved_changes());
        compose.apply_edge_error(&MessagingError::TooLong {
            field: TextField::Body,
            chars: 4001,
            limit: 4000,
        });
        let screen = compose.screen();
        assert_eq!(screen.body, full);
        assert_eq!(screen.notice, "The message is 4,001 characters; the limit is 4,000.");
        assert_eq!(screen.notice_tone, Tone::Alert);
        assert_eq!(screen.counter, "0 characters left");
        assert_eq!(compose.draft_id(), Some(MessageId::from_u128(9)));
        assert!(!compose.has_unsaved_changes());
        compose.set_lang(Lang::Spanish);
        assert_eq!(compose.screen().notice, "El mensaje tiene 4,001 caracteres; el límite es 4,000.");
    }

    #[test]
    fn the_sixth_attachment_is_rolled_back_with_the_edges_words() {
        let mut compose = vm(1).with_catalog(&[card(1, "Birthdays", "Happy Birthday")]);
        for id in 1..=5 {
            compose.add_ecard(&card(id, "Holidays", &format!("Card {id}")));
        }
        compose.apply_saved(MessageId::from_u128(3));
        let screen = compose.screen();
        assert_eq!(screen.attachments_title, "Attachments: 5 of 5");
        assert!(!screen.add_ecard_enabled);
        assert_eq!(screen.attachments[0].label, "eCard: Card 1");
        assert_eq!(screen.attachments[0].remove_label, "Remove");

        compose.add_ecard(&card(6, "Holidays", "Card 6"));
        assert_eq!(compose.to_compose().attachments.len(), 6);
        compose.apply_edge_error(&MessagingError::TooManyAttachments { count: 6, max: 5 });
        let screen = compose.screen();
        assert_eq!(compose.attachments().len(), 5);
        assert_eq!(screen.attachments.len(), 5);
        assert_eq!(screen.notice, "A message can have at most 5 attachments.");
        compose.set_lang(Lang::Spanish);
        let screen = compose.screen();
        assert_eq!(screen.notice, "Un mensaje puede tener como máximo 5 adjuntos.");
        assert_eq!(screen.attachments[4].label, "Tarjeta: Card 5");
        assert_eq!(screen.attachments[4].remove_label, "Quitar");

        compose.remove_attachment(0);
        compose.remove_attachment(99);
        assert_eq!(compose.attachments().len(), 4);
        assert_eq!(compose.screen().notice, "");
    }

    #[test]
    fn errors_not_about_the_edit_keep_the_text() {
        for err in [
            MessagingError::Empty,
            MessagingError::ContactNotApproved { status: Approval::Pending },
            MessagingError::NotAllowed(DenyReason::ResidentInactive),
            MessagingError::InsufficientFunds { available_cents: 0, price_cents: 95 },
            MessagingError::UnknownContact { contact: ContactId(7) },
        ] {
            let mut compose = vm(1);
            compose.set_body("Te quiero mucho");
            compose.apply_edge_error(&err);
            let screen = compose.screen();
            assert_eq!(screen.body, "Te quiero mucho", "{err:?}");
            assert_eq!(screen.notice, messaging_error(&err, Lang::English));
            assert_eq!(screen.notice_tone, Tone::Alert);
        }
        let mut compose = vm(1);
        compose.set_body("x");
        compose.apply_saved(MessageId::from_u128(1));
        compose.set_body("xy");
        compose.apply_edge_error(&MessagingError::UnknownDraft(MessageId::from_u128(1)));
        assert_eq!(compose.draft_id(), None);
        assert_eq!(compose.body(), "xy");
        assert_eq!(compose.screen().notice, "This draft was already sent or deleted.");
    }

    #[test]
    fn attachment_errors_roll_back_too() {
        let mut compose = vm(1);
        compose.add_ecard(&card(1, "", "One"));
        compose.apply_saved(MessageId::from_u128(1));
        compose.add_ecard(&card(2, "", "Gone"));
        compose.apply_edge_error(&MessagingError::UnknownECard(ECardId(2)));
        assert_eq!(compose.attachments(), [Attachment::ECard(ECardId(1))]);
        assert_eq!(compose.screen().notice, "That eCard is no longer in the catalog. Choose another one.");
        compose.apply_edge_error(&MessagingError::AttachmentNotAllowed(Attachment::Photo(MediaId(1))));
        assert_eq!(compose.screen().notice, "You can attach eCards only.");
    }

    #[test]
    fn to_compose_carries_what_was_proposed() {
        let mut compose = vm(1);
        compose.set_subject("Hola");
        compose.set_body("¿Qué tal?");
        compose.add_ecard(&card(3, "Birthdays", "Cake"));
        assert_eq!(
            compose.to_compose(),
            Compose {
                contact: ContactId(7),
                subject: "Hola".into(),
                body: "¿Qué tal?".into(),
                attachments: vec![Attachment::ECard(ECardId(3))],
            }
        );
    }

    #[test]
    fn queued_message_finishes_the_screen() {
        let mut compose = vm(1);
        compose.set_body("Hello");
        compose.apply_saved(MessageId::from_u128(5));
        compose.apply_queued(&message(MessageState::Queued));
        let screen = compose.screen();
        assert_eq!(screen.notice, "Sent. It will be delivered when the connection returns.");
        assert_eq!(screen.notice_tone, Tone::Positive);
        assert!(screen.finished);
        assert!(!screen.send_enabled && !screen.save_enabled);
        assert_eq!(compose.draft_id(), None);
        compose.set_lang(Lang::Spanish);
        assert_eq!(compose.screen().notice, "Enviado. Se entregará cuando vuelva la conexión.");

        let mut reviewed = vm(1);
        reviewed.apply_queued(&message(MessageState::InReview));
        assert_eq!(
            reviewed.screen().notice,
            "Sent. The facility reviews every message before it is delivered."
        );
        let mut failed = vm(1);
        failed.apply_queued(&message(MessageState::PaymentFailed { reason: RefusalReason::NoStamps }));
        assert_eq!(
            failed.screen().notice,
            "Not sent: the stamp payment failed. There was no stamp to pay for it."
        );
        assert_eq!(failed.screen().notice_tone, Tone::Alert);
    }

    #[test]
    fn drafts_and_replies_open_prefilled() {
        let catalog = [card(1, "Birthdays", "Cake")];
        let draft = ComposeVm::edit_draft(&message(MessageState::Draft), 2, &catalog, Lang::English);
        assert_eq!(draft.draft_id(), Some(MessageId::from_u128(42)));
        let screen = draft.screen();
        assert_eq!(screen.title, "Edit draft");
        assert_eq!(screen.subject, "Hi");
        assert_eq!(screen.body, "Hello");
        assert_eq!(screen.attachments[0].label, "eCard: Cake");
        assert!(!draft.has_unsaved_changes());

        let mut received = message(MessageState::Received { read: true });
        received.direction = Direction::ContactToResident;
        let reply = ComposeVm::reply_to(&received, 1, Lang::English);
        assert_eq!(reply.subject(), "Re: Hi");
        assert_eq!(reply.body(), "");
        assert_eq!(reply.draft_id(), None);
        received.subject = "RE: Hi".into();
        assert_eq!(ComposeVm::reply_to(&received, 1, Lang::English).subject(), "RE: Hi");
    }

    #[test]
    fn picker_groups_by_category_in_catalog_order() {
        let catalog = vec![
            card(1, "Holidays", "Snow"),
            card(2, "Birthdays", "Cake"),
            card(3, "", "Plain"),
            card(4, "Holidays", "Lights"),
        ];
        let picker = ECardPickerVm::new(&catalog, Lang::English);
        assert_eq!(picker.title, "Choose an eCard");
        let groups: Vec<_> = picker.groups.iter().map(|g| g.category.as_str()).collect();
        assert_eq!(groups, ["Holidays", "Birthdays", "Other"]);
        let holidays: Vec<_> = picker.groups[0].cards.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(holidays, ["Snow", "Lights"]);
        assert_eq!(picker.empty_text, "");
        assert_eq!(picker.card(ECardId(2)).map(|c| c.title.as_str()), Some("Cake"));
        assert_eq!(picker.card(ECardId(9)), None);

        let es = ECardPickerVm::new(&catalog, Lang::Spanish);
        assert_eq!(es.groups[2].category, "Otras");
        assert_eq!(es.cancel_label, "Cancelar");
        let empty = ECardPickerVm::new(&[], Lang::Spanish);
        assert!(empty.groups.is_empty());
        assert_eq!(empty.empty_text, "No hay tarjetas disponibles.");
    }
}
