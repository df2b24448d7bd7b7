//! proptest strategies for every wire type in `proto`, shared by the
//! integration tests. Written by hand rather than derived so that `proto`
//! itself carries no test-only dependencies, and so that jiff values cover
//! their full range (including negative years and nanoseconds).

#![allow(dead_code)] // each test binary uses a different subset

use jiff::{civil::Date, Timestamp};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use proto::central::*;
use proto::domain::*;
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
        (facility_id(), text())
            .prop_map(|(facility, agent_version)| EdgeToCentral::Hello { facility, agent_version }),
        (facility_id(), any::<u64>(), any::<u32>(), any::<u64>()).prop_map(
            |(facility, since, limit, resync_floor)| {
                EdgeToCentral::Changes { facility, since, limit, resync_floor }
            }
        ),
    ]
}

pub fn central_error() -> impl Strategy<Value = CentralError> {
    prop_oneof![
        facility_id().prop_map(CentralError::UnknownFacility),
        facility_id().prop_map(CentralError::WrongFacility),
        text().prop_map(CentralError::Malformed),
        text().prop_map(CentralError::Unavailable),
    ]
}

pub fn central_to_edge() -> impl Strategy<Value = CentralToEdge> {
    prop_oneof![
        (facility_id(), any::<u64>())
            .prop_map(|(facility, head_cursor)| CentralToEdge::Welcome { facility, head_cursor }),
        change_batch().prop_map(CentralToEdge::Changes),
        any::<(u64, u64)>()
            .prop_map(|(since, oldest_valid)| CentralToEdge::CursorExpired { since, oldest_valid }),
        central_error().prop_map(CentralToEdge::Error),
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
    ]
}

pub fn server_event() -> impl Strategy<Value = ServerEvent> {
    prop_oneof![
        session_end_reason().prop_map(|reason| ServerEvent::SessionEnded { reason }),
        option::of(lockdown_scope()).prop_map(|active| ServerEvent::LockdownChanged { active }),
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
) {
    use TabletRequest as Rq;
    match a { Rq::Login { .. } | Rq::Logout | Rq::Contacts | Rq::Hours | Rq::PlaceCall { .. } | Rq::Balances => {} }
    use TabletResponse as Rs;
    match b {
        Rs::LoggedIn(_) | Rs::LoggedOut | Rs::Contacts(_) | Rs::Hours(_) | Rs::Call(_) | Rs::Balances(_)
        | Rs::Error(_) => {}
    }
    match c {
        ApiError::NotLoggedIn | ApiError::BadCredentials { .. } | ApiError::LockedOut { .. }
        | ApiError::SessionEnded { .. } | ApiError::Malformed(_) | ApiError::Unavailable { .. }
        | ApiError::Internal(_) => {}
    }
    use DenyReason as D;
    match d {
        D::OutsideCallingHours { .. } | D::Lockdown { .. } | D::Suspended { .. } | D::NotApproved { .. }
        | D::NumberBlocked { .. } | D::AccountClosed | D::PrivilegedNumber { .. } | D::BarredNumber { .. }
        | D::NumberNotAuthorized { .. } | D::NoNumber | D::InsufficientBalance { .. } | D::CapReached { .. }
        | D::ResidentInactive | D::UnknownContact { .. } | D::FacilityMisconfigured { .. } => {}
    }
    match e { ServerEvent::SessionEnded { .. } | ServerEvent::LockdownChanged { .. } => {} }
    match f { CallDecision::Allowed { .. } | CallDecision::Denied(_) => {} }
    match g { Availability::Available | Availability::Unavailable(_) => {} }
    match h { EdgeToCentral::Hello { .. } | EdgeToCentral::Changes { .. } => {} }
    use CentralToEdge as C;
    match i { C::Welcome { .. } | C::Changes(_) | C::CursorExpired { .. } | C::Error(_) => {} }
    use Entity as En;
    match j {
        En::Facility(_) | En::Unit(_) | En::Resident(_) | En::Contact(_) | En::Block(_) | En::Privileged(_)
        | En::Suspension(_) | En::CapUsage(_) => {}
    }
    use EntityKey as K;
    match k {
        K::Unit(_) | K::Resident(_) | K::Contact(_) | K::Block(_) | K::Privileged(_) | K::Suspension(_)
        | K::CapUsage { .. } => {}
    }
    match l { Change::Upsert(_) | Change::Delete(_) => {} }
    use CentralError as Ce;
    match m { Ce::UnknownFacility(_) | Ce::WrongFacility(_) | Ce::Malformed(_) | Ce::Unavailable(_) => {} }
    use SessionEndReason as S;
    match n { S::LoggedOut | S::LoggedInElsewhere | S::DeviceDisconnected | S::ResidentInactive => {} }
    match o { LimitedBy::CallLength | LimitedBy::CallingWindow | LimitedBy::Balance | LimitedBy::PeriodicCap => {} }
    match p { Service::Voice | Service::Video | Service::Message => {} }
    match q { Approval::Pending | Approval::Approved | Approval::Rejected => {} }
    match r { AccountStatus::Active | AccountStatus::Closed => {} }
    match s { BlockScope::AllFacilities | BlockScope::Facility(_) => {} }
    match t { LockdownScope::Facility | LockdownScope::Unit(_) => {} }
    match u { CallKind::Voice | CallKind::Video => {} }
}
