//! A canned stand-in edge for the UI tests and golden screenshots: fixed
//! data at a fixed instant, so every picture is the same on every run. The
//! real edge drives the kiosk in `tests/tests/kiosk.rs`; this one only has
//! to answer like it.

#![allow(dead_code)]

use jiff::Timestamp;
use proto::call::CallUpdate;
use proto::domain::{Approval, CallKind, ContactId, LockdownScope, ResidentId, Service, UnitId};
use proto::messaging::{
    Attachment, Direction, ECardId, ECardRecord, IdempotencyKey, MediaId, MediaType, MessageId, PackageId,
    StampPackageRecord,
};
use proto::tablet::*;
use tablet_shell::kiosk::EdgeReply;
use tablet_shell::ui::driver::Edge;

/// 10:30 in the facility (America/Los_Angeles), a Wednesday.
pub fn now() -> Timestamp {
    "2026-11-25T18:30:00Z".parse().expect("a valid instant")
}

pub const TZ: &str = "America/Los_Angeles";

pub struct CannedEdge {
    pub requests: Vec<TabletRequest>,
    pub events: Vec<ServerEvent>,
    pub offline: bool,
    pub lockdown: Option<LockdownScope>,
    /// Refusals to give, in order, to the next logins.
    pub login_refusals: Vec<ApiError>,
    /// Answer to the next `StartCall`.
    pub call: Option<TabletResponse>,
    /// The attachments this edge has downloaded; others are "not downloaded yet".
    pub media: Vec<(MediaId, MediaType, Vec<u8>)>,
    /// The birthday message also carries [`PHOTO`] (a photo attachment).
    pub with_photo: bool,
}

/// The birthday message's VideoGram.
pub const VIDEOGRAM: MediaId = MediaId(9);
/// The birthday message's photo, when [`CannedEdge::with_photo`].
pub const PHOTO: MediaId = MediaId(11);
pub const PHOTO_PNG: &[u8] = include_bytes!("../../../central-sim/fixtures/media/photo.png");
pub const VIDEOGRAM_WEBM: &[u8] = include_bytes!("../../../central-sim/fixtures/media/videogram.webm");
/// The edge's chunk size (`MAX_TABLET_MEDIA_CHUNK`).
const CHUNK: usize = 48 * 1024;

impl Default for CannedEdge {
    fn default() -> Self {
        CannedEdge {
            requests: Vec::new(),
            events: Vec::new(),
            offline: false,
            lockdown: None,
            login_refusals: Vec::new(),
            call: Some(TabletResponse::CallStarted {
                call_id: 77,
                max_duration_secs: 900,
                warn_at_secs: 840,
                media: None,
            }),
            media: vec![(VIDEOGRAM, MediaType::WebmVp8, VIDEOGRAM_WEBM.to_vec())],
            with_photo: false,
        }
    }
}

fn freshness(offline: bool) -> Freshness {
    if offline {
        Freshness { uplink_up: false, cache_age_secs: Some(12 * 60) }
    } else {
        Freshness { uplink_up: true, cache_age_secs: Some(4) }
    }
}

fn window(day: &str, start_utc: &str, end_utc: &str) -> WindowView {
    WindowView {
        starts_at: start_utc.parse().expect("instant"),
        ends_at: end_utc.parse().expect("instant"),
        local_start: "07:00".into(),
        local_end: "22:00".into(),
        local_date: day.parse().expect("date"),
    }
}

fn contact(
    id: u64,
    name: &str,
    number: &str,
    video: Availability,
    message: Availability,
    balance: i64,
) -> ContactView {
    ContactView {
        id: ContactId(id),
        name: name.into(),
        numbers: vec![number.into()],
        voice: Availability::Available,
        video,
        message,
        video_balance_cents: balance,
        video_rate_cents_per_min: 20,
    }
}

