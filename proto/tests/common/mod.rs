//! proptest strategies for every wire type in `proto`, shared by the
//! integration tests. Written by hand rather than derived so that `proto`
//! itself carries no test-only dependencies, and so that jiff values cover
//! their full range (including negative years and nanoseconds).

#![allow(dead_code)] // each test binary uses a different subset

use jiff::{civil::Date, Timestamp};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use proto::call::*;
use proto::central::*;
use proto::domain::*;
use proto::messaging::*;
use proto::tablet::*;

/// Short arbitrary Unicode text (any scalar value, including control chars).
pub fn text() -> impl Strategy<Value = String> {
    ".{0,12}"
}

pub fn small_vec<T: std::fmt::Debug>(element: impl Strategy<Value = T>) -> impl Strategy<Value = Vec<T>> {
    vec(element, 0..4)
}

pub fn date() -> impl Strategy<Value = Date> {
    (-9999i16..=9999, 1i8..=12, 1i8..=31).prop_filter_map("no such day", |(y, m, d)| Date::new(y, m, d).ok())
}

pub fn timestamp() -> impl Strategy<Value = Timestamp> {
    (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(), -999_999_999i32..=999_999_999)
        .prop_filter_map("outside jiff's range", |(s, ns)| Timestamp::new(s, ns).ok())
}

pub fn facility_id() -> impl Strategy<Value = FacilityId> {
    text().prop_map(FacilityId)
}
pub fn unit_id() -> impl Strategy<Value = UnitId> {
    text().prop_map(UnitId)
}
pub fn resident_id() -> impl Strategy<Value = ResidentId> {
    text().prop_map(ResidentId)
}
pub fn contact_id() -> impl Strategy<Value = ContactId> {
    any::<u64>().prop_map(ContactId)
}
pub fn phone() -> impl Strategy<Value = PhoneNumber> {
    prop_oneof![r"\+1[0-9]{10}", "[0-9]{3}", text()]
}

pub fn call_kind() -> impl Strategy<Value = CallKind> {
    prop_oneof![Just(CallKind::Voice), Just(CallKind::Video)]
}
pub fn service() -> impl Strategy<Value = Service> {
    prop_oneof![Just(Service::Voice), Just(Service::Video), Just(Service::Message)]
}
pub fn approval() -> impl Strategy<Value = Approval> {
    prop_oneof![Just(Approval::Pending), Just(Approval::Approved), Just(Approval::Rejected)]
}
pub fn approvals() -> impl Strategy<Value = Approvals> {
    (approval(), approval(), approval()).prop_map(|(voice, video, message)| Approvals {
        voice,
        video,
        message,
    })
}
pub fn account_status() -> impl Strategy<Value = AccountStatus> {
    prop_oneof![Just(AccountStatus::Active), Just(AccountStatus::Closed)]
}
pub fn block_scope() -> impl Strategy<Value = BlockScope> {
    prop_oneof![Just(BlockScope::AllFacilities), facility_id().prop_map(BlockScope::Facility)]
}
pub fn lockdown_scope() -> impl Strategy<Value = LockdownScope> {
    prop_oneof![Just(LockdownScope::Facility), unit_id().prop_map(LockdownScope::Unit)]
}

prop_compose! {
    pub fn calling_window()(weekday in any::<u8>(), start_minute in any::<u16>(), end_minute in any::<u16>())
        -> CallingWindow {
        CallingWindow { weekday, start_minute, end_minute }
    }
}
prop_compose! {
    pub fn cap_rule()(kind in call_kind(), minutes in any::<u32>(), period_days in any::<u16>(), anchor in date())
        -> CapRule {
        CapRule { kind, minutes, period_days, anchor }
    }
}
prop_compose! {
    pub fn facility_record()(
        id in facility_id(), name in text(), time_zone in text(),
        limits in any::<(u32, u32, u32, u32, u32, u32)>(),
        caps in small_vec(cap_rule()), barred_prefixes in small_vec(text()),
        legal_call_notice in text(),
    ) -> FacilityRecord {
        let (voice_limit_secs, video_limit_secs, warning_secs, message_char_limit, login_max_failures, login_lockout_secs) = limits;
        FacilityRecord {
            id, name, time_zone, voice_limit_secs, video_limit_secs, warning_secs, caps,
            barred_prefixes, legal_call_notice, message_char_limit, login_max_failures,
            login_lockout_secs,
        }
    }
}
prop_compose! {
    pub fn housing_unit_record()(id in unit_id(), name in text(), schedule in small_vec(calling_window()))
        -> HousingUnitRecord {
        HousingUnitRecord { id, name, schedule }
    }
}
prop_compose! {
    pub fn resident_record()(
        id in resident_id(), name in text(), unit in unit_id(), pin_hash in text(),
        debit_balance_cents in any::<Cents>(), active in any::<bool>(),
    ) -> ResidentRecord {
        ResidentRecord { id, name, unit, pin_hash, debit_balance_cents, active }
    }
}
prop_compose! {
    pub fn contact_record()(
        id in contact_id(), resident in resident_id(), name in text(),
        account_status in account_status(), approvals in approvals(),
        numbers in small_vec(phone()), video_balance_cents in any::<Cents>(),
        video_rate_cents_per_min in any::<u32>(),
    ) -> ContactRecord {
        ContactRecord {
            id, resident, name, account_status, approvals, numbers, video_balance_cents,
            video_rate_cents_per_min,
        }
    }
}
prop_compose! {
    pub fn block_record()(number in phone(), scope in block_scope()) -> BlockRecord {
        BlockRecord { number, scope }
    }
}
prop_compose! {
    pub fn privileged_number_record()(number in phone(), label in text()) -> PrivilegedNumberRecord {
        PrivilegedNumberRecord { number, label }
    }
}
prop_compose! {
    pub fn suspension_record()(
        id in any::<u64>(), resident in resident_id(), services in small_vec(service()),
        ends_on in date(), reason in text(),
    ) -> SuspensionRecord {
        SuspensionRecord { id, resident, services, ends_on, reason }
    }
}
prop_compose! {
    pub fn cap_usage_record()(
        resident in resident_id(), kind in call_kind(), period_start in date(), used_secs in any::<u32>(),
    ) -> CapUsageRecord {
        CapUsageRecord { resident, kind, period_start, used_secs }
    }
}

