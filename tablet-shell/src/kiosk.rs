//! The kiosk's controller as a sans-IO state machine.
//!
//! Owns: which screen is showing, the view-models behind each screen, the
//! edge's latest answers they are built from, and which request is waiting
//! for which answer. Input is a touch ([`UiEvent`]), an answer of the edge
//! ([`EdgeReply`]), a pushed [`ServerEvent`] or the passing of time; output
//! is the [`Outgoing`] requests to send. The Slint window and the QUIC
//! client live in thin shells around it (`ui`), so tests drive a whole
//! session without a display, a network or a real clock.
//!
//! Must not: decide policy (a call, a message or a purchase is always asked
//! of the edge), format words (the view-models do), or touch Slint types.

use std::collections::HashMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use proto::call::CallUpdate;
use proto::domain::{CallKind, ContactId, LockdownScope};
use proto::messaging::{ECardRecord, MessagingError};
use proto::tablet::{
    ApiError, BalancesView, ContactList, Folder, Freshness, HoursView, MailboxView, MessageState,
    MessageView, ServerEvent, SessionInfo, StampBalances, StampShop, TabletRequest, TabletResponse,
};

use crate::client::{MediaAssembly, MediaFile};
use crate::photo::{self, Photo};
use crate::vm::call::CallVm;
use crate::vm::compose::{ComposeVm, ECardPickerVm};
use crate::vm::contacts::ContactsVm;
use crate::vm::home::{HomeInput, HomeVm};
use crate::vm::login::LoginVm;
use crate::vm::messages::{
    AttachmentKind, MailboxVm, MediaState, MessageAction, MessageVm, VideoGramPlayback,
};
use crate::vm::nav::{self, NavVm};
use crate::vm::settings::{Settings, SettingsVm};
use crate::vm::stamps::{ConfirmPurchase, PurchaseResult, StampsVm};
use crate::vm::{common, Lang, Tone};
use proto::messaging::MediaId;

/// The screens of the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    Login,
    Home,
    Contacts,
    Call,
    Mailbox,
    Message,
    Compose,
    Stamps,
    Settings,
}

/// A touch on the screen, in the shell's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiEvent {
    Navigate(Screen),
    Logout,
    /// Ctrl+Alt+Backspace, or the shell restarted: straight back to login.
    Reset,
    LoginSelectField(crate::vm::login::Field),
    LoginDigit(u8),
    LoginDelete,
    LoginClear,
    LoginSubmit,
    /// A service button of a contacts row.
    ContactAction {
        row: usize,
        action: ContactAction,
    },
    HangUp,
    CloseCall,
    OpenFolder(Folder),
    OpenMessage(usize),
    StartCompose,
    MessageBack,
    MessageAction(usize),
    PlayAttachment,
    ComposeSubject(String),
    ComposeBody(String),
    ComposeBuyStamps,
    ComposeOpenPicker,
    ComposePickECard(usize),
    ComposeClosePicker,
    ComposeRemoveAttachment(usize),
    ComposeSend,
    ComposeSave,
    StampsSelectContact(usize),
    StampsBuy(usize),
    StampsConfirm,
    StampsCancel,
    ChooseLanguage(Lang),
    ToggleLargeText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactAction {
    VoiceCall,
    VideoCall,
    Message,
}

/// Starting and stopping a call's media leg (camera, microphone, the
/// contact's pictures), which the shell runs beside the kiosk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// The call is placed: connect, publish the camera and microphone.
    Start {
        media: proto::call::CallMedia,
        kind: CallKind,
    },
    /// The contact answered: receive their tracks from now on (not while
    /// their phone rings, when every try is refused) and send them a
    /// keyframe at once rather than at the next group.
    ContactJoined,
    Stop,
}

/// Playing the open message's VideoGram, which the shell runs beside the
/// kiosk (the kiosk never decodes video itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoGramCommand {
    /// Play `media` (every byte of it is in [`Kiosk::media_file`]) from the
    /// start. `play` names this run: the player's reports carry it back, so
    /// a report of a run stopped since is told apart from the current one.
    Play {
        play: u64,
        media: MediaId,
    },
    Pause,
    Resume,
    /// Stop and let go of the player and its pictures.
    Stop,
}

/// What the VideoGram player reports about run `play`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoGramEvent {
    /// The picture on screen is `ms` into the video.
    Position { play: u64, ms: u64 },
    /// The video played to its end.
    Ended { play: u64 },
    /// The file could not be played (not a VideoGram we can decode, or the
    /// player failed).
    Failed { play: u64 },
}

impl VideoGramEvent {
    fn play(self) -> u64 {
        match self {
            VideoGramEvent::Position { play, .. }
            | VideoGramEvent::Ended { play }
            | VideoGramEvent::Failed { play } => play,
        }
    }
}

/// The VideoGram run the shell is playing (or holding paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VideoGramRun {
    play: u64,
    media: MediaId,
    paused: bool,
}

/// The edge's answer to one [`Outgoing`] request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeReply {
    Answer(TabletResponse),
    Refused(ApiError),
    /// No answer: the edge could not be reached or the connection broke.
    Unreachable,
}

/// A request for the shell to send; its answer comes back with the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: u64,
    pub request: TabletRequest,
}

/// What an outstanding request was for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Login,
    Logout,
    Balances,
    Hours,
    Contacts,
    Mailbox(Folder),
    /// Only the unread count is wanted (home, navigation bar).
    UnreadCount,
    ReadMessage,
    /// A chunk of the open message's attachment.
    Media(MediaId),
    ECards,
    StampShop,
    StampBalance,
    StartCall,
    HangUp,
    SaveDraft,
    SendMessage,
    DeleteDraft,
    HideSent,
    BuyStamps {
        contact_name: String,
    },
}

/// Cached answers of the edge for the logged-in resident.
#[derive(Debug, Default)]
struct Data {
    session: Option<SessionInfo>,
    balances: Option<BalancesView>,
    hours: Option<HoursView>,
    contacts: Option<ContactList>,
    mailbox: Option<MailboxView>,
    unread: u32,
    message: Option<MessageView>,
    ecards: Vec<ECardRecord>,
    shop: Option<StampShop>,
    stamp_balances: Option<StampBalances>,
    lockdown: Option<LockdownScope>,
    /// From the last answer that carried it.
    freshness: Option<Freshness>,
}

/// Why the login screen is showing again, worded in whatever language the
/// screen speaks when it is drawn (the facility's, after a reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginNotice {
    SessionEnded(proto::tablet::SessionEndReason),
    EdgeUnreachable,
}

impl LoginNotice {
    fn words(self, lang: Lang) -> String {
        match self {
            LoginNotice::SessionEnded(reason) => nav::session_ended(reason, lang),
            LoginNotice::EdgeUnreachable => nav::edge_unreachable(lang),
        }
    }
}

/// How long the login screen may sit untouched before what the last person
/// left on it (typed digits, an answer about them, a language or text size
/// they picked, why their session ended) is cleared for the next resident.
pub const LOGIN_IDLE_RESET_MS: u64 = 60_000;

/// The whole kiosk.
#[derive(Debug)]
pub struct Kiosk {
    screen: Screen,
    id_prefix: String,
    settings: Settings,
    /// The facility's settings (`--lang` at start): tablets are shared, so
    /// every return to login goes back to them.
    default_settings: Settings,
    now: Timestamp,
    now_ms: u64,
    login: LoginVm,
    /// Words for the login screen beside the keypad's own (e.g. why the last session ended).
    login_notice: Option<LoginNotice>,
    data: Data,
    folder: Folder,
    call: Option<CallVm>,
    compose: Option<ComposeVm>,
    compose_dirty: bool,
    save_in_flight: bool,
    picker_open: bool,
    playback: Option<VideoGramPlayback>,
    /// The VideoGram the shell's player is running, if any.
    videogram_run: Option<VideoGramRun>,
    /// Counts runs across sessions, like `next_id`, so a late report of an
    /// old run never matches a new one.
    next_play: u64,
    videogram_commands: Vec<VideoGramCommand>,
    /// The open message's media: where each stands, the chunks so far, the
    /// finished files and the decoded photos.
    media_state: HashMap<MediaId, MediaState>,
    media_parts: HashMap<MediaId, MediaAssembly>,
    media_files: HashMap<MediaId, MediaFile>,
    photos: HashMap<MediaId, Photo>,
    stamps_contact: Option<ContactId>,
    confirm: Option<ConfirmPurchase>,
    purchase_result: Option<PurchaseResult>,
    pending: HashMap<u64, Purpose>,
    next_id: u64,
    outgoing: Vec<Outgoing>,
    media_commands: Vec<MediaCommand>,
    media_live: bool,
    /// `now_ms` of the last touch or key on the screen.
    last_touch_ms: u64,
}