pub fn contacts(offline: bool) -> ContactList {
    ContactList {
        contacts: vec![
            contact(
                1,
                "Maria Alvarez",
                "+12135550100",
                Availability::Available,
                Availability::Available,
                2000,
            ),
            contact(
                5,
                "Kevin Alvarez",
                "+13235550111",
                Availability::Unavailable(DenyReason::InsufficientBalance {
                    balance_cents: 0,
                    rate_cents_per_min: 20,
                }),
                Availability::Available,
                0,
            ),
            contact(
                3,
                "Tom Becker",
                "+16195550123",
                Availability::Unavailable(DenyReason::NotApproved {
                    service: Service::Video,
                    status: Approval::Pending,
                }),
                Availability::Unavailable(DenyReason::NotApproved {
                    service: Service::Message,
                    status: Approval::Rejected,
                }),
                0,
            ),
        ],
        freshness: freshness(offline),
    }
}

#[allow(clippy::too_many_arguments)] // one test message per call, every field named at the call
fn summary(
    id: u128,
    contact: u64,
    name: &str,
    direction: Direction,
    subject: &str,
    at: &str,
    attachments: u32,
    state: MessageState,
) -> MessageSummary {
    MessageSummary {
        id: MessageId::from_u128(id),
        contact: ContactId(contact),
        contact_name: name.into(),
        direction,
        subject: subject.into(),
        at: at.parse().expect("instant"),
        attachments,
        state,
    }
}

pub fn mailbox(folder: Folder, with_photo: bool) -> MailboxView {
    let messages = match folder {
        Folder::Inbox => vec![
            summary(
                1,
                1,
                "Maria Alvarez",
                Direction::ContactToResident,
                "Happy birthday!",
                "2026-11-25T17:05:00Z",
                if with_photo { 3 } else { 2 },
                MessageState::Received { read: false },
            ),
            summary(
                2,
                5,
                "Kevin Alvarez",
                Direction::ContactToResident,
                "Game on Sunday",
                "2026-11-24T01:45:00Z",
                0,
                MessageState::Received { read: true },
            ),
        ],
        Folder::Sent => vec![
            summary(
                4,
                1,
                "Maria Alvarez",
                Direction::ResidentToContact,
                "Sunday",
                "2026-11-23T18:45:00Z",
                0,
                MessageState::Rejected { reason: "Mentions a three-way call (policy 4.2)".into() },
            ),
            summary(
                5,
                1,
                "Maria Alvarez",
                Direction::ResidentToContact,
                "Thank you",
                "2026-11-25T16:00:00Z",
                1,
                MessageState::Queued,
            ),
        ],
        Folder::Drafts => vec![],
    };
    MailboxView { folder, messages, unread: 1 }
}

pub fn message(id: MessageId, with_photo: bool) -> MessageView {
    if id == MessageId::from_u128(4) {
        return MessageView {
            id,
            contact: ContactId(1),
            contact_name: "Maria Alvarez".into(),
            direction: Direction::ResidentToContact,
            subject: "Sunday".into(),
            body: "Can you ask Daniel to join when you call on Sunday?".into(),
            attachments: vec![],
            at: "2026-11-23T18:45:00Z".parse().expect("instant"),
            state: MessageState::Rejected { reason: "Mentions a three-way call (policy 4.2)".into() },
        };
    }
    MessageView {
        id,
        contact: ContactId(1),
        contact_name: "Maria Alvarez".into(),
        direction: Direction::ContactToResident,
        subject: "Happy birthday!".into(),
        body: "Happy birthday! We miss you and we are counting the days. The kids made you a video.".into(),
        attachments: with_photo
            .then_some(Attachment::Photo(PHOTO))
            .into_iter()
            .chain([
                Attachment::ECard(ECardId(2)),
                Attachment::VideoGram { media: VIDEOGRAM, duration_secs: 30 },
            ])
            .collect(),
        at: "2026-11-25T17:05:00Z".parse().expect("instant"),
        state: MessageState::Received { read: true },
    }
}

pub fn ecards() -> Vec<ECardRecord> {
    [
        (1, "Holidays", "Warm wishes"),
        (2, "Birthdays", "Birthday balloons"),
        (3, "Motivational", "Keep going"),
        (4, "Birthdays", "Cake"),
    ]
    .into_iter()
    .map(|(id, category, title)| ECardRecord {
        id: ECardId(id),
        category: category.into(),
        title: title.into(),
    })
    .collect()
}