// ---- messaging ----

/// Message bodies: mostly short, sometimes long enough that the length
/// prefix takes more than one varint byte.
pub fn body_text() -> impl Strategy<Value = String> {
    prop_oneof![3 => text(), 1 => ".{100,300}"]
}

pub fn idempotency_key() -> impl Strategy<Value = IdempotencyKey> {
    any::<[u8; 16]>().prop_map(IdempotencyKey)
}
pub fn message_id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 16]>().prop_map(MessageId)
}
pub fn ecard_id() -> impl Strategy<Value = ECardId> {
    any::<u64>().prop_map(ECardId)
}
pub fn package_id() -> impl Strategy<Value = PackageId> {
    any::<u64>().prop_map(PackageId)
}
pub fn media_id() -> impl Strategy<Value = MediaId> {
    any::<u64>().prop_map(MediaId)
}

pub fn attachment() -> impl Strategy<Value = Attachment> {
    prop_oneof![
        ecard_id().prop_map(Attachment::ECard),
        media_id().prop_map(Attachment::Photo),
        media_id().prop_map(Attachment::SnapNSend),
        (media_id(), any::<u16>())
            .prop_map(|(media, duration_secs)| Attachment::VideoGram { media, duration_secs }),
    ]
}

/// Up to one more attachment than allowed, so the decoder sees over-full
/// lists too (the limit is the edge's to enforce, not the wire's).
pub fn attachments() -> impl Strategy<Value = Vec<Attachment>> {
    vec(attachment(), 0..=MAX_ATTACHMENTS + 1)
}

prop_compose! {
    pub fn compose()(contact in contact_id(), subject in text(), body in body_text(), attachments in attachments())
        -> Compose {
        Compose { contact, subject, body, attachments }
    }
}

pub fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::ResidentToContact), Just(Direction::ContactToResident)]
}

prop_compose! {
    pub fn message()(
        id in message_id(), resident in resident_id(), contact in contact_id(), direction in direction(),
        subject in text(), body in body_text(), attachments in attachments(), sent_at in timestamp(),
    ) -> Message {
        Message { id, resident, contact, direction, subject, body, attachments, sent_at }
    }
}

pub fn review() -> impl Strategy<Value = Review> {
    prop_oneof![
        Just(Review::Pending),
        Just(Review::Approved),
        text().prop_map(|reason| Review::Rejected { reason }),
    ]
}

prop_compose! {
    pub fn mail_record()(message in message(), review in review()) -> MailRecord {
        MailRecord { message, review }
    }
}
prop_compose! {
    pub fn ecard_record()(id in ecard_id(), category in text(), title in text()) -> ECardRecord {
        ECardRecord { id, category, title }
    }
}
prop_compose! {
    pub fn stamp_package_record()(id in package_id(), stamps in any::<u32>(), price_cents in any::<Cents>())
        -> StampPackageRecord {
        StampPackageRecord { id, stamps, price_cents }
    }
}
prop_compose! {
    pub fn stamp_count_record()(resident in resident_id(), contact in contact_id(), stamps in any::<u32>())
        -> StampCountRecord {
        StampCountRecord { resident, contact, stamps }
    }
}
prop_compose! {
    pub fn stamp_purchase()(
        resident in resident_id(), contact in contact_id(), package in package_id(), stamps in any::<u32>(),
        price_cents in any::<Cents>(), bought_at in timestamp(),
    ) -> StampPurchase {
        StampPurchase { resident, contact, package, stamps, price_cents, bought_at }
    }
}
prop_compose! {
    pub fn call_detail_record()(
        resident in resident_id(), contact in contact_id(), kind in call_kind(), number in phone(),
        started_at in timestamp(), connected_secs in any::<u32>(), charged_cents in any::<Cents>(),
    ) -> CallDetailRecord {
        CallDetailRecord { resident, contact, kind, number, started_at, connected_secs, charged_cents }
    }
}
prop_compose! {
    pub fn audit_record()(
        seq in any::<u64>(), at in timestamp(), actor in text(), action in text(), detail in text(),
        prev_hash in any::<[u8; 32]>(), hash in any::<[u8; 32]>(),
    ) -> AuditRecord {
        AuditRecord { seq, at, actor, action, detail, prev_hash, hash }
    }
}

pub fn outbox_body() -> impl Strategy<Value = OutboxBody> {
    prop_oneof![
        (message(), option::of(idempotency_key()))
            .prop_map(|(message, funded_by)| OutboxBody::SendMessage { message, funded_by }),
        stamp_purchase().prop_map(OutboxBody::BuyStamps),
        call_detail_record().prop_map(OutboxBody::CallRecord),
        audit_record().prop_map(OutboxBody::Audit),
    ]
}

prop_compose! {
    pub fn outbox_item()(key in idempotency_key(), created_at in timestamp(), body in outbox_body()) -> OutboxItem {
        OutboxItem { key, created_at, body }
    }
}

pub fn lane() -> impl Strategy<Value = Lane> {
    (resident_id(), contact_id()).prop_map(|(resident, contact)| Lane::Conversation { resident, contact })
}