impl Kiosk {
    /// A kiosk on its login screen. `now` is wall-clock time, `now_ms` a
    /// monotonic millisecond count (both only ever come in as inputs).
    pub fn new(settings: Settings, now: Timestamp, now_ms: u64) -> Self {
        Kiosk {
            screen: Screen::Login,
            id_prefix: String::new(),
            settings,
            default_settings: settings,
            now,
            now_ms,
            login: LoginVm::new(now),
            login_notice: None,
            data: Data::default(),
            folder: Folder::Inbox,
            call: None,
            compose: None,
            compose_dirty: false,
            save_in_flight: false,
            picker_open: false,
            playback: None,
            videogram_run: None,
            next_play: 1,
            videogram_commands: Vec::new(),
            media_state: HashMap::new(),
            media_parts: HashMap::new(),
            media_files: HashMap::new(),
            photos: HashMap::new(),
            stamps_contact: None,
            confirm: None,
            purchase_result: None,
            pending: HashMap::new(),
            next_id: 1,
            outgoing: Vec::new(),
            media_commands: Vec::new(),
            media_live: false,
            last_touch_ms: now_ms,
        }
    }

    /// Resident IDs here start with `prefix` (see [`LoginVm::with_id_prefix`]).
    pub fn with_id_prefix(mut self, prefix: &str) -> Self {
        self.id_prefix = prefix.to_string();
        self.login = LoginVm::new(self.now).with_id_prefix(prefix);
        self
    }

    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// What every return to the login screen resets [`Kiosk::settings`] to.
    pub fn default_settings(&self) -> Settings {
        self.default_settings
    }

    pub fn lang(&self) -> Lang {
        self.settings.lang
    }