pub fn shop(offline: bool) -> StampShop {
    StampShop {
        packages: [(1, 1, 50), (2, 5, 225), (3, 10, 400), (4, 40, 1400)]
            .into_iter()
            .map(|(id, stamps, price_cents)| StampPackageRecord { id: PackageId(id), stamps, price_cents })
            .collect(),
        debit_available_cents: 2500,
        freshness: freshness(offline),
    }
}

pub fn stamp_balances(offline: bool) -> StampBalances {
    StampBalances {
        contacts: vec![
            ContactStamps {
                contact: ContactId(1),
                name: "Maria Alvarez".into(),
                available: 3,
                awaiting_payment: 0,
            },
            ContactStamps {
                contact: ContactId(5),
                name: "Kevin Alvarez".into(),
                available: 0,
                awaiting_payment: 0,
            },
        ],
        purchases: vec![],
        debit_available_cents: 2500,
        freshness: freshness(offline),
    }
}

impl CannedEdge {
    pub fn answer(&mut self, request: &TabletRequest) -> EdgeReply {
        use TabletRequest as R;
        let offline = self.offline;
        let answer = match request {
            R::Login { resident, .. } => {
                if !self.login_refusals.is_empty() {
                    return EdgeReply::Refused(self.login_refusals.remove(0));
                }
                TabletResponse::LoggedIn(SessionInfo {
                    resident: resident.clone(),
                    name: "Andre Martin".into(),
                    unit: UnitId::new("A"),
                    session_id: 1,
                })
            }
            R::Logout => TabletResponse::LoggedOut,
            R::Contacts => TabletResponse::Contacts(contacts(offline)),
            R::Hours => TabletResponse::Hours(HoursView {
                time_zone: TZ.into(),
                local_date: "2026-11-25".parse().expect("date"),
                today: vec![window("2026-11-25", "2026-11-25T15:00:00Z", "2026-11-26T06:00:00Z")],
                open_now: self.lockdown.is_none(),
                next_window: Some(window("2026-11-26", "2026-11-26T15:00:00Z", "2026-11-27T06:00:00Z")),
                lockdown: self.lockdown.clone(),
            }),
            R::Balances => TabletResponse::Balances(BalancesView {
                debit_balance_cents: 2500,
                contacts: contacts(offline)
                    .contacts
                    .iter()
                    .map(|c| ContactBalance {
                        contact: c.id,
                        name: c.name.clone(),
                        video_balance_cents: c.video_balance_cents,
                        video_rate_cents_per_min: c.video_rate_cents_per_min,
                    })
                    .collect(),
                freshness: freshness(offline),
            }),
            R::Mailbox { folder } => TabletResponse::Mailbox(mailbox(*folder, self.with_photo)),
            R::ReadMessage { id } => TabletResponse::Message(message(*id, self.with_photo)),
            R::SaveDraft { draft, .. } => {
                TabletResponse::DraftSaved { id: (*draft).unwrap_or_else(|| MessageId::from_u128(50)) }
            }
            R::DeleteDraft { id } => TabletResponse::DraftDeleted { id: *id },
            R::SendMessage { compose, .. } => TabletResponse::MessageQueued(MessageView {
                id: MessageId::from_u128(51),
                contact: compose.contact,
                contact_name: "Maria Alvarez".into(),
                direction: Direction::ResidentToContact,
                subject: compose.subject.clone(),
                body: compose.body.clone(),
                attachments: compose.attachments.clone(),
                at: now(),
                state: if offline { MessageState::Queued } else { MessageState::InReview },
            }),
            R::HideSent { id } => TabletResponse::SentHidden { id: *id },
            R::ECards => TabletResponse::ECards(ecards()),
            R::StampPackages => TabletResponse::StampPackages(shop(offline)),
            R::BuyStamps { contact, package } => {
                let (stamps, price_cents) = shop(offline)
                    .packages
                    .iter()
                    .find(|p| p.id == *package)
                    .map_or((0, 0), |p| (p.stamps, p.price_cents));
                TabletResponse::StampsBought(PurchaseView {
                    key: IdempotencyKey::from_u128(7),
                    contact: *contact,
                    stamps,
                    price_cents,
                    state: if offline { PurchaseState::Queued } else { PurchaseState::Confirmed },
                })
            }
            R::StampBalance => TabletResponse::Stamps(stamp_balances(offline)),
            R::StartCall { .. } => match self.call.take() {
                Some(answer) => answer,
                None => {
                    return EdgeReply::Refused(ApiError::Unavailable { reason: DenyReason::AccountClosed })
                }
            },
            R::HangUp { call_id } => {
                self.events.push(ServerEvent::Call(CallUpdate {
                    call_id: *call_id,
                    state: proto::call::CallState::Ended {
                        reason: proto::call::CallEndReason::ResidentHungUp,
                    },
                }));
                TabletResponse::HungUp { call_id: *call_id }
            }
            R::PlaceCall { .. } => TabletResponse::Call(CallDecision::Denied(DenyReason::AccountClosed)),
            R::Media { media, offset } => {
                let Some((_, content_type, bytes)) = self.media.iter().find(|(m, _, _)| m == media) else {
                    return EdgeReply::Refused(ApiError::MediaNotDownloaded { media: *media });
                };
                let start = usize::try_from(*offset).unwrap_or(usize::MAX).min(bytes.len());
                let end = (start + CHUNK).min(bytes.len());
                TabletResponse::MediaChunk {
                    media: *media,
                    content_type: *content_type,
                    total: bytes.len() as u64,
                    offset: *offset,
                    bytes: bytes[start..end].to_vec(),
                }
            }
        };
        EdgeReply::Answer(answer)
    }
}