pub fn refusal_reason() -> impl Strategy<Value = RefusalReason> {
    prop_oneof![
        (any::<Cents>(), any::<Cents>()).prop_map(|(balance_cents, price_cents)| {
            RefusalReason::InsufficientFunds { balance_cents, price_cents }
        }),
        package_id().prop_map(|package| RefusalReason::PackageUnavailable { package }),
        Just(RefusalReason::NoStamps),
        idempotency_key().prop_map(|purchase| RefusalReason::FundingRefused { purchase }),
        (service(), text()).prop_map(|(service, detail)| RefusalReason::NotAllowed { service, detail }),
        Just(RefusalReason::KeyReused),
        text().prop_map(|detail| RefusalReason::Invalid { detail }),
        text().prop_map(|detail| RefusalReason::Unavailable { detail }),
    ]
}

pub fn delivery_outcome() -> impl Strategy<Value = DeliveryOutcome> {
    prop_oneof![
        any::<u64>().prop_map(|applied_at| DeliveryOutcome::Accepted { applied_at }),
        any::<u64>().prop_map(|applied_at| DeliveryOutcome::Duplicate { applied_at }),
        (refusal_reason(), any::<bool>())
            .prop_map(|(reason, permanent)| DeliveryOutcome::Refused { reason, permanent }),
    ]
}

prop_compose! {
    pub fn delivery_ack()(key in idempotency_key(), outcome in delivery_outcome()) -> DeliveryAck {
        DeliveryAck { key, outcome }
    }
}

pub fn text_field() -> impl Strategy<Value = TextField> {
    prop_oneof![Just(TextField::Subject), Just(TextField::Body)]
}

pub fn messaging_error() -> impl Strategy<Value = MessagingError> {
    prop_oneof![
        contact_id().prop_map(|contact| MessagingError::NoStamps { contact }),
        (text_field(), any::<u32>(), any::<u32>())
            .prop_map(|(field, chars, limit)| MessagingError::TooLong { field, chars, limit }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(count, max)| MessagingError::TooManyAttachments { count, max }),
        ecard_id().prop_map(MessagingError::UnknownECard),
        attachment().prop_map(MessagingError::AttachmentNotAllowed),
        (any::<Cents>(), any::<Cents>()).prop_map(|(available_cents, price_cents)| {
            MessagingError::InsufficientFunds { available_cents, price_cents }
        }),
        approval().prop_map(|status| MessagingError::ContactNotApproved { status }),
        contact_id().prop_map(|contact| MessagingError::UnknownContact { contact }),
        deny_reason().prop_map(MessagingError::NotAllowed),
        package_id().prop_map(MessagingError::UnknownPackage),
        message_id().prop_map(MessagingError::UnknownDraft),
        Just(MessagingError::Empty),
    ]
}

// ---- central ----

pub fn entity() -> impl Strategy<Value = Entity> {
    prop_oneof![
        facility_record().prop_map(Entity::Facility),
        housing_unit_record().prop_map(Entity::Unit),
        resident_record().prop_map(Entity::Resident),
        contact_record().prop_map(Entity::Contact),
        block_record().prop_map(Entity::Block),
        privileged_number_record().prop_map(Entity::Privileged),
        suspension_record().prop_map(Entity::Suspension),
        cap_usage_record().prop_map(Entity::CapUsage),
        ecard_record().prop_map(Entity::ECard),
        stamp_package_record().prop_map(Entity::StampPackage),
        stamp_count_record().prop_map(Entity::StampCount),
        mail_record().prop_map(Entity::Mail),
    ]
}

pub fn entity_key() -> impl Strategy<Value = EntityKey> {
    prop_oneof![
        unit_id().prop_map(EntityKey::Unit),
        resident_id().prop_map(EntityKey::Resident),
        contact_id().prop_map(EntityKey::Contact),
        block_record().prop_map(EntityKey::Block),
        phone().prop_map(EntityKey::Privileged),
        any::<u64>().prop_map(EntityKey::Suspension),
        (resident_id(), call_kind(), date()).prop_map(|(resident, kind, period_start)| {
            EntityKey::CapUsage { resident, kind, period_start }
        }),
        ecard_id().prop_map(EntityKey::ECard),
        package_id().prop_map(EntityKey::StampPackage),
        (resident_id(), contact_id())
            .prop_map(|(resident, contact)| EntityKey::StampCount { resident, contact }),
        message_id().prop_map(EntityKey::Mail),
    ]
}

pub fn change() -> impl Strategy<Value = Change> {
    prop_oneof![entity().prop_map(Change::Upsert), entity_key().prop_map(Change::Delete)]
}

prop_compose! {
    pub fn change_batch()(since in any::<u64>(), changes in small_vec(change()), next_cursor in any::<u64>(), more in any::<bool>())
        -> ChangeBatch {
        ChangeBatch { since, changes, next_cursor, more }
    }
}