    /// Requests waiting to be sent; each answer goes to [`Kiosk::reply`].
    pub fn take_outgoing(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outgoing)
    }

    /// Media legs to start or stop, in order.
    pub fn take_media_commands(&mut self) -> Vec<MediaCommand> {
        std::mem::take(&mut self.media_commands)
    }

    /// VideoGram player commands, in order.
    pub fn take_videogram_commands(&mut self) -> Vec<VideoGramCommand> {
        std::mem::take(&mut self.videogram_commands)
    }

    /// The VideoGram run whose pictures belong on the screen now: playing
    /// or paused, on the open message's screen.
    pub fn videogram_on_screen(&self) -> Option<u64> {
        self.videogram_run.filter(|_| self.screen == Screen::Message).map(|run| run.play)
    }

    /// A report of the VideoGram player. Reports of a run stopped since are
    /// dropped.
    pub fn videogram(&mut self, event: VideoGramEvent) {
        let Some(run) = self.videogram_run else { return };
        if event.play() != run.play {
            return;
        }
        match event {
            VideoGramEvent::Position { ms, .. } => {
                if let Some(playback) = &mut self.playback {
                    playback.set_position_ms(ms);
                }
            }
            VideoGramEvent::Ended { .. } => {
                if let Some(playback) = &mut self.playback {
                    playback.finish();
                }
                self.stop_videogram();
            }
            VideoGramEvent::Failed { .. } => {
                tracing::warn!(media = %run.media, "the VideoGram could not be played");
                self.media_state.insert(run.media, MediaState::Unavailable);
                self.stop_videogram();
                if let Some(playback) = &mut self.playback {
                    playback.rewind();
                }
            }
        }
    }

    /// Play / Pause on the VideoGram card; only once every byte is here.
    fn toggle_videogram(&mut self) {
        let Some(media) = self.videogram_media() else { return };
        if self.media_state.get(&media) != Some(&MediaState::Ready) {
            return;
        }
        let Some(playback) = &mut self.playback else { return };
        match &mut self.videogram_run {
            Some(run) if !run.paused => {
                run.paused = true;
                playback.set_playing(false);
                self.videogram_commands.push(VideoGramCommand::Pause);
            }
            Some(run) => {
                run.paused = false;
                playback.set_playing(true);
                self.videogram_commands.push(VideoGramCommand::Resume);
            }
            None => {
                let play = self.next_play;
                self.next_play += 1;
                playback.rewind();
                playback.set_playing(true);
                self.videogram_run = Some(VideoGramRun { play, media, paused: false });
                self.videogram_commands.push(VideoGramCommand::Play { play, media });
            }
        }
    }

    /// Lets go of the player (the message closed, the session ended, the
    /// video ended or failed).
    fn stop_videogram(&mut self) {
        if self.videogram_run.take().is_some() {
            self.videogram_commands.push(VideoGramCommand::Stop);
        }
        if let Some(playback) = &mut self.playback {
            playback.set_playing(false);
        }
    }

    /// The open message's VideoGram.
    fn videogram_media(&self) -> Option<MediaId> {
        self.data.message.as_ref()?.attachments.iter().find_map(|a| match a {
            proto::messaging::Attachment::VideoGram { media, .. } => Some(*media),
            _ => None,
        })
    }

    /// Every byte of `file` is here: photos are decoded for the viewer now,
    /// so a photo that cannot be shown says so instead of an empty frame.
    fn media_arrived(&mut self, file: MediaFile) {
        use proto::messaging::Attachment;
        let media = file.media;
        let attachment = self
            .data
            .message
            .as_ref()
            .and_then(|m| m.attachments.iter().find(|a| a.media() == Some(media)).copied());
        let ready = match attachment {
            Some(Attachment::Photo(_) | Attachment::SnapNSend(_)) => {
                match photo::decode(file.content_type, &file.bytes, photo::VIEWER_WIDTH, photo::VIEWER_HEIGHT)
                {
                    Ok(photo) => {
                        self.photos.insert(media, photo);
                        true
                    }
                    Err(error) => {
                        tracing::warn!(%media, %error, "a photo attachment cannot be shown");
                        false
                    }
                }
            }
            Some(Attachment::VideoGram { .. }) => file.content_type.is_video(),
            Some(Attachment::ECard(_)) | None => false,
        };
        if ready {
            self.media_files.insert(media, file);
        }
        self.media_state.insert(media, if ready { MediaState::Ready } else { MediaState::Unavailable });
    }

    /// Stops the media leg once the call is over (or gone).
    fn settle_media(&mut self) {
        if self.media_live && self.call.as_ref().is_none_or(CallVm::is_over) {
            self.media_live = false;
            self.media_commands.push(MediaCommand::Stop);
        }
    }

    /// Whether any request is still waiting for its answer.
    pub fn is_waiting(&self) -> bool {
        !self.pending.is_empty() || !self.outgoing.is_empty()
    }

    fn send(&mut self, purpose: Purpose, request: TabletRequest) {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, purpose);
        self.outgoing.push(Outgoing { id, request });
    }

    /// Time passes: timers and lockout countdowns follow (the VideoGram's
    /// position comes from its player, [`Kiosk::videogram`]).
    pub fn tick(&mut self, now: Timestamp, now_ms: u64) {
        self.now = now;
        self.now_ms = now_ms;
        self.login.tick(now);
        if let Some(call) = &mut self.call {
            call.tick(now_ms);
        }
        if self.screen == Screen::Login && now_ms.saturating_sub(self.last_touch_ms) >= LOGIN_IDLE_RESET_MS {
            self.forget_login_screen();
        }
    }

    /// Leaves the idle login screen as the next resident should find it.
    fn forget_login_screen(&mut self) {
        if self.login.has_entry() || self.login_notice.is_some() || self.settings != self.default_settings {
            tracing::debug!("login screen idle: entry and settings reset");
            self.login.forget_entry();
            self.login_notice = None;
            self.settings = self.default_settings;
        }
    }

    /// A touch on the screen.
    pub fn ui(&mut self, event: UiEvent) {
        self.last_touch_ms = self.now_ms;
        match event {
            UiEvent::Navigate(screen) => self.navigate(screen),
            UiEvent::Logout => {
                if self.data.session.is_some() {
                    self.send(Purpose::Logout, TabletRequest::Logout);
                }
                self.back_to_login(None);
            }
            UiEvent::Reset => {
                if self.data.session.is_some() {
                    self.send(Purpose::Logout, TabletRequest::Logout);
                }
                self.back_to_login(None);
            }
            UiEvent::LoginSelectField(field) => self.login.select(field),
            UiEvent::LoginDigit(digit) => self.login.press_digit(digit),
            UiEvent::LoginDelete => self.login.backspace(),
            UiEvent::LoginClear => self.login.clear(),
            UiEvent::LoginSubmit => {
                if let Some(credentials) = self.login.submit() {
                    self.login_notice = None;
                    self.send(Purpose::Login, credentials.into_request());
                }
            }
            UiEvent::ContactAction { row, action } => self.contact_action(row, action),
            UiEvent::HangUp => {
                if let Some(call_id) = self.call.as_mut().and_then(CallVm::hang_up) {
                    self.send(Purpose::HangUp, TabletRequest::HangUp { call_id });
                }
            }
            UiEvent::CloseCall => {
                if self.call.as_ref().is_none_or(CallVm::is_over) {
                    self.call = None;
                    self.navigate(Screen::Contacts);
                    self.send(Purpose::Balances, TabletRequest::Balances);
                }
            }
            UiEvent::OpenFolder(folder) => {
                self.folder = folder;
                self.send(Purpose::Mailbox(folder), TabletRequest::Mailbox { folder });
            }
            UiEvent::OpenMessage(row) => {
                let id = self.data.mailbox.as_ref().and_then(|m| m.messages.get(row)).map(|m| m.id);
                if let Some(id) = id {
                    self.send(Purpose::ReadMessage, TabletRequest::ReadMessage { id });
                }
            }
            UiEvent::StartCompose => {
                // Writing starts from a contact: Contacts shows who may be written to.
                self.navigate(Screen::Contacts);
            }
            UiEvent::MessageBack => self.navigate(Screen::Mailbox),
            UiEvent::MessageAction(index) => self.message_action(index),
            UiEvent::PlayAttachment => self.toggle_videogram(),
            UiEvent::ComposeSubject(subject) => {
                if let Some(compose) = &mut self.compose {
                    compose.set_subject(subject);
                    self.autosave();
                }
            }
            UiEvent::ComposeBody(body) => {
                if let Some(compose) = &mut self.compose {
                    compose.set_body(body);
                    self.autosave();
                }
            }
            UiEvent::ComposeBuyStamps => {
                self.stamps_contact = self.compose.as_ref().map(ComposeVm::contact);
                self.navigate(Screen::Stamps);
            }
            UiEvent::ComposeOpenPicker => {
                self.picker_open = true;
                if self.data.ecards.is_empty() {
                    self.send(Purpose::ECards, TabletRequest::ECards);
                }
            }
            UiEvent::ComposePickECard(index) => {
                let card = self.picker_cards().get(index).cloned();
                if let (Some(card), Some(compose)) = (card, &mut self.compose) {
                    compose.add_ecard(&card);
                    self.picker_open = false;
                    self.autosave();
                }
            }
            UiEvent::ComposeClosePicker => self.picker_open = false,
            UiEvent::ComposeRemoveAttachment(index) => {
                if let Some(compose) = &mut self.compose {
                    compose.remove_attachment(index);
                    self.autosave();
                }
            }
            UiEvent::ComposeSend => {
                if let Some(compose) = &self.compose {
                    let request = TabletRequest::SendMessage {
                        draft: compose.draft_id(),
                        compose: compose.to_compose(),
                    };
                    self.send(Purpose::SendMessage, request);
                }
            }
            UiEvent::ComposeSave => self.save_draft(),
            UiEvent::StampsSelectContact(row) => {
                self.stamps_contact =
                    self.data.stamp_balances.as_ref().and_then(|b| b.contacts.get(row)).map(|c| c.contact);
                self.confirm = None;
                self.purchase_result = None;
            }
            UiEvent::StampsBuy(index) => {
                let package = self.data.shop.as_ref().and_then(|s| s.packages.get(index)).map(|p| p.id);
                self.confirm = match (package, self.stamps_vm()) {
                    (Some(package), Some(vm)) => vm.confirm(package),
                    _ => None,
                };
                self.purchase_result = None;
            }
            UiEvent::StampsConfirm => {
                if let Some(confirm) = self.confirm.take() {
                    let contact_name = self.contact_name(confirm.contact);
                    self.send(
                        Purpose::BuyStamps { contact_name },
                        TabletRequest::BuyStamps { contact: confirm.contact, package: confirm.package },
                    );
                }
            }
            UiEvent::StampsCancel => self.confirm = None,
            UiEvent::ChooseLanguage(lang) => {
                self.settings.lang = lang;
                if let Some(compose) = &mut self.compose {
                    compose.set_lang(lang);
                }
            }
            UiEvent::ToggleLargeText => self.settings.toggle_large_text(),
        }
    }

    fn navigate(&mut self, screen: Screen) {
        if self.data.session.is_none() && screen != Screen::Login {
            return;
        }
        // A live call keeps the call screen until it is over.
        if self.call.as_ref().is_some_and(|c| !c.is_over()) && screen != Screen::Call {
            return;
        }
        self.screen = screen;
        if screen != Screen::Message {
            self.stop_videogram();
        }
        match screen {
            Screen::Home => {
                self.send(Purpose::Balances, TabletRequest::Balances);
                self.send(Purpose::Hours, TabletRequest::Hours);
                self.send(Purpose::UnreadCount, TabletRequest::Mailbox { folder: Folder::Inbox });
            }
            Screen::Contacts => {
                self.send(Purpose::Contacts, TabletRequest::Contacts);
                self.send(Purpose::StampBalance, TabletRequest::StampBalance);
            }
            Screen::Mailbox => {
                let folder = self.folder;
                self.send(Purpose::Mailbox(folder), TabletRequest::Mailbox { folder });
            }
            Screen::Stamps => {
                self.confirm = None;
                self.purchase_result = None;
                self.send(Purpose::StampShop, TabletRequest::StampPackages);
                self.send(Purpose::StampBalance, TabletRequest::StampBalance);
            }
            Screen::Compose => {
                if self.data.ecards.is_empty() {
                    self.send(Purpose::ECards, TabletRequest::ECards);
                }
            }
            Screen::Login | Screen::Call | Screen::Message | Screen::Settings => {}
        }
    }

    /// Every way out of a session (log out, Ctrl+Alt+Backspace, the edge
    /// ending it) comes through here, so nothing of one resident, their
    /// language and text size included, is left for the next.
    fn back_to_login(&mut self, notice: Option<LoginNotice>) {
        let settings = self.default_settings;
        let media_stop = self.media_live;
        let videogram_stop = self.videogram_run.is_some();
        let next_play = self.next_play;
        let (now, now_ms, next_id, pending, outgoing) = (
            self.now,
            self.now_ms,
            self.next_id,
            std::mem::take(&mut self.pending),
            std::mem::take(&mut self.outgoing),
        );
        let id_prefix = std::mem::take(&mut self.id_prefix);
        *self = Kiosk::new(settings, now, now_ms).with_id_prefix(&id_prefix);
        // Requests already sent (e.g. the logout) still get answered; keep
        // counting ids so an old answer is never taken for a new request.
        self.next_id = next_id;
        self.pending = pending.into_iter().filter(|(_, p)| *p == Purpose::Logout).collect();
        self.outgoing = outgoing.into_iter().filter(|o| o.request == TabletRequest::Logout).collect();
        self.login_notice = notice;
        if media_stop {
            self.media_commands.push(MediaCommand::Stop);
        }
        self.next_play = next_play;
        if videogram_stop {
            self.videogram_commands.push(VideoGramCommand::Stop);
        }
    }

    fn contact_action(&mut self, row: usize, action: ContactAction) {
        let Some(contact) = self.data.contacts.as_ref().and_then(|c| c.contacts.get(row)).cloned() else {
            return;
        };
        match action {
            ContactAction::VoiceCall | ContactAction::VideoCall => {
                let kind = if action == ContactAction::VideoCall { CallKind::Video } else { CallKind::Voice };
                self.call = Some(CallVm::placing(contact.name.clone(), kind));
                self.stop_videogram();
                self.screen = Screen::Call;
                self.send(
                    Purpose::StartCall,
                    TabletRequest::StartCall { contact: contact.id, kind, number: None },
                );
            }
            ContactAction::Message => {
                let stamps = self.stamps_for(contact.id);
                self.compose = Some(
                    ComposeVm::new(contact.id, contact.name.clone(), stamps, self.lang())
                        .with_catalog(&self.data.ecards),
                );
                self.compose_dirty = false;
                self.picker_open = false;
                self.navigate(Screen::Compose);
            }
        }
    }

    fn message_action(&mut self, index: usize) {
        let Some(message) = self.data.message.clone() else { return };
        let Some(vm) = self.message_vm() else { return };
        let Some(action) = vm.actions.get(index).map(|a| a.action) else { return };
        let stamps = self.stamps_for(message.contact);
        match action {
            MessageAction::Reply => {
                self.compose =
                    Some(ComposeVm::reply_to(&message, stamps, self.lang()).with_catalog(&self.data.ecards));
                self.compose_dirty = false;
                self.navigate(Screen::Compose);
            }
            MessageAction::EditDraft => {
                self.compose = Some(ComposeVm::edit_draft(&message, stamps, &self.data.ecards, self.lang()));
                self.compose_dirty = false;
                self.navigate(Screen::Compose);
            }
            MessageAction::DeleteDraft => {
                self.send(Purpose::DeleteDraft, TabletRequest::DeleteDraft { id: message.id })
            }
            MessageAction::HideSent => {
                self.send(Purpose::HideSent, TabletRequest::HideSent { id: message.id })
            }
        }
    }

    /// Every edit is offered to the edge as the draft, so a message begun is
    /// kept, and a refused edit (too long, too many attachments) is rolled
    /// back to the last one the edge took.
    fn autosave(&mut self) {
        self.compose_dirty = true;
        if !self.save_in_flight {
            self.save_draft();
        }
    }

    fn save_draft(&mut self) {
        let Some(compose) = &self.compose else { return };
        let content = compose.to_compose();
        let empty = content.subject.is_empty() && content.body.is_empty() && content.attachments.is_empty();
        if empty && compose.draft_id().is_none() {
            self.compose_dirty = false;
            return;
        }
        let request = TabletRequest::SaveDraft { draft: compose.draft_id(), compose: content };
        self.compose_dirty = false;
        self.save_in_flight = true;
        self.send(Purpose::SaveDraft, request);
    }

    fn stamps_for(&self, contact: ContactId) -> u32 {
        self.data
            .stamp_balances
            .as_ref()
            .and_then(|b| b.contacts.iter().find(|c| c.contact == contact))
            .map_or(0, |c| c.available)
    }

    fn contact_name(&self, contact: ContactId) -> String {
        let from_stamps =
            self.data.stamp_balances.as_ref().and_then(|b| b.contacts.iter().find(|c| c.contact == contact));
        from_stamps.map(|c| c.name.clone()).unwrap_or_default()
    }

    fn picker_cards(&self) -> Vec<ECardRecord> {
        ECardPickerVm::new(&self.data.ecards, self.lang())
            .groups
            .iter()
            .flat_map(|g| g.cards.iter())
            .filter_map(|choice| self.data.ecards.iter().find(|c| c.id == choice.id).cloned())
            .collect()
    }

    fn note_freshness(&mut self, freshness: Freshness) {
        self.data.freshness = Some(freshness);
    }

    /// A pushed event from the edge.
    pub fn event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::SessionEnded { reason } => {
                if self.data.session.is_some() {
                    self.back_to_login(Some(LoginNotice::SessionEnded(reason)));
                }
            }
            ServerEvent::LockdownChanged { active } => self.data.lockdown = active,
            ServerEvent::MailChanged { unread, .. } => {
                self.data.unread = unread;
                if self.screen == Screen::Mailbox {
                    let folder = self.folder;
                    self.send(Purpose::Mailbox(folder), TabletRequest::Mailbox { folder });
                }
            }
            ServerEvent::Call(update) => self.call_update(&update),
        }
    }

    fn call_update(&mut self, update: &CallUpdate) {
        if let Some(call) = &mut self.call {
            let answered_before = call.has_connected();
            call.apply_update(update, self.now_ms);
            if self.media_live && !answered_before && call.has_connected() {
                self.media_commands.push(MediaCommand::ContactJoined);
            }
        }
        self.settle_media();
    }

    /// The edge answered request `id`.
    pub fn reply(&mut self, id: u64, reply: EdgeReply) {
        let Some(purpose) = self.pending.remove(&id) else { return };
        if purpose == Purpose::SaveDraft {
            self.save_in_flight = false;
        }
        match reply {
            EdgeReply::Answer(response) => self.answer(purpose, response),
            EdgeReply::Refused(error) => self.refused(purpose, error),
            EdgeReply::Unreachable => self.unreachable(purpose),
        }
        // Edits made while a save was under way go out now.
        if self.compose_dirty && !self.save_in_flight {
            self.save_draft();
        }
    }

    fn answer(&mut self, purpose: Purpose, response: TabletResponse) {
        match (purpose, response) {
            (Purpose::Login, response @ TabletResponse::LoggedIn(_)) => {
                self.login.apply_response(&response, self.now);
                if let TabletResponse::LoggedIn(info) = response {
                    self.data.session = Some(info);
                }
                self.send(Purpose::Contacts, TabletRequest::Contacts);
                self.send(Purpose::ECards, TabletRequest::ECards);
                self.send(Purpose::StampBalance, TabletRequest::StampBalance);
                self.navigate(Screen::Home);
            }
            (Purpose::Logout, _) => {}
            (Purpose::Balances, TabletResponse::Balances(view)) => {
                self.note_freshness(view.freshness);
                self.data.balances = Some(view);
            }
            (Purpose::Hours, TabletResponse::Hours(view)) => {
                self.data.lockdown = view.lockdown.clone();
                self.data.hours = Some(view);
            }
            (Purpose::Contacts, TabletResponse::Contacts(list)) => {
                self.note_freshness(list.freshness);
                self.data.contacts = Some(list);
            }
            (Purpose::UnreadCount, TabletResponse::Mailbox(view)) => self.data.unread = view.unread,
            (Purpose::Mailbox(folder), TabletResponse::Mailbox(view)) => {
                self.data.unread = view.unread;
                if folder == self.folder {
                    self.data.mailbox = Some(view);
                }
            }
            (Purpose::ReadMessage, TabletResponse::Message(view)) => {
                self.stop_videogram();
                self.playback = view.attachments.iter().find_map(|a| match a {
                    proto::messaging::Attachment::VideoGram { duration_secs, .. } => {
                        Some(VideoGramPlayback::new(u32::from(*duration_secs)))
                    }
                    _ => None,
                });
                // Photos and VideoGrams come through the edge's cache, chunk by chunk.
                self.media_state.clear();
                self.media_parts.clear();
                self.media_files.clear();
                self.photos.clear();
                for media in view.attachments.iter().filter_map(|a| a.media()) {
                    if self.media_state.insert(media, MediaState::Loading).is_none() {
                        self.media_parts.insert(media, MediaAssembly::new(media));
                        self.send(Purpose::Media(media), TabletRequest::Media { media, offset: 0 });
                    }
                }
                self.data.message = Some(view);
                self.screen = Screen::Message;
                self.send(Purpose::UnreadCount, TabletRequest::Mailbox { folder: Folder::Inbox });
            }
            (Purpose::ECards, TabletResponse::ECards(cards)) => {
                if let Some(compose) = self.compose.take() {
                    self.compose = Some(compose.with_catalog(&cards));
                }
                self.data.ecards = cards;
            }
            (Purpose::StampShop, TabletResponse::StampPackages(shop)) => {
                self.note_freshness(shop.freshness);
                self.data.shop = Some(shop);
            }
            (Purpose::StampBalance, TabletResponse::Stamps(balances)) => {
                if let Some(compose) = &mut self.compose {
                    let contact = compose.contact();
                    if let Some(c) = balances.contacts.iter().find(|c| c.contact == contact) {
                        compose.set_stamps(c.available);
                    }
                }
                if self.stamps_contact.is_none() {
                    self.stamps_contact = balances.contacts.first().map(|c| c.contact);
                }
                self.data.stamp_balances = Some(balances);
            }
            (Purpose::StartCall, response) | (Purpose::HangUp, response) => {
                if let Some(call) = &mut self.call {
                    call.apply_response(&response);
                    if let TabletResponse::CallStarted { media: Some(media), .. } = &response {
                        if !call.is_over() && !self.media_live {
                            self.media_live = true;
                            self.media_commands
                                .push(MediaCommand::Start { media: media.clone(), kind: call.kind() });
                            // The answer may have overtaken `CallStarted`.
                            if call.has_connected() {
                                self.media_commands.push(MediaCommand::ContactJoined);
                            }
                        }
                    }
                }
                self.settle_media();
            }
            (Purpose::SaveDraft, TabletResponse::DraftSaved { id }) => {
                if let Some(compose) = &mut self.compose {
                    compose.apply_saved(id);
                }
            }
            (Purpose::SendMessage, TabletResponse::MessageQueued(view)) => {
                if let Some(compose) = &mut self.compose {
                    compose.apply_queued(&view);
                }
                self.send(Purpose::StampBalance, TabletRequest::StampBalance);
            }
            (Purpose::DeleteDraft, TabletResponse::DraftDeleted { .. })
            | (Purpose::HideSent, TabletResponse::SentHidden { .. }) => {
                self.data.message = None;
                self.navigate(Screen::Mailbox);
            }
            (Purpose::BuyStamps { contact_name }, TabletResponse::StampsBought(purchase)) => {
                self.purchase_result =
                    Some(PurchaseResult::from_purchase(&purchase, &contact_name, self.lang()));
                self.send(Purpose::StampBalance, TabletRequest::StampBalance);
                self.send(Purpose::StampShop, TabletRequest::StampPackages);
            }
            (
                Purpose::Media(asked),
                TabletResponse::MediaChunk { media, content_type, total, offset, bytes },
            ) => {
                // A chunk for a message closed since is dropped.
                let Some(parts) = self.media_parts.get_mut(&asked) else { return };
                if let Err(error) = parts.accept(media, content_type, total, offset, &bytes) {
                    tracing::warn!(%asked, %error, "bad media from the edge");
                    self.media_parts.remove(&asked);
                    self.media_state.insert(asked, MediaState::Unavailable);
                    return;
                }
                match parts.next_offset() {
                    Some(offset) => {
                        self.send(Purpose::Media(asked), TabletRequest::Media { media: asked, offset })
                    }
                    None => {
                        let done = self.media_parts.remove(&asked).map(MediaAssembly::finish);
                        match done {
                            Some(Ok(file)) => self.media_arrived(file),
                            _ => {
                                self.media_state.insert(asked, MediaState::Unavailable);
                            }
                        }
                    }
                }
            }
            (purpose, response) => {
                tracing::warn!(
                    ?purpose,
                    ?response,
                    "the edge answered a request with an unexpected response"
                );
            }
        }
    }

    fn refused(&mut self, purpose: Purpose, error: ApiError) {
        match (&purpose, &error) {
            (_, ApiError::NotLoggedIn) | (_, ApiError::SessionEnded { .. }) if purpose != Purpose::Login => {
                if self.data.session.is_some() {
                    let reason = match &error {
                        ApiError::SessionEnded { reason } => *reason,
                        _ => proto::tablet::SessionEndReason::DeviceDisconnected,
                    };
                    self.back_to_login(Some(LoginNotice::SessionEnded(reason)));
                }
            }
            (Purpose::Login, _) => self.login.apply_error(&error, self.now),
            (Purpose::StartCall, _) | (Purpose::HangUp, _) => {
                if let Some(call) = &mut self.call {
                    call.apply_error(&error);
                }
            }
            (Purpose::SaveDraft | Purpose::SendMessage, ApiError::Messaging(err)) => {
                if let Some(compose) = &mut self.compose {
                    compose.apply_edge_error(err);
                }
            }
            (Purpose::BuyStamps { .. }, ApiError::Messaging(err)) => {
                self.purchase_result = Some(PurchaseResult::from_error(err, self.lang()));
            }
            (Purpose::Media(media), _) => {
                let state = match error {
                    ApiError::MediaNotDownloaded { .. } => MediaState::NotDownloaded,
                    _ => MediaState::Unavailable,
                };
                self.media_parts.remove(media);
                if let Some(slot) = self.media_state.get_mut(media) {
                    *slot = state;
                }
            }
            (Purpose::SaveDraft | Purpose::SendMessage | Purpose::BuyStamps { .. }, _) => {
                let err = MessagingError::NotAllowed(match error {
                    ApiError::Unavailable { reason } => reason,
                    other => proto::tablet::DenyReason::FacilityMisconfigured { detail: other.to_string() },
                });
                if let Some(compose) = &mut self.compose {
                    compose.apply_edge_error(&err);
                }
            }
            _ => tracing::warn!(?purpose, %error, "the edge refused a request"),
        }
    }

    fn unreachable(&mut self, purpose: Purpose) {
        match purpose {
            Purpose::Login => self.login.connection_failed(self.now),
            Purpose::StartCall | Purpose::HangUp => {
                if let Some(call) = &mut self.call {
                    call.connection_failed();
                }
            }
            Purpose::Media(media) => {
                self.media_parts.remove(&media);
                if let Some(slot) = self.media_state.get_mut(&media) {
                    *slot = MediaState::Unavailable;
                }
            }
            _ => self.login_notice = Some(LoginNotice::EdgeUnreachable),
        }
    }

    // ---- what the screens show -------------------------------------------------

    pub fn nav(&self) -> NavVm {
        let name = self.data.session.as_ref().map_or("", |s| s.name.as_str());
        NavVm::new(name, self.data.unread, self.lang())
    }

    pub fn login_view(&self) -> crate::vm::login::LoginView {
        let mut view = self.login.view(self.lang());
        if view.message.is_empty() {
            if let Some(notice) = self.login_notice {
                view.message = notice.words(self.lang());
                view.message_tone = Tone::Warning;
            }
        }
        view
    }

    /// The offline banner, when the edge says central is unreachable.
    pub fn offline_banner(&self) -> Option<String> {
        self.data.freshness.as_ref().and_then(|f| common::offline_banner(f, self.lang()))
    }

    pub fn lockdown_banner(&self) -> Option<String> {
        self.data.lockdown.as_ref().map(|scope| common::lockdown_banner(scope, self.lang()))
    }

    /// `None` until the edge has answered everything home needs.
    pub fn home(&self) -> Option<HomeVm> {
        let d = &self.data;
        let (session, balances, hours) = (d.session.as_ref()?, d.balances.as_ref()?, d.hours.as_ref()?);
        let contacts = d.contacts.as_ref().map_or(&[][..], |c| &c.contacts[..]);
        let input = HomeInput {
            session,
            balances,
            hours,
            contacts,
            unread: d.unread,
            lockdown: d.lockdown.as_ref(),
            now: self.now,
        };
        Some(HomeVm::new(&input, self.lang()))
    }

    pub fn contacts(&self) -> Option<ContactsVm> {
        self.data.contacts.as_ref().map(|list| ContactsVm::new(list, self.lang()))
    }

    pub fn call(&self) -> Option<&CallVm> {
        self.call.as_ref()
    }

    fn time_zone(&self) -> TimeZone {
        self.data.hours.as_ref().and_then(|h| TimeZone::get(&h.time_zone).ok()).unwrap_or(TimeZone::UTC)
    }

    pub fn mailbox(&self) -> Option<MailboxVm> {
        self.data.mailbox.as_ref().map(|m| MailboxVm::new(m, self.now, &self.time_zone(), self.lang()))
    }

    pub fn message_vm(&self) -> Option<MessageVm> {
        self.data
            .message
            .as_ref()
            .map(|m| MessageVm::new(m, &self.data.ecards, &self.time_zone(), self.lang()))
    }

    /// Where the open message's attachment `media` stands (`None`: not an
    /// attachment of the open message).
    pub fn media_state(&self, media: MediaId) -> Option<MediaState> {
        self.media_state.get(&media).copied()
    }

    /// The open message's attachment `media`, once every byte is here.
    pub fn media_file(&self, media: MediaId) -> Option<&MediaFile> {
        self.media_files.get(&media)
    }

    /// The open message's photo `media`, decoded and fitted to the viewer.
    pub fn photo(&self, media: MediaId) -> Option<&Photo> {
        self.photos.get(&media)
    }

    /// The open VideoGram's playback, if the message has one.
    pub fn playback(&self) -> Option<&VideoGramPlayback> {
        self.playback.as_ref()
    }

    pub fn compose(&self) -> Option<&ComposeVm> {
        self.compose.as_ref()
    }

    pub fn picker(&self) -> Option<ECardPickerVm> {
        self.picker_open.then(|| ECardPickerVm::new(&self.data.ecards, self.lang()))
    }

    pub fn stamps_vm(&self) -> Option<StampsVm> {
        let (shop, balances) = (self.data.shop.as_ref()?, self.data.stamp_balances.as_ref()?);
        Some(StampsVm::new(shop, balances, self.stamps_contact, self.lang()))
    }

    pub fn confirm(&self) -> Option<&ConfirmPurchase> {
        self.confirm.as_ref()
    }

    pub fn purchase_result(&self) -> Option<&PurchaseResult> {
        self.purchase_result.as_ref()
    }

    pub fn settings_vm(&self) -> SettingsVm {
        SettingsVm::new(self.settings)
    }

    /// The open message is a draft still held by the edge (for tests and the UI).
    pub fn message_is_draft(&self) -> bool {
        self.data.message.as_ref().is_some_and(|m| m.state == MessageState::Draft)
    }

    /// Whether the open message has a VideoGram to play.
    pub fn message_has_videogram(&self) -> bool {
        self.message_vm().is_some_and(|m| m.attachments.iter().any(|a| a.kind == AttachmentKind::VideoGram))
    }
}