impl Edge for CannedEdge {
    fn request(&mut self, request: &TabletRequest) -> EdgeReply {
        self.requests.push(request.clone());
        self.answer(request)
    }

    fn events(&mut self) -> Vec<ServerEvent> {
        std::mem::take(&mut self.events)
    }
}

pub fn call_update(state: proto::call::CallState) -> ServerEvent {
    ServerEvent::Call(CallUpdate { call_id: 77, state })
}

pub fn resident() -> ResidentId {
    ResidentId::new("R1001")
}

pub fn kinds() -> [CallKind; 2] {
    [CallKind::Voice, CallKind::Video]
}

use i_slint_backend_testing::{ElementHandle, ElementQuery};
use tablet_shell::ui::driver::Driver;

/// The first element with this accessible label; panics with the labels on screen otherwise.
pub fn element(driver: &Driver<CannedEdge>, label: &str) -> ElementHandle {
    ElementHandle::find_by_accessible_label(&driver.window, label)
        .next()
        .unwrap_or_else(|| panic!("no element labelled {label:?}; on screen: {:?}", labels(driver)))
}

/// Every visible element with an accessible label.
pub fn labelled(driver: &Driver<CannedEdge>) -> Vec<ElementHandle> {
    ElementQuery::from_root(&driver.window)
        .match_descendants()
        .match_predicate(|e| e.accessible_label().is_some_and(|l| !l.is_empty()))
        .find_all()
}

/// Every visible accessible label in the window.
pub fn labels(driver: &Driver<CannedEdge>) -> Vec<String> {
    labelled(driver).iter().filter_map(|e| e.accessible_label().map(|l| l.to_string())).collect()
}

/// Presses a button by its accessible label, then lets the kiosk answer it.
pub fn press(driver: &mut Driver<CannedEdge>, label: &str) {
    let button = ElementHandle::find_by_accessible_label(&driver.window, label)
        .find(|e| e.accessible_role() == Some(i_slint_backend_testing::AccessibleRole::Button))
        .unwrap_or_else(|| panic!("no button labelled {label:?}; on screen: {:?}", labels(driver)));
    assert_eq!(button.accessible_enabled(), Some(true), "{label:?} is disabled");
    button.invoke_accessible_default_action();
    driver.pump();
}

/// Types the demo resident's ID and PIN on the keypad and logs in.
pub fn log_in(driver: &mut Driver<CannedEdge>, pin: &str) {
    for digit in "1001".chars() {
        press(driver, &format!("Digit {digit}"));
    }
    press(driver, "Next");
    for digit in pin.chars() {
        press(driver, &format!("Digit {digit}"));
    }
    press(driver, "Log in");
}