pub fn edge_to_central() -> impl Strategy<Value = EdgeToCentral> {
    prop_oneof![
        (facility_id(), text(), option::of(running_image())).prop_map(
            |(facility, agent_version, running)| {
                EdgeToCentral::Hello { facility, agent_version, running }
            }
        ),
        (facility_id(), any::<u64>(), any::<u32>(), any::<u64>()).prop_map(
            |(facility, since, limit, resync_floor)| {
                EdgeToCentral::Changes { facility, since, limit, resync_floor }
            }
        ),
        (facility_id(), small_vec(outbox_item()))
            .prop_map(|(facility, items)| EdgeToCentral::Deliver { facility, items }),
        (facility_id(), text(), any::<u64>(), any::<u32>()).prop_map(|(facility, version, offset, len)| {
            EdgeToCentral::FetchRelease { facility, version, offset, len }
        }),
        (facility_id(), any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
            |(facility, media, offset, len)| {
                EdgeToCentral::FetchMedia { facility, media: MediaId(media), offset, len }
            }
        ),
        (
            (facility_id(), any::<u64>(), resident_id(), text(), contact_id()),
            (call_kind(), phone(), any::<u32>(), any::<u32>(), any::<Cents>())
        )
            .prop_map(
                |(
                    (facility, call_id, resident, caller_name, contact),
                    (kind, number, max_duration_secs, rate_cents_per_min, balance_cents),
                )| EdgeToCentral::RingContact {
                    facility,
                    call_id,
                    resident,
                    caller_name,
                    contact,
                    kind,
                    number,
                    max_duration_secs,
                    rate_cents_per_min,
                    balance_cents,
                }
            ),
        (facility_id(), small_vec(any::<u64>()))
            .prop_map(|(facility, call_ids)| EdgeToCentral::CallStatus { facility, call_ids }),
        (facility_id(), any::<u64>(), call_end_reason())
            .prop_map(|(facility, call_id, reason)| EdgeToCentral::EndCall { facility, call_id, reason }),
        (facility_id(), any::<u64>(), any::<u32>()).prop_map(|(facility, call_id, remaining_secs)| {
            EdgeToCentral::WarnCall { facility, call_id, remaining_secs }
        }),
    ]
}

pub fn call_end_reason() -> impl Strategy<Value = CallEndReason> {
    prop_oneof![
        Just(CallEndReason::DidNotAnswer),
        Just(CallEndReason::TimeLimit),
        Just(CallEndReason::ResidentHungUp),
        Just(CallEndReason::ContactHungUp),
        Just(CallEndReason::Lockdown),
        Just(CallEndReason::Suspended),
        Just(CallEndReason::Blocked),
        Just(CallEndReason::AccountClosed),
        Just(CallEndReason::ConnectionLost),
        Just(CallEndReason::EdgeShutdown),
        Just(CallEndReason::EdgeRestarted),
    ]
}

pub fn call_state() -> impl Strategy<Value = CallState> {
    prop_oneof![
        Just(CallState::Ringing),
        any::<u32>().prop_map(|limit_secs| CallState::Connected { limit_secs }),
        any::<u32>().prop_map(|remaining_secs| CallState::Warned { remaining_secs }),
        call_end_reason().prop_map(|reason| CallState::Ended { reason }),
    ]
}

pub fn contact_event() -> impl Strategy<Value = ContactEvent> {
    prop_oneof![Just(ContactEvent::Answered), Just(ContactEvent::Declined), Just(ContactEvent::HungUp)]
}

prop_compose! {
    pub fn running_image()(version in text(), slot in text(), on_trial in any::<bool>(),
                           last_update_failure in option::of(text())) -> RunningImage {
        RunningImage { version, slot, on_trial, last_update_failure }
    }
}

prop_compose! {
    pub fn release_offer()(version in text(), size in any::<u64>(), sha256 in any::<[u8; 32]>()) -> ReleaseOffer {
        ReleaseOffer { version, size, sha256 }
    }
}

pub fn central_error() -> impl Strategy<Value = CentralError> {
    prop_oneof![
        facility_id().prop_map(CentralError::UnknownFacility),
        facility_id().prop_map(CentralError::WrongFacility),
        text().prop_map(CentralError::Malformed),
        text().prop_map(CentralError::Unavailable),
        text().prop_map(CentralError::UnknownRelease),
        any::<u64>().prop_map(|m| CentralError::UnknownMedia(MediaId(m))),
    ]
}

pub fn media_type() -> impl Strategy<Value = MediaType> {
    prop_oneof![Just(MediaType::Png), Just(MediaType::Jpeg), Just(MediaType::WebmVp8)]
}

pub fn media_info() -> impl Strategy<Value = MediaInfo> {
    (any::<u64>(), any::<[u8; 32]>(), media_type()).prop_map(|(size, sha256, content_type)| MediaInfo {
        size,
        sha256,
        content_type,
    })
}