#[cfg(test)]
mod tests {
    use proto::domain::{ResidentId, UnitId};
    use proto::tablet::SessionEndReason;

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Answers the login and logout requests waiting now, as the edge would.
    fn answer_all(kiosk: &mut Kiosk) {
        for out in kiosk.take_outgoing() {
            let reply = match out.request {
                TabletRequest::Login { resident, .. } => {
                    EdgeReply::Answer(TabletResponse::LoggedIn(SessionInfo {
                        resident,
                        name: "Andre Martin".into(),
                        unit: UnitId::new("A"),
                        session_id: 1,
                    }))
                }
                TabletRequest::Logout => EdgeReply::Answer(TabletResponse::LoggedOut),
                // Home's data is not what these tests look at; left unanswered.
                _ => continue,
            };
            kiosk.reply(out.id, reply);
        }
    }

    fn log_in(kiosk: &mut Kiosk) {
        log_in_pending(kiosk);
        let sent = kiosk.take_outgoing();
        assert!(
            matches!(sent.as_slice(), [Outgoing { request: TabletRequest::Login { resident, .. }, .. }]
                if *resident == ResidentId::new("1001")),
            "{sent:?}"
        );
        kiosk.outgoing = sent;
        answer_all(kiosk);
        assert_eq!(kiosk.screen(), Screen::Home);
    }