pub fn central_to_edge() -> impl Strategy<Value = CentralToEdge> {
    prop_oneof![
        (facility_id(), any::<u64>(), option::of(release_offer())).prop_map(
            |(facility, head_cursor, release)| CentralToEdge::Welcome { facility, head_cursor, release }
        ),
        change_batch().prop_map(CentralToEdge::Changes),
        any::<(u64, u64)>()
            .prop_map(|(since, oldest_valid)| CentralToEdge::CursorExpired { since, oldest_valid }),
        central_error().prop_map(CentralToEdge::Error),
        small_vec(delivery_ack()).prop_map(|acks| CentralToEdge::Delivered { acks }),
        (text(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(version, offset, bytes)| CentralToEdge::ReleaseChunk { version, offset, bytes }),
        any::<u64>().prop_map(|call_id| CentralToEdge::Ringing { call_id }),
        (any::<u64>(), media_info(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(
            |(media, info, offset, bytes)| CentralToEdge::MediaChunk {
                media: MediaId(media),
                info,
                offset,
                bytes
            }
        ),
        small_vec(
            (any::<u64>(), contact_event()).prop_map(|(call_id, event)| ContactCallEvent { call_id, event })
        )
        .prop_map(|events| CentralToEdge::CallEvents { events }),
        any::<u64>().prop_map(|call_id| CentralToEdge::CallEnded { call_id }),
        any::<u64>().prop_map(|call_id| CentralToEdge::CallWarned { call_id }),
    ]
}

// ---- tablet ----

pub fn tablet_request() -> impl Strategy<Value = TabletRequest> {
    prop_oneof![
        (resident_id(), text()).prop_map(|(resident, pin)| TabletRequest::Login { resident, pin }),
        Just(TabletRequest::Logout),
        Just(TabletRequest::Contacts),
        Just(TabletRequest::Hours),
        (contact_id(), call_kind(), option::of(phone()))
            .prop_map(|(contact, kind, number)| { TabletRequest::PlaceCall { contact, kind, number } }),
        Just(TabletRequest::Balances),
        folder().prop_map(|folder| TabletRequest::Mailbox { folder }),
        message_id().prop_map(|id| TabletRequest::ReadMessage { id }),
        (option::of(message_id()), compose())
            .prop_map(|(draft, compose)| TabletRequest::SaveDraft { draft, compose }),
        message_id().prop_map(|id| TabletRequest::DeleteDraft { id }),
        (option::of(message_id()), compose())
            .prop_map(|(draft, compose)| TabletRequest::SendMessage { draft, compose }),
        message_id().prop_map(|id| TabletRequest::HideSent { id }),
        Just(TabletRequest::ECards),
        Just(TabletRequest::StampPackages),
        (contact_id(), package_id())
            .prop_map(|(contact, package)| TabletRequest::BuyStamps { contact, package }),
        Just(TabletRequest::StampBalance),
        (contact_id(), call_kind(), option::of(phone()))
            .prop_map(|(contact, kind, number)| { TabletRequest::StartCall { contact, kind, number } }),
        any::<u64>().prop_map(|call_id| TabletRequest::HangUp { call_id }),
        any::<(u64, u64)>()
            .prop_map(|(media, offset)| TabletRequest::Media { media: MediaId(media), offset }),
    ]
}

prop_compose! {
    pub fn freshness()(uplink_up in any::<bool>(), cache_age_secs in option::of(any::<u64>())) -> Freshness {
        Freshness { uplink_up, cache_age_secs }
    }
}
prop_compose! {
    pub fn session_info()(resident in resident_id(), name in text(), unit in unit_id(), session_id in any::<u64>())
        -> SessionInfo {
        SessionInfo { resident, name, unit, session_id }
    }
}
prop_compose! {
    pub fn window_view()(
        starts_at in timestamp(), ends_at in timestamp(), local_start in text(), local_end in text(),
        local_date in date(),
    ) -> WindowView {
        WindowView { starts_at, ends_at, local_start, local_end, local_date }
    }
}

pub fn deny_reason() -> impl Strategy<Value = DenyReason> {
    prop_oneof![
        option::of(window_view()).prop_map(|next_window| DenyReason::OutsideCallingHours { next_window }),
        lockdown_scope().prop_map(|scope| DenyReason::Lockdown { scope }),
        (small_vec(service()), date(), text())
            .prop_map(|(services, ends_on, reason)| { DenyReason::Suspended { services, ends_on, reason } }),
        (service(), approval()).prop_map(|(service, status)| DenyReason::NotApproved { service, status }),
        (phone(), block_scope()).prop_map(|(number, scope)| DenyReason::NumberBlocked { number, scope }),
        Just(DenyReason::AccountClosed),
        text().prop_map(|notice| DenyReason::PrivilegedNumber { notice }),
        phone().prop_map(|number| DenyReason::BarredNumber { number }),
        phone().prop_map(|number| DenyReason::NumberNotAuthorized { number }),
        Just(DenyReason::NoNumber),
        (any::<Cents>(), any::<u32>()).prop_map(|(balance_cents, rate_cents_per_min)| {
            DenyReason::InsufficientBalance { balance_cents, rate_cents_per_min }
        }),
        (call_kind(), date()).prop_map(|(kind, resets_on)| DenyReason::CapReached { kind, resets_on }),
        Just(DenyReason::ResidentInactive),
        contact_id().prop_map(|contact| DenyReason::UnknownContact { contact }),
        text().prop_map(|detail| DenyReason::FacilityMisconfigured { detail }),
    ]
}

pub fn availability() -> impl Strategy<Value = Availability> {
    prop_oneof![Just(Availability::Available), deny_reason().prop_map(Availability::Unavailable)]
}

prop_compose! {
    pub fn contact_view()(
        id in contact_id(), name in text(), numbers in small_vec(phone()),
        voice in availability(), video in availability(), message in availability(),
        video_balance_cents in any::<Cents>(), video_rate_cents_per_min in any::<u32>(),
    ) -> ContactView {
        ContactView { id, name, numbers, voice, video, message, video_balance_cents, video_rate_cents_per_min }
    }
}
prop_compose! {
    pub fn contact_list()(contacts in small_vec(contact_view()), freshness in freshness()) -> ContactList {
        ContactList { contacts, freshness }
    }
}
prop_compose! {
    pub fn hours_view()(
        time_zone in text(), local_date in date(), today in small_vec(window_view()),
        open_now in any::<bool>(), next_window in option::of(window_view()),
        lockdown in option::of(lockdown_scope()),
    ) -> HoursView {
        HoursView { time_zone, local_date, today, open_now, next_window, lockdown }
    }
}

pub fn limited_by() -> impl Strategy<Value = LimitedBy> {
    prop_oneof![
        Just(LimitedBy::CallLength),
        Just(LimitedBy::CallingWindow),
        Just(LimitedBy::Balance),
        Just(LimitedBy::PeriodicCap),
    ]
}

pub fn call_decision() -> impl Strategy<Value = CallDecision> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), limited_by()).prop_map(
            |(max_duration_secs, warn_at_secs, limited_by)| {
                CallDecision::Allowed { max_duration_secs, warn_at_secs, limited_by }
            }
        ),
        deny_reason().prop_map(CallDecision::Denied),
    ]
}

prop_compose! {
    pub fn contact_balance()(
        contact in contact_id(), name in text(), video_balance_cents in any::<Cents>(),
        video_rate_cents_per_min in any::<u32>(),
    ) -> ContactBalance {
        ContactBalance { contact, name, video_balance_cents, video_rate_cents_per_min }
    }
}
prop_compose! {
    pub fn balances_view()(
        debit_balance_cents in any::<Cents>(), contacts in small_vec(contact_balance()), freshness in freshness(),
    ) -> BalancesView {
        BalancesView { debit_balance_cents, contacts, freshness }
    }
}

pub fn folder() -> impl Strategy<Value = Folder> {
    prop_oneof![Just(Folder::Inbox), Just(Folder::Sent), Just(Folder::Drafts)]
}

pub fn message_state() -> impl Strategy<Value = MessageState> {
    prop_oneof![
        Just(MessageState::Draft),
        Just(MessageState::Queued),
        refusal_reason().prop_map(|reason| MessageState::PaymentFailed { reason }),
        refusal_reason().prop_map(|reason| MessageState::Refused { reason }),
        Just(MessageState::InReview),
        Just(MessageState::Approved),
        text().prop_map(|reason| MessageState::Rejected { reason }),
        any::<bool>().prop_map(|read| MessageState::Received { read }),
    ]
}

prop_compose! {
    pub fn message_summary()(
        id in message_id(), contact in contact_id(), contact_name in text(), direction in direction(),
        subject in text(), at in timestamp(), attachments in any::<u32>(), state in message_state(),
    ) -> MessageSummary {
        MessageSummary { id, contact, contact_name, direction, subject, at, attachments, state }
    }
}
prop_compose! {
    pub fn mailbox_view()(folder in folder(), messages in small_vec(message_summary()), unread in any::<u32>())
        -> MailboxView {
        MailboxView { folder, messages, unread }
    }
}
prop_compose! {
    pub fn message_view()(
        id in message_id(), contact in contact_id(), contact_name in text(), direction in direction(),
        subject in text(), body in body_text(), attachments in attachments(), at in timestamp(),
        state in message_state(),
    ) -> MessageView {
        MessageView { id, contact, contact_name, direction, subject, body, attachments, at, state }
    }
}
prop_compose! {
    pub fn stamp_shop()(
        packages in small_vec(stamp_package_record()), debit_available_cents in any::<Cents>(),
        freshness in freshness(),
    ) -> StampShop {
        StampShop { packages, debit_available_cents, freshness }
    }
}

pub fn purchase_state() -> impl Strategy<Value = PurchaseState> {
    prop_oneof![
        Just(PurchaseState::Queued),
        Just(PurchaseState::Confirmed),
        refusal_reason().prop_map(|reason| PurchaseState::PaymentFailed { reason }),
    ]
}

prop_compose! {
    pub fn purchase_view()(
        key in idempotency_key(), contact in contact_id(), stamps in any::<u32>(), price_cents in any::<Cents>(),
        state in purchase_state(),
    ) -> PurchaseView {
        PurchaseView { key, contact, stamps, price_cents, state }
    }
}
prop_compose! {
    pub fn contact_stamps()(
        contact in contact_id(), name in text(), available in any::<u32>(), awaiting_payment in any::<u32>(),
    ) -> ContactStamps {
        ContactStamps { contact, name, available, awaiting_payment }
    }
}
prop_compose! {
    pub fn stamp_balances()(
        contacts in small_vec(contact_stamps()), purchases in small_vec(purchase_view()),
        debit_available_cents in any::<Cents>(), freshness in freshness(),
    ) -> StampBalances {
        StampBalances { contacts, purchases, debit_available_cents, freshness }
    }
}

pub fn session_end_reason() -> impl Strategy<Value = SessionEndReason> {
    prop_oneof![
        Just(SessionEndReason::LoggedOut),
        Just(SessionEndReason::LoggedInElsewhere),
        Just(SessionEndReason::DeviceDisconnected),
        Just(SessionEndReason::ResidentInactive),
    ]
}

pub fn api_error() -> impl Strategy<Value = ApiError> {
    prop_oneof![
        Just(ApiError::NotLoggedIn),
        any::<u32>().prop_map(|remaining_attempts| ApiError::BadCredentials { remaining_attempts }),
        timestamp().prop_map(|until| ApiError::LockedOut { until }),
        session_end_reason().prop_map(|reason| ApiError::SessionEnded { reason }),
        text().prop_map(ApiError::Malformed),
        deny_reason().prop_map(|reason| ApiError::Unavailable { reason }),
        text().prop_map(ApiError::Internal),
        messaging_error().prop_map(ApiError::Messaging),
        any::<u64>().prop_map(|call_id| ApiError::CallInProgress { call_id }),
        any::<u64>().prop_map(|call_id| ApiError::UnknownCall { call_id }),
        any::<u64>().prop_map(|media| ApiError::UnknownMedia { media: MediaId(media) }),
        any::<u64>().prop_map(|media| ApiError::MediaNotDownloaded { media: MediaId(media) }),
    ]
}