    /// The resident changes both settings during the session.
    fn change_settings_in_session(kiosk: &mut Kiosk, lang: Lang) {
        kiosk.ui(UiEvent::Navigate(Screen::Settings));
        kiosk.ui(UiEvent::ChooseLanguage(lang));
        kiosk.ui(UiEvent::ToggleLargeText);
        answer_all(kiosk);
    }

    #[test]
    fn a_language_chosen_on_the_login_screen_carries_into_the_session() {
        let facility = Settings { lang: Lang::English, large_text: false };
        let mut kiosk = Kiosk::new(facility, at(0), 0);
        assert_eq!(kiosk.login_view().title, "Log in");
        kiosk.ui(UiEvent::ChooseLanguage(Lang::Spanish));
        assert_eq!(kiosk.screen(), Screen::Login);
        assert!(kiosk.take_outgoing().is_empty(), "choosing a language asks nothing of the edge");
        let view = kiosk.login_view();
        assert_eq!(view.title, "Iniciar sesión");
        assert_eq!(view.languages.iter().find(|c| c.selected).map(|c| c.lang), Some(Lang::Spanish));

        log_in(&mut kiosk);
        assert_eq!(kiosk.lang(), Lang::Spanish);
        assert_eq!(kiosk.nav().home, "Inicio");
        assert_eq!(kiosk.default_settings(), facility, "the facility's defaults are untouched");
    }