pub fn tablet_response() -> impl Strategy<Value = TabletResponse> {
    prop_oneof![
        session_info().prop_map(TabletResponse::LoggedIn),
        Just(TabletResponse::LoggedOut),
        contact_list().prop_map(TabletResponse::Contacts),
        hours_view().prop_map(TabletResponse::Hours),
        call_decision().prop_map(TabletResponse::Call),
        balances_view().prop_map(TabletResponse::Balances),
        api_error().prop_map(TabletResponse::Error),
        mailbox_view().prop_map(TabletResponse::Mailbox),
        message_view().prop_map(TabletResponse::Message),
        message_id().prop_map(|id| TabletResponse::DraftSaved { id }),
        message_id().prop_map(|id| TabletResponse::DraftDeleted { id }),
        message_view().prop_map(TabletResponse::MessageQueued),
        message_id().prop_map(|id| TabletResponse::SentHidden { id }),
        small_vec(ecard_record()).prop_map(TabletResponse::ECards),
        stamp_shop().prop_map(TabletResponse::StampPackages),
        purchase_view().prop_map(TabletResponse::StampsBought),
        stamp_balances().prop_map(TabletResponse::Stamps),
        (any::<(u64, u32, u32)>(), proptest::option::of((".{0,40}", ".{0,40}"))).prop_map(
            |((call_id, max_duration_secs, warn_at_secs), media)| TabletResponse::CallStarted {
                call_id,
                max_duration_secs,
                warn_at_secs,
                media: media.map(|(publish, subscribe)| proto::call::CallMedia { publish, subscribe }),
            }
        ),
        any::<u64>().prop_map(|call_id| TabletResponse::HungUp { call_id }),
        (any::<u64>(), media_type(), any::<(u64, u64)>(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(media, content_type, (total, offset), bytes)| TabletResponse::MediaChunk {
                media: MediaId(media),
                content_type,
                total,
                offset,
                bytes
            }),
    ]
}

pub fn server_event() -> impl Strategy<Value = ServerEvent> {
    prop_oneof![
        session_end_reason().prop_map(|reason| ServerEvent::SessionEnded { reason }),
        option::of(lockdown_scope()).prop_map(|active| ServerEvent::LockdownChanged { active }),
        (message_id(), any::<u32>()).prop_map(|(id, unread)| ServerEvent::MailChanged { id, unread }),
        (any::<u64>(), call_state())
            .prop_map(|(call_id, state)| ServerEvent::Call(CallUpdate { call_id, state })),
    ]
}

/// Test config whose failures are kept next to the test source (the default
/// looks for lib.rs, which integration tests do not have).
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource(
            "regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Fails to compile when a variant is added to a wire enum, as a reminder to
/// give it a strategy above. Never called.
#[rustfmt::skip]
#[allow(clippy::too_many_arguments)]
pub fn every_variant_has_a_strategy(
    a: &TabletRequest, b: &TabletResponse, c: &ApiError, d: &DenyReason, e: &ServerEvent,
    f: &CallDecision, g: &Availability, h: &EdgeToCentral, i: &CentralToEdge, j: &Entity,
    k: &EntityKey, l: &Change, m: &CentralError, n: &SessionEndReason, o: &LimitedBy,
    p: &Service, q: &Approval, r: &AccountStatus, s: &BlockScope, t: &LockdownScope, u: &CallKind,
    messaging: (&Attachment, &Direction, &Review, &OutboxBody, &Lane, &RefusalReason, &DeliveryOutcome,
        &TextField, &MessagingError),
    mail_views: (&Folder, &MessageState, &PurchaseState),
) {
    use TabletRequest as Rq;
    match a {
        Rq::Login { .. } | Rq::Logout | Rq::Contacts | Rq::Hours | Rq::PlaceCall { .. } | Rq::Balances
        | Rq::Mailbox { .. } | Rq::ReadMessage { .. } | Rq::SaveDraft { .. } | Rq::DeleteDraft { .. }
        | Rq::SendMessage { .. } | Rq::HideSent { .. } | Rq::ECards | Rq::StampPackages
        | Rq::BuyStamps { .. } | Rq::StampBalance | Rq::StartCall { .. } | Rq::HangUp { .. }
        | Rq::Media { .. } => {}
    }
    use TabletResponse as Rs;
    match b {
        Rs::LoggedIn(_) | Rs::LoggedOut | Rs::Contacts(_) | Rs::Hours(_) | Rs::Call(_) | Rs::Balances(_)
        | Rs::Error(_) | Rs::Mailbox(_) | Rs::Message(_) | Rs::DraftSaved { .. } | Rs::DraftDeleted { .. }
        | Rs::MessageQueued(_) | Rs::SentHidden { .. } | Rs::ECards(_) | Rs::StampPackages(_)
        | Rs::StampsBought(_) | Rs::Stamps(_) | Rs::CallStarted { .. } | Rs::HungUp { .. }
        | Rs::MediaChunk { .. } => {}
    }
    match c {
        ApiError::NotLoggedIn | ApiError::BadCredentials { .. } | ApiError::LockedOut { .. }
        | ApiError::SessionEnded { .. } | ApiError::Malformed(_) | ApiError::Unavailable { .. }
        | ApiError::Internal(_) | ApiError::Messaging(_) | ApiError::CallInProgress { .. }
        | ApiError::UnknownCall { .. } | ApiError::UnknownMedia { .. }
        | ApiError::MediaNotDownloaded { .. } => {}
    }
    use DenyReason as D;
    match d {
        D::OutsideCallingHours { .. } | D::Lockdown { .. } | D::Suspended { .. } | D::NotApproved { .. }
        | D::NumberBlocked { .. } | D::AccountClosed | D::PrivilegedNumber { .. } | D::BarredNumber { .. }
        | D::NumberNotAuthorized { .. } | D::NoNumber | D::InsufficientBalance { .. } | D::CapReached { .. }
        | D::ResidentInactive | D::UnknownContact { .. } | D::FacilityMisconfigured { .. } => {}
    }
    match e {
        ServerEvent::SessionEnded { .. } | ServerEvent::LockdownChanged { .. } | ServerEvent::MailChanged { .. }
        | ServerEvent::Call(_) => {}
    }
    match f { CallDecision::Allowed { .. } | CallDecision::Denied(_) => {} }
    match g { Availability::Available | Availability::Unavailable(_) => {} }
    use EdgeToCentral as Ec;
    match h {
        Ec::Hello { .. } | Ec::Changes { .. } | Ec::Deliver { .. } | Ec::FetchRelease { .. }
        | Ec::RingContact { .. } | Ec::CallStatus { .. } | Ec::EndCall { .. } | Ec::WarnCall { .. }
        | Ec::FetchMedia { .. } => {}
    }
    use CentralToEdge as C;
    match i {
        C::Welcome { .. } | C::Changes(_) | C::CursorExpired { .. } | C::Error(_) | C::Delivered { .. }
        | C::ReleaseChunk { .. } | C::Ringing { .. } | C::CallEvents { .. } | C::CallEnded { .. }
        | C::CallWarned { .. } | C::MediaChunk { .. } => {}
    }
    use Entity as En;
    match j {
        En::Facility(_) | En::Unit(_) | En::Resident(_) | En::Contact(_) | En::Block(_) | En::Privileged(_)
        | En::Suspension(_) | En::CapUsage(_) | En::ECard(_) | En::StampPackage(_) | En::StampCount(_)
        | En::Mail(_) => {}
    }
    use EntityKey as K;
    match k {
        K::Unit(_) | K::Resident(_) | K::Contact(_) | K::Block(_) | K::Privileged(_) | K::Suspension(_)
        | K::CapUsage { .. } | K::ECard(_) | K::StampPackage(_) | K::StampCount { .. } | K::Mail(_) => {}
    }
    match l { Change::Upsert(_) | Change::Delete(_) => {} }
    use CentralError as Ce;
    match m {
        Ce::UnknownFacility(_) | Ce::WrongFacility(_) | Ce::Malformed(_) | Ce::Unavailable(_)
        | Ce::UnknownRelease(_) | Ce::UnknownMedia(_) => {}
    }
    use SessionEndReason as S;
    match n { S::LoggedOut | S::LoggedInElsewhere | S::DeviceDisconnected | S::ResidentInactive => {} }
    match o { LimitedBy::CallLength | LimitedBy::CallingWindow | LimitedBy::Balance | LimitedBy::PeriodicCap => {} }
    match p { Service::Voice | Service::Video | Service::Message => {} }
    match q { Approval::Pending | Approval::Approved | Approval::Rejected => {} }
    match r { AccountStatus::Active | AccountStatus::Closed => {} }
    match s { BlockScope::AllFacilities | BlockScope::Facility(_) => {} }
    match t { LockdownScope::Facility | LockdownScope::Unit(_) => {} }
    match u { CallKind::Voice | CallKind::Video => {} }

    let (attachment, direction, review, outbox_body, lane, refusal, outcome, text_field, messaging_error) =
        messaging;
    use Attachment as At;
    match attachment { At::ECard(_) | At::Photo(_) | At::SnapNSend(_) | At::VideoGram { .. } => {} }
    match direction { Direction::ResidentToContact | Direction::ContactToResident => {} }
    match review { Review::Pending | Review::Approved | Review::Rejected { .. } => {} }
    use OutboxBody as Ob;
    match outbox_body { Ob::SendMessage { .. } | Ob::BuyStamps(_) | Ob::CallRecord(_) | Ob::Audit(_) => {} }
    match lane { Lane::Conversation { .. } => {} }
    use RefusalReason as Rr;
    match refusal {
        Rr::InsufficientFunds { .. } | Rr::PackageUnavailable { .. } | Rr::NoStamps | Rr::FundingRefused { .. }
        | Rr::NotAllowed { .. } | Rr::KeyReused | Rr::Invalid { .. } | Rr::Unavailable { .. } => {}
    }
    use DeliveryOutcome as Do;
    match outcome { Do::Accepted { .. } | Do::Duplicate { .. } | Do::Refused { .. } => {} }
    match text_field { TextField::Subject | TextField::Body => {} }
    use MessagingError as Me;
    match messaging_error {
        Me::NoStamps { .. } | Me::TooLong { .. } | Me::TooManyAttachments { .. } | Me::UnknownECard(_)
        | Me::AttachmentNotAllowed(_) | Me::InsufficientFunds { .. } | Me::ContactNotApproved { .. }
        | Me::UnknownContact { .. } | Me::NotAllowed(_) | Me::UnknownPackage(_) | Me::UnknownDraft(_)
        | Me::Empty => {}
    }

    let (folder, message_state, purchase_state) = mail_views;
    match folder { Folder::Inbox | Folder::Sent | Folder::Drafts => {} }
    use MessageState as Ms;
    match message_state {
        Ms::Draft | Ms::Queued | Ms::PaymentFailed { .. } | Ms::Refused { .. } | Ms::InReview | Ms::Approved
        | Ms::Rejected { .. } | Ms::Received { .. } => {}
    }
    use PurchaseState as Ps;
    match purchase_state { Ps::Queued | Ps::Confirmed | Ps::PaymentFailed { .. } => {} }
}

/// The call vocabulary's enums (issue 5), same reminder as above.
#[rustfmt::skip]
pub fn every_call_variant_has_a_strategy(a: &CallEndReason, b: &CallState, c: &ContactEvent) {
    use CallEndReason as R;
    match a {
        R::DidNotAnswer | R::TimeLimit | R::ResidentHungUp | R::ContactHungUp | R::Lockdown | R::Suspended
        | R::Blocked | R::AccountClosed | R::ConnectionLost | R::EdgeShutdown | R::EdgeRestarted => {}
    }
    match b { CallState::Ringing | CallState::Connected { .. } | CallState::Warned { .. } | CallState::Ended { .. } => {} }
    match c { ContactEvent::Answered | ContactEvent::Declined | ContactEvent::HungUp => {} }
}