    #[test]
    fn an_idle_login_screen_forgets_what_the_last_person_left_on_it() {
        let facility = Settings { lang: Lang::English, large_text: false };
        let mut kiosk = Kiosk::new(facility, at(0), 0);
        kiosk.ui(UiEvent::ChooseLanguage(Lang::Spanish));
        kiosk.ui(UiEvent::ToggleLargeText);
        for digit in [1, 0, 0] {
            kiosk.ui(UiEvent::LoginDigit(digit));
        }
        // Touches keep the screen as it is; the idle time counts from the last one.
        kiosk.tick(at(50), 50_000);
        kiosk.ui(UiEvent::LoginDigit(1));
        kiosk.tick(at(109), 109_000);
        assert_eq!(kiosk.login_view().id_text, "1001", "59 s after the last touch");
        assert_eq!(kiosk.settings(), Settings { lang: Lang::Spanish, large_text: true });

        kiosk.tick(at(110), LOGIN_IDLE_RESET_MS + 50_000);
        let view = kiosk.login_view();
        assert_eq!((view.id_text.as_str(), view.pin_dots.as_str()), ("", ""));
        assert_eq!(kiosk.settings(), facility);
        assert_eq!(view.title, "Log in");

        // A login on its way to the edge is not forgotten: its answer still lands.
        log_in_pending(&mut kiosk);
        kiosk.tick(at(400), 400_000);
        assert!(kiosk.is_waiting());
        answer_all(&mut kiosk);
        assert_eq!(kiosk.screen(), Screen::Home);
        // Idle time on other screens is the edge's session business, not this reset.
        kiosk.tick(at(1_000), 1_000_000);
        assert_eq!(kiosk.screen(), Screen::Home);
    }

    /// Types the demo resident's ID and PIN and submits, without answering.
    fn log_in_pending(kiosk: &mut Kiosk) {
        for digit in [1, 0, 0, 1] {
            kiosk.ui(UiEvent::LoginDigit(digit));
        }
        kiosk.ui(UiEvent::LoginSubmit);
        for digit in [1, 2, 3, 4] {
            kiosk.ui(UiEvent::LoginDigit(digit));
        }
        kiosk.ui(UiEvent::LoginSubmit);
    }

    /// One way a session ends.
    type EndSession = fn(&mut Kiosk);

    #[test]
    fn every_way_back_to_login_restores_the_facility_settings() {
        // Defaults other than `Settings::default()`, so a reset to the
        // facility's choice cannot pass by accident.
        let facility = Settings { lang: Lang::Spanish, large_text: true };
        let resident_lang = Lang::English;
        let session_ended: [(&str, EndSession); 5] = [
            ("log out", |k| k.ui(UiEvent::Logout)),
            ("Ctrl+Alt+Backspace", |k| k.ui(UiEvent::Reset)),
            ("the edge ends the session", |k| {
                k.event(ServerEvent::SessionEnded { reason: SessionEndReason::LoggedInElsewhere })
            }),
            ("a request finds the session over", |k| {
                k.ui(UiEvent::Navigate(Screen::Contacts));
                for out in k.take_outgoing() {
                    k.reply(
                        out.id,
                        EdgeReply::Refused(ApiError::SessionEnded {
                            reason: SessionEndReason::ResidentInactive,
                        }),
                    );
                }
            }),
            ("a request finds no session", |k| {
                k.ui(UiEvent::Navigate(Screen::Mailbox));
                for out in k.take_outgoing() {
                    k.reply(out.id, EdgeReply::Refused(ApiError::NotLoggedIn));
                }
            }),
        ];
        for (how, end) in session_ended {
            let mut kiosk = Kiosk::new(facility, at(0), 0);
            log_in(&mut kiosk);
            change_settings_in_session(&mut kiosk, resident_lang);
            assert_eq!(kiosk.settings(), Settings { lang: resident_lang, large_text: false }, "{how}");

            kiosk.tick(at(60), 60_000);
            end(&mut kiosk);
            answer_all(&mut kiosk);
            assert_eq!(kiosk.screen(), Screen::Login, "{how}");
            assert_eq!(
                kiosk.settings(),
                facility,
                "{how}: the next resident starts from the facility's settings"
            );
            assert_eq!(kiosk.settings_vm().text_scale(), crate::vm::settings::LARGE_TEXT_SCALE, "{how}");
            let view = kiosk.login_view();
            assert_eq!(view.title, "Iniciar sesión", "{how}");
            assert!(view.id_text.is_empty(), "{how}");
        }
    }

    #[test]
    fn why_the_session_ended_is_told_in_the_language_of_the_login_screen() {
        let facility = Settings { lang: Lang::English, large_text: false };
        let mut kiosk = Kiosk::new(facility, at(0), 0);
        log_in(&mut kiosk);
        change_settings_in_session(&mut kiosk, Lang::Spanish);
        kiosk.event(ServerEvent::SessionEnded { reason: SessionEndReason::LoggedInElsewhere });
        assert_eq!(
            kiosk.login_view().message,
            "You logged in on another tablet, so this one was logged out.",
            "the previous resident's Spanish is gone with them"
        );
        // The next resident switches: the notice follows.
        kiosk.ui(UiEvent::ChooseLanguage(Lang::Spanish));
        assert_eq!(kiosk.login_view().message, "Inició sesión en otra tableta, así que esta se cerró.");
    }

    #[test]
    fn a_reset_keeps_the_logout_and_the_id_prefix() {
        let facility = Settings { lang: Lang::English, large_text: false };
        let mut kiosk = Kiosk::new(facility, at(0), 0).with_id_prefix("R");
        kiosk.ui(UiEvent::ChooseLanguage(Lang::Spanish));
        log_in_pending(&mut kiosk);
        answer_all(&mut kiosk);
        assert_eq!(kiosk.lang(), Lang::Spanish);
        kiosk.ui(UiEvent::Reset);
        assert_eq!(
            kiosk.take_outgoing().into_iter().map(|o| o.request).collect::<Vec<_>>(),
            [TabletRequest::Logout],
            "the session is still ended at the edge"
        );
        assert_eq!(kiosk.settings(), facility);
        kiosk.ui(UiEvent::LoginDigit(7));
        assert_eq!(kiosk.login_view().id_text, "R7", "the facility's ID prefix survives the reset");
    }
}

#[cfg(test)]
mod media_tests {
    use proto::domain::ContactId;
    use proto::messaging::{Attachment, Direction, MediaType, MessageId};
    use proto::tablet::{MessageState, MessageView};

    use super::*;

    fn open_message(kiosk: &mut Kiosk, attachments: Vec<Attachment>) -> Vec<Outgoing> {
        kiosk.send(Purpose::ReadMessage, TabletRequest::ReadMessage { id: MessageId::from_u128(1) });
        let out = kiosk.take_outgoing();
        let view = MessageView {
            id: MessageId::from_u128(1),
            contact: ContactId(1),
            contact_name: "Maria".into(),
            direction: Direction::ContactToResident,
            subject: "Pictures".into(),
            body: String::new(),
            attachments,
            at: Timestamp::UNIX_EPOCH,
            state: MessageState::Received { read: true },
        };
        kiosk.reply(out[0].id, EdgeReply::Answer(TabletResponse::Message(view)));
        kiosk.take_outgoing()
    }

    fn media_requests(out: &[Outgoing]) -> Vec<(u64, MediaId, u64)> {
        out.iter()
            .filter_map(|o| match o.request {
                TabletRequest::Media { media, offset } => Some((o.id, media, offset)),
                _ => None,
            })
            .collect()
    }

    const PNG: &[u8] = include_bytes!("../../central-sim/fixtures/media/photo.png");
    const WEBM: &[u8] = include_bytes!("../../central-sim/fixtures/media/videogram.webm");

    fn kiosk() -> Kiosk {
        let mut kiosk =
            Kiosk::new(Settings { lang: Lang::English, large_text: false }, Timestamp::UNIX_EPOCH, 0);
        kiosk.data.session = Some(SessionInfo {
            resident: proto::domain::ResidentId::new("1001"),
            name: "Andre Martin".into(),
            unit: proto::domain::UnitId::new("A"),
            session_id: 1,
        });
        kiosk
    }

    /// Answers request `id` for `media` with the whole file in one chunk.
    fn serve(kiosk: &mut Kiosk, id: u64, media: MediaId, content_type: MediaType, bytes: &[u8]) {
        let total = bytes.len() as u64;
        let chunk = |offset: usize, end: usize| {
            EdgeReply::Answer(TabletResponse::MediaChunk {
                media,
                content_type,
                total,
                offset: offset as u64,
                bytes: bytes[offset..end].to_vec(),
            })
        };
        // The edge's chunks are at most 48 KiB; the VideoGram takes two.
        let mut id = id;
        let mut offset = 0;
        loop {
            let end = (offset + 48 * 1024).min(bytes.len());
            kiosk.reply(id, chunk(offset, end));
            offset = end;
            match media_requests(&kiosk.take_outgoing()).as_slice() {
                [(next, m, at)] if *m == media && *at == offset as u64 => id = *next,
                [] => break,
                other => panic!("unexpected requests {other:?}"),
            }
        }
    }

    #[test]
    fn opening_a_message_fetches_its_media_chunk_by_chunk() {
        let mut kiosk =
            Kiosk::new(Settings { lang: Lang::English, large_text: false }, Timestamp::UNIX_EPOCH, 0);
        let out = open_message(
            &mut kiosk,
            vec![
                Attachment::ECard(proto::messaging::ECardId(5)),
                Attachment::Photo(MediaId(1)),
                Attachment::VideoGram { media: MediaId(2), duration_secs: 2 },
            ],
        );
        let asked = media_requests(&out);
        assert_eq!(
            asked.iter().map(|a| (a.1, a.2)).collect::<Vec<_>>(),
            vec![(MediaId(1), 0), (MediaId(2), 0)]
        );
        assert_eq!(kiosk.media_state(MediaId(1)), Some(MediaState::Loading));
        assert_eq!(kiosk.media_state(MediaId(9)), None);

        // The photo comes in two chunks.
        let total = PNG.len() as u64;
        let chunk = |offset: usize, bytes: &[u8]| {
            EdgeReply::Answer(TabletResponse::MediaChunk {
                media: MediaId(1),
                content_type: MediaType::Png,
                total,
                offset: offset as u64,
                bytes: bytes.to_vec(),
            })
        };
        kiosk.reply(asked[0].0, chunk(0, &PNG[..1000]));
        let next = media_requests(&kiosk.take_outgoing());
        assert_eq!(next.iter().map(|a| (a.1, a.2)).collect::<Vec<_>>(), vec![(MediaId(1), 1000)]);
        assert_eq!(kiosk.media_file(MediaId(1)), None);
        assert_eq!(kiosk.photo(MediaId(1)), None);
        kiosk.reply(next[0].0, chunk(1000, &PNG[1000..]));
        assert_eq!(kiosk.media_state(MediaId(1)), Some(MediaState::Ready));
        assert_eq!(kiosk.media_file(MediaId(1)).map(|f| f.bytes.as_slice()), Some(PNG));
        let photo = kiosk.photo(MediaId(1)).expect("the photo is decoded once it is whole");
        assert_eq!((photo.width, photo.height, photo.rgba.len()), (160, 120, 160 * 120 * 4));
        assert!(media_requests(&kiosk.take_outgoing()).is_empty());

        // The VideoGram is not on the edge yet: plain words, no error screen.
        kiosk.reply(asked[1].0, EdgeReply::Refused(ApiError::MediaNotDownloaded { media: MediaId(2) }));
        assert_eq!(kiosk.media_state(MediaId(2)), Some(MediaState::NotDownloaded));
        assert_eq!(
            kiosk.media_state(MediaId(2)).map(|s| s.words(Lang::Spanish)).as_deref(),
            Some("Todavía no se ha descargado. Inténtalo más tarde.")
        );
        assert!(kiosk.login_notice.is_none(), "a missing attachment is not an unreachable edge");
    }

    #[test]
    fn a_photo_that_does_not_decode_is_unavailable_in_words() {
        let mut kiosk = kiosk();
        let out = open_message(
            &mut kiosk,
            vec![
                Attachment::Photo(MediaId(1)),
                Attachment::SnapNSend(MediaId(2)),
                Attachment::Photo(MediaId(3)),
            ],
        );
        let asked = media_requests(&out);
        serve(&mut kiosk, asked[0].0, MediaId(1), MediaType::Png, &PNG[..PNG.len() / 2]);
        // A video where a photo belongs is not shown as one.
        serve(&mut kiosk, asked[1].0, MediaId(2), MediaType::WebmVp8, WEBM);
        // Every byte of a good photo, labelled as the wrong kind.
        serve(&mut kiosk, asked[2].0, MediaId(3), MediaType::Jpeg, PNG);
        for media in [MediaId(1), MediaId(2), MediaId(3)] {
            assert_eq!(kiosk.media_state(media), Some(MediaState::Unavailable), "{media}");
            assert_eq!(kiosk.photo(media), None);
            assert_eq!(
                kiosk.media_state(media).map(|s| s.words(Lang::Spanish)).as_deref(),
                Some("Este adjunto no se puede mostrar.")
            );
        }
    }

    /// A message with the 2 s fixture VideoGram, fetched whole; the kiosk on
    /// its screen.
    fn videogram_ready() -> Kiosk {
        let mut kiosk = kiosk();
        let out =
            open_message(&mut kiosk, vec![Attachment::VideoGram { media: MediaId(2), duration_secs: 2 }]);
        assert_eq!(kiosk.screen(), Screen::Message);
        let asked = media_requests(&out);
        serve(&mut kiosk, asked[0].0, MediaId(2), MediaType::WebmVp8, WEBM);
        assert_eq!(kiosk.media_state(MediaId(2)), Some(MediaState::Ready));
        kiosk
    }

    fn progress(kiosk: &Kiosk) -> (String, String) {
        let playback = kiosk.playback().expect("the message has a VideoGram");
        (playback.button_label(Lang::English), playback.progress_label())
    }

    #[test]
    fn play_pause_and_resume_are_commands_and_the_player_moves_the_progress() {
        let mut kiosk = videogram_ready();
        assert!(kiosk.take_videogram_commands().is_empty(), "nothing plays by itself");
        kiosk.ui(UiEvent::PlayAttachment);
        let play = match kiosk.take_videogram_commands().as_slice() {
            [VideoGramCommand::Play { play, media: MediaId(2) }] => *play,
            other => panic!("{other:?}"),
        };
        assert_eq!(kiosk.videogram_on_screen(), Some(play));
        assert_eq!(progress(&kiosk), ("Pause".into(), "0:00 / 0:02".into()));

        // Time alone moves nothing: only the player's reports do.
        kiosk.tick(Timestamp::UNIX_EPOCH, 5_000);
        assert_eq!(progress(&kiosk).1, "0:00 / 0:02");
        kiosk.videogram(VideoGramEvent::Position { play, ms: 1_040 });
        assert_eq!(progress(&kiosk).1, "0:01 / 0:02");
        assert!((kiosk.playback().map_or(0.0, |p| p.fraction()) - 0.52).abs() < 1e-6);
        // A report of some other run is not this one's.
        kiosk.videogram(VideoGramEvent::Position { play: play + 7, ms: 1_900 });
        kiosk.videogram(VideoGramEvent::Ended { play: play + 7 });
        assert_eq!(progress(&kiosk), ("Pause".into(), "0:01 / 0:02".into()));

        kiosk.ui(UiEvent::PlayAttachment);
        assert_eq!(kiosk.take_videogram_commands(), vec![VideoGramCommand::Pause]);
        assert_eq!(progress(&kiosk).0, "Play");
        assert_eq!(kiosk.videogram_on_screen(), Some(play), "a paused picture stays");
        kiosk.ui(UiEvent::PlayAttachment);
        assert_eq!(kiosk.take_videogram_commands(), vec![VideoGramCommand::Resume]);

        kiosk.videogram(VideoGramEvent::Position { play, ms: 2_000 });
        kiosk.videogram(VideoGramEvent::Ended { play });
        assert_eq!(kiosk.take_videogram_commands(), vec![VideoGramCommand::Stop]);
        assert_eq!(progress(&kiosk), ("Play".into(), "0:02 / 0:02".into()));
        assert_eq!(kiosk.videogram_on_screen(), None);

        // Played again: a new run from the start.
        kiosk.ui(UiEvent::PlayAttachment);
        match kiosk.take_videogram_commands().as_slice() {
            [VideoGramCommand::Play { play: again, media: MediaId(2) }] => assert_ne!(*again, play),
            other => panic!("{other:?}"),
        }
        assert_eq!(progress(&kiosk), ("Pause".into(), "0:00 / 0:02".into()));
    }

    #[test]
    fn a_videogram_not_here_yet_does_not_play() {
        let mut kiosk = kiosk();
        let out =
            open_message(&mut kiosk, vec![Attachment::VideoGram { media: MediaId(2), duration_secs: 2 }]);
        kiosk.ui(UiEvent::PlayAttachment);
        assert!(kiosk.take_videogram_commands().is_empty(), "still loading");
        let asked = media_requests(&out);
        kiosk.reply(asked[0].0, EdgeReply::Refused(ApiError::MediaNotDownloaded { media: MediaId(2) }));
        kiosk.ui(UiEvent::PlayAttachment);
        assert!(kiosk.take_videogram_commands().is_empty(), "not downloaded");
        assert_eq!(progress(&kiosk).0, "Play");
    }

    #[test]
    fn a_player_error_leaves_the_videogram_unavailable_in_words() {
        let mut kiosk = videogram_ready();
        kiosk.ui(UiEvent::PlayAttachment);
        let Some(VideoGramCommand::Play { play, .. }) = kiosk.take_videogram_commands().pop() else {
            panic!("no Play");
        };
        kiosk.videogram(VideoGramEvent::Position { play, ms: 500 });
        kiosk.videogram(VideoGramEvent::Failed { play });
        assert_eq!(kiosk.take_videogram_commands(), vec![VideoGramCommand::Stop]);
        assert_eq!(kiosk.media_state(MediaId(2)), Some(MediaState::Unavailable));
        assert_eq!(
            kiosk.media_state(MediaId(2)).map(|s| s.words(Lang::English)).as_deref(),
            Some("This attachment cannot be shown.")
        );
        assert_eq!(progress(&kiosk), ("Play".into(), "0:00 / 0:02".into()));
        kiosk.ui(UiEvent::PlayAttachment);
        assert!(kiosk.take_videogram_commands().is_empty(), "it is not tried again");
    }

    /// One way off the message screen.
    type Leave = fn(&mut Kiosk);

    #[test]
    fn leaving_the_message_logging_out_or_a_reset_stops_the_player() {
        let leave: [(&str, Leave); 5] = [
            ("back to the mailbox", |k| k.ui(UiEvent::MessageBack)),
            ("the navigation bar", |k| k.ui(UiEvent::Navigate(Screen::Home))),
            ("log out", |k| k.ui(UiEvent::Logout)),
            ("Ctrl+Alt+Backspace", |k| k.ui(UiEvent::Reset)),
            ("the edge ends the session", |k| {
                k.event(ServerEvent::SessionEnded {
                    reason: proto::tablet::SessionEndReason::LoggedInElsewhere,
                })
            }),
        ];
        for (how, leave) in leave {
            for paused in [false, true] {
                let mut kiosk = videogram_ready();
                kiosk.ui(UiEvent::PlayAttachment);
                if paused {
                    kiosk.ui(UiEvent::PlayAttachment);
                }
                let Some(VideoGramCommand::Play { play, .. }) =
                    kiosk.take_videogram_commands().first().cloned()
                else {
                    panic!("{how}: no Play");
                };
                leave(&mut kiosk);
                assert_eq!(kiosk.take_videogram_commands(), vec![VideoGramCommand::Stop], "{how}");
                assert_eq!(kiosk.videogram_on_screen(), None, "{how}");
                // A late report of the stopped run changes nothing.
                kiosk.videogram(VideoGramEvent::Ended { play });
                assert!(kiosk.take_videogram_commands().is_empty(), "{how}");
            }
        }
        // Nothing to stop when nothing played.
        let mut kiosk = videogram_ready();
        kiosk.ui(UiEvent::MessageBack);
        assert!(kiosk.take_videogram_commands().is_empty());
    }

    #[test]
    fn run_numbers_are_not_reused_after_a_logout() {
        let mut kiosk = videogram_ready();
        kiosk.ui(UiEvent::PlayAttachment);
        let first = kiosk.take_videogram_commands();
        kiosk.ui(UiEvent::Logout);
        assert!(kiosk.next_play > 1);
        let Some(VideoGramCommand::Play { play, .. }) = first.first().cloned() else { panic!("{first:?}") };
        assert!(kiosk.next_play > play, "the next session's first run is numbered after {play}");
    }

    #[test]
    fn bad_chunks_and_a_lost_edge_leave_the_media_unavailable() {
        let mut kiosk =
            Kiosk::new(Settings { lang: Lang::English, large_text: false }, Timestamp::UNIX_EPOCH, 0);
        let out =
            open_message(&mut kiosk, vec![Attachment::Photo(MediaId(1)), Attachment::SnapNSend(MediaId(2))]);
        let asked = media_requests(&out);
        kiosk.reply(
            asked[0].0,
            EdgeReply::Answer(TabletResponse::MediaChunk {
                media: MediaId(1),
                content_type: MediaType::Png,
                total: 5,
                offset: 2,
                bytes: b"xyz".to_vec(),
            }),
        );
        assert_eq!(kiosk.media_state(MediaId(1)), Some(MediaState::Unavailable));
        kiosk.reply(asked[1].0, EdgeReply::Unreachable);
        assert_eq!(kiosk.media_state(MediaId(2)), Some(MediaState::Unavailable));
        // Opening another message forgets the first one's media.
        open_message(&mut kiosk, vec![]);
        assert_eq!(kiosk.media_state(MediaId(1)), None);
    }
}
