//! May this call happen, and for how long?
//!
//! Owns: the communication rules of `shared/domain/rules.md` as pure
//! functions of a [`Directory`], the staff [`Lockdowns`] and the current
//! instant. Every refusal is a typed [`DenyReason`] the tablet can show.
//!
//! Must not: read a clock, touch the store, or remember anything between
//! calls. The shell passes `now` in and re-asks when anything changes (a
//! lockdown, a sync batch), which is how ongoing calls learn of a lockdown.
//!
//! # Order of checks
//!
//! The first failing check wins, so a resident always sees the most basic
//! reason first and nothing about a number is revealed before the
//! privileged-number check has had its say:
//!
//! 1. facility missing or its time zone unusable -> `FacilityMisconfigured`
//! 2. resident unknown or inactive -> `ResidentInactive`
//! 3. contact unknown or another resident's -> `UnknownContact`
//! 4. lockdown of the facility, then of the resident's unit -> `Lockdown`
//! 5. a suspension covering the service in force -> `Suspended`
//! 6. contact account closed -> `AccountClosed`
//! 7. contact not approved for the service -> `NotApproved`
//! 8. the number (voice: the dialled or primary number; video: the primary):
//!    none to dial (voice) -> `NoNumber`; privileged -> `PrivilegedNumber`;
//!    barred (voice) -> `BarredNumber`; not one of the contact's numbers
//!    (voice) -> `NumberNotAuthorized`; blocked here or everywhere ->
//!    `NumberBlocked`
//! 9. video balance cannot pay one minute -> `InsufficientBalance`
//! 10. outside the unit's calling hours, or fewer than the warning seconds
//!     left in the window -> `OutsideCallingHours`
//! 11. periodic cap for the kind has fewer than the warning seconds left ->
//!     `CapReached`
//!
//! # How long
//!
//! An allowed call lasts at most the smallest of: the facility's limit for
//! the kind, the seconds to the end of the calling window, the whole minutes
//! the video balance pays for (charging is per started minute), and the
//! remaining periodic cap. On a tie the earlier of CallLength, CallingWindow,
//! Balance, PeriodicCap is reported, so the resident hears about the rule
//! that applies to everyone before the one that is personal.
//!
//! # Time
//!
//! Calling windows and suspensions are local wall-clock rules. Local times
//! become instants through the facility's time zone with jiff's compatible
//! disambiguation (a time in a spring-forward gap moves later, a time in a
//! fall-back fold takes the first occurrence), so a DST change never opens or
//! closes a window at the wrong wall-clock time; the window simply holds
//! more or fewer real seconds that day.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proto::domain::{
    AccountStatus, Approval, CallKind, CallingWindow, ContactId, ContactRecord, FacilityRecord,
    LockdownScope, PhoneNumber, ResidentId, ResidentRecord, Service, UnitId,
};
use proto::tablet::{Availability, CallDecision, DenyReason, HoursView, LimitedBy, WindowView};

use crate::directory::{Directory, FacilityError, Lockdowns};

/// A resident asks to call one of their contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    pub resident: ResidentId,
    pub contact: ContactId,
    pub kind: CallKind,
    /// The number to dial; `None` means the contact's primary number. Video
    /// calls ignore it: they are checked against the primary number.
    pub number: Option<PhoneNumber>,
}

/// Decides whether a call may be placed now, and for how long. See the
/// module docs for the order of checks.
pub fn decide_call(
    dir: &Directory,
    lockdowns: &Lockdowns,
    req: &CallRequest,
    now: Timestamp,
) -> CallDecision {
    let contact = dir.contact(req.contact).ok_or(req.contact);
    match decide(dir, lockdowns, &req.resident, contact, req.kind, req.number.as_deref(), now) {
        Ok(allowed) => allowed,
        Err(reason) => CallDecision::Denied(reason),
    }
}

/// Whether `contact` can be used for `service` right now, for the contact
/// list.
///
/// Voice and video answer exactly what [`decide_call`] would for the
/// contact's primary number. Messaging needs only an active resident, an
/// open account, message approval and no message suspension: a lockdown does
/// not stop messaging (messages are reviewed before delivery anyway), and
/// calling hours, balances and caps are about calls.
pub fn availability(
    dir: &Directory,
    lockdowns: &Lockdowns,
    resident: &ResidentId,
    contact: &ContactRecord,
    service: Service,
    now: Timestamp,
) -> Availability {
    let outcome = match service {
        Service::Voice => decide(dir, lockdowns, resident, Ok(contact), CallKind::Voice, None, now).map(drop),
        Service::Video => decide(dir, lockdowns, resident, Ok(contact), CallKind::Video, None, now).map(drop),
        Service::Message => message_allowed(dir, resident, contact, now),
    };
    match outcome {
        Ok(()) => Availability::Available,
        Err(reason) => Availability::Unavailable(reason),
    }
}

/// Today's calling hours for a housing unit in the facility's local date,
/// whether a window is open now, the next window to open (up to 7 days
/// ahead), and any lockdown in force for the unit.
///
/// `open_now` follows the schedule only; a lockdown is reported beside it so
/// the tablet can say both "hours are open" and "but the unit is locked down".
pub fn hours(
    dir: &Directory,
    lockdowns: &Lockdowns,
    unit: &UnitId,
    now: Timestamp,
) -> Result<HoursView, DenyReason> {
    let (facility, tz) = dir.facility_with_time_zone().map_err(misconfigured)?;
    let unit_record = dir.unit(unit).ok_or_else(|| unknown_unit(unit))?;
    let local_date = tz.to_datetime(now).date();
    let schedule = &unit_record.schedule;
    let today =
        day_windows(tz, schedule, local_date).map_err(time_error)?.into_iter().map(|w| w.view(tz)).collect();
    let found = locate(tz, schedule, local_date, now).map_err(time_error)?;
    Ok(HoursView {
        time_zone: facility.time_zone.clone(),
        local_date,
        today,
        open_now: found.current.is_some(),
        next_window: found.next.map(|w| w.view(tz)),
        lockdown: lockdown_in_force(lockdowns, unit),
    })
}

/// The canonical form of a phone number, used to compare numbers however
/// they were typed: North American numbers become `+1` and ten digits;
/// anything else keeps its digits and a leading `+` if it had one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumberKey(String);

impl NumberKey {
    pub fn of(raw: &str) -> Self {
        let dialled = Dialled::parse(raw);
        match dialled.national() {
            Some(national) if national.len() == 10 => NumberKey(format!("+1{national}")),
            _ if dialled.plus => NumberKey(format!("+{}", dialled.digits)),
            _ => NumberKey(dialled.digits),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_empty(&self) -> bool {
        self.0.trim_start_matches('+').is_empty()
    }
}

/// A number as dialled: its digits, and whether it began with `+`.
struct Dialled {
    plus: bool,
    digits: String,
}

impl Dialled {
    fn parse(raw: &str) -> Self {
        let trimmed = raw.trim_start();
        Dialled {
            plus: trimmed.starts_with('+'),
            digits: trimmed.chars().filter(char::is_ascii_digit).collect(),
        }
    }

    /// The North American national number: without `+1`, or without the
    /// leading `1` of an 11-digit number. `None` for other countries' `+`
    /// numbers, to which national prefixes do not apply.
    fn national(&self) -> Option<&str> {
        if self.plus {
            self.digits.strip_prefix('1')
        } else if self.digits.len() == 11 && self.digits.starts_with('1') {
            Some(&self.digits[1..])
        } else {
            Some(&self.digits)
        }
    }
}

/// Whether `number` may never be dialled: its national number starts with
/// one of the facility's barred prefixes, or the dialled digits are exactly
/// one of them (short codes such as `911`). Empty prefixes are ignored so a
/// stray blank setting cannot bar every number.
pub fn is_barred(number: &str, barred_prefixes: &[String]) -> bool {
    let dialled = Dialled::parse(number);
    let national = dialled.national();
    barred_prefixes
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .any(|p| dialled.digits == p || national.is_some_and(|n| n.starts_with(p)))
}

struct Subject<'a> {
    facility: &'a FacilityRecord,
    tz: &'a TimeZone,
    resident: &'a ResidentRecord,
    contact: &'a ContactRecord,
    local_today: Date,
}

/// Checks 1-3 of the module docs.
fn subject<'a>(
    dir: &'a Directory,
    resident_id: &ResidentId,
    contact: Result<&'a ContactRecord, ContactId>,
    now: Timestamp,
) -> Result<Subject<'a>, DenyReason> {
    let (facility, tz) = dir.facility_with_time_zone().map_err(misconfigured)?;
    let resident = dir.resident(resident_id).filter(|r| r.active).ok_or(DenyReason::ResidentInactive)?;
    let contact = match contact {
        Ok(c) if &c.resident == resident_id => c,
        Ok(c) => return Err(DenyReason::UnknownContact { contact: c.id }),
        Err(id) => return Err(DenyReason::UnknownContact { contact: id }),
    };
    Ok(Subject { facility, tz, resident, contact, local_today: tz.to_datetime(now).date() })
}

fn message_allowed(
    dir: &Directory,
    resident: &ResidentId,
    contact: &ContactRecord,
    now: Timestamp,
) -> Result<(), DenyReason> {
    let s = subject(dir, resident, Ok(contact), now)?;
    check_suspension(dir, &s, Service::Message)?;
    check_account_and_approval(&s, Service::Message)
}

fn decide(
    dir: &Directory,
    lockdowns: &Lockdowns,
    resident: &ResidentId,
    contact: Result<&ContactRecord, ContactId>,
    kind: CallKind,
    number: Option<&str>,
    now: Timestamp,
) -> Result<CallDecision, DenyReason> {
    let s = subject(dir, resident, contact, now)?;
    if let Some(scope) = lockdown_in_force(lockdowns, &s.resident.unit) {
        return Err(DenyReason::Lockdown { scope });
    }
    let service = Service::from(kind);
    check_suspension(dir, &s, service)?;
    check_account_and_approval(&s, service)?;
    check_number(dir, &s, kind, number)?;

    let balance_secs = match kind {
        CallKind::Voice => None,
        CallKind::Video => video_paid_secs(s.contact)?,
    };

    let unit = dir.unit(&s.resident.unit).ok_or_else(|| unknown_unit(&s.resident.unit))?;
    let found = locate(s.tz, &unit.schedule, s.local_today, now).map_err(time_error)?;
    let useful = s.facility.warning_secs.max(1);
    let window_secs = match &found.current {
        Some(window) => secs_u32(window.end.duration_since(now)),
        None => 0,
    };
    if window_secs < useful {
        return Err(DenyReason::OutsideCallingHours { next_window: found.next.map(|w| w.view(s.tz)) });
    }

    let cap_secs = cap_remaining_secs(dir, &s, kind, useful)?;

    let limit = match kind {
        CallKind::Voice => s.facility.voice_limit_secs,
        CallKind::Video => s.facility.video_limit_secs,
    };
    // Strictly-smaller replaces, so ties keep the earlier (documented) reason.
    let mut best = (limit, LimitedBy::CallLength);
    for (candidate, by) in [
        (Some(window_secs), LimitedBy::CallingWindow),
        (balance_secs, LimitedBy::Balance),
        (cap_secs, LimitedBy::PeriodicCap),
    ] {
        if let Some(secs) = candidate {
            if secs < best.0 {
                best = (secs, by);
            }
        }
    }
    let (max_duration_secs, limited_by) = best;
    Ok(CallDecision::Allowed {
        max_duration_secs,
        warn_at_secs: max_duration_secs.saturating_sub(s.facility.warning_secs),
        limited_by,
    })
}

fn lockdown_in_force(lockdowns: &Lockdowns, unit: &UnitId) -> Option<LockdownScope> {
    if lockdowns.contains(&LockdownScope::Facility) {
        return Some(LockdownScope::Facility);
    }
    let scope = LockdownScope::Unit(unit.clone());
    lockdowns.contains(&scope).then_some(scope)
}

/// A suspension is in force through the end of its `ends_on` local date.
/// Comparing local dates is exactly "before the following local midnight",
/// including on DST days and where midnight itself is skipped.
fn check_suspension(dir: &Directory, s: &Subject<'_>, service: Service) -> Result<(), DenyReason> {
    // Report the one that lasts longest: that is when the service returns.
    let in_force = dir
        .suspensions_of(&s.resident.id)
        .filter(|susp| s.local_today <= susp.ends_on && susp.services.contains(&service))
        .max_by(|a, b| a.ends_on.cmp(&b.ends_on).then(b.id.cmp(&a.id)));
    match in_force {
        Some(susp) => Err(DenyReason::Suspended {
            services: susp.services.clone(),
            ends_on: susp.ends_on,
            reason: susp.reason.clone(),
        }),
        None => Ok(()),
    }
}

fn check_account_and_approval(s: &Subject<'_>, service: Service) -> Result<(), DenyReason> {
    if s.contact.account_status == AccountStatus::Closed {
        return Err(DenyReason::AccountClosed);
    }
    match s.contact.approvals.get(service) {
        Approval::Approved => Ok(()),
        status => Err(DenyReason::NotApproved { service, status }),
    }
}

/// Barred and authorized-number checks apply to voice only: a video call
/// dials nothing, its primary number only identifies the contact for the
/// privileged and block checks.
fn check_number(
    dir: &Directory,
    s: &Subject<'_>,
    kind: CallKind,
    requested: Option<&str>,
) -> Result<(), DenyReason> {
    let primary = s.contact.numbers.first().map(String::as_str);
    let number = match kind {
        CallKind::Voice => match requested.or(primary) {
            Some(n) => n,
            None => return Err(DenyReason::NoNumber),
        },
        CallKind::Video => match primary {
            Some(n) => n,
            None => return Ok(()),
        },
    };
    if dir.privileged(number).is_some() {
        return Err(DenyReason::PrivilegedNumber { notice: s.facility.legal_call_notice.clone() });
    }
    if kind == CallKind::Voice {
        if is_barred(number, &s.facility.barred_prefixes) {
            return Err(DenyReason::BarredNumber { number: number.to_string() });
        }
        let key = NumberKey::of(number);
        let authorized = !key.is_empty() && s.contact.numbers.iter().any(|n| NumberKey::of(n) == key);
        if !authorized {
            return Err(DenyReason::NumberNotAuthorized { number: number.to_string() });
        }
    }
    let here = &s.facility.id;
    let block = dir.blocks_for(number).find(|b| match &b.scope {
        proto::domain::BlockScope::AllFacilities => true,
        proto::domain::BlockScope::Facility(f) => f == here,
    });
    match block {
        Some(b) => Err(DenyReason::NumberBlocked { number: number.to_string(), scope: b.scope.clone() }),
        None => Ok(()),
    }
}

/// Seconds the video balance pays for (`None` when video is free), or a
/// denial when it cannot pay one minute. Minutes are charged when started,
/// so only whole paid minutes count.
fn video_paid_secs(contact: &ContactRecord) -> Result<Option<u32>, DenyReason> {
    let rate = contact.video_rate_cents_per_min;
    if rate == 0 {
        return Ok(None);
    }
    let balance = contact.video_balance_cents;
    if balance < i64::from(rate) {
        return Err(DenyReason::InsufficientBalance { balance_cents: balance, rate_cents_per_min: rate });
    }
    let minutes = balance / i64::from(rate);
    Ok(Some(u32::try_from(minutes.saturating_mul(60)).unwrap_or(u32::MAX)))
}

/// The smallest remaining allowance over the facility's cap rules for `kind`
/// (`None` when no rule applies). A rule with fewer than `useful` seconds
/// left refuses the call, reported by the first such rule in setting order.
fn cap_remaining_secs(
    dir: &Directory,
    s: &Subject<'_>,
    kind: CallKind,
    useful: u32,
) -> Result<Option<u32>, DenyReason> {
    let mut smallest: Option<u32> = None;
    for rule in s.facility.caps.iter().filter(|r| r.kind == kind) {
        let period = cap_period(rule.anchor, rule.period_days, s.local_today).ok_or_else(|| {
            DenyReason::FacilityMisconfigured {
                detail: format!(
                    "cap rule for {kind:?} has an unusable period ({} days from {})",
                    rule.period_days, rule.anchor
                ),
            }
        })?;
        let used = dir.cap_used_secs(&s.resident.id, kind, period.start);
        let allowed = i64::from(rule.minutes) * 60;
        let remaining = u32::try_from((allowed - i64::from(used)).max(0)).unwrap_or(u32::MAX);
        if remaining < useful {
            return Err(DenyReason::CapReached { kind, resets_on: period.next_start });
        }
        smallest = Some(smallest.map_or(remaining, |m| m.min(remaining)));
    }
    Ok(smallest)
}

/// The cap period (in local dates) containing `today`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapPeriod {
    pub start: Date,
    pub next_start: Date,
}

/// Periods are consecutive blocks of `period_days` local days from `anchor`
/// (also before it). `None` for a zero-length period or dates out of range.
pub fn cap_period(anchor: Date, period_days: u16, today: Date) -> Option<CapPeriod> {
    if period_days == 0 {
        return None;
    }
    let days_since = today.duration_since(anchor).as_hours() / 24;
    let index = days_since.div_euclid(i64::from(period_days));
    let start = add_days(anchor, index.checked_mul(i64::from(period_days))?)?;
    let next_start = add_days(start, i64::from(period_days))?;
    Some(CapPeriod { start, next_start })
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    let hours = days.checked_mul(24)?;
    date.checked_add(SignedDuration::from_hours(hours)).ok()
}

/// One calling window (or several touching ones merged) as instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalWindow {
    start: Timestamp,
    end: Timestamp,
    local_date: Date,
}

impl LocalWindow {
    fn view(&self, tz: &TimeZone) -> WindowView {
        WindowView {
            starts_at: self.start,
            ends_at: self.end,
            local_start: hh_mm(tz, self.start),
            local_end: hh_mm(tz, self.end),
            local_date: self.local_date,
        }
    }
}

fn hh_mm(tz: &TimeZone, at: Timestamp) -> String {
    let dt = tz.to_datetime(at);
    format!("{:02}:{:02}", dt.hour(), dt.minute())
}

/// Local midnight + `minute` as an instant; minute 1440 is the next local
/// midnight.
fn local_instant(tz: &TimeZone, date: Date, minute: u16) -> Result<Timestamp, jiff::Error> {
    if minute >= 1440 {
        return tz.to_timestamp(date.tomorrow()?.at(0, 0, 0, 0));
    }
    // Both fit in i8: minute < 1440.
    let (hour, min) = ((minute / 60) as i8, (minute % 60) as i8);
    tz.to_timestamp(date.at(hour, min, 0, 0))
}

fn valid_window(w: &CallingWindow) -> bool {
    (1..=7).contains(&w.weekday) && w.start_minute < w.end_minute && w.end_minute <= 1440
}

/// The windows of one local date, sorted, with overlapping or touching ones
/// merged. Malformed windows (bad weekday, empty, past midnight) are skipped:
/// they cannot open anything.
fn day_windows(
    tz: &TimeZone,
    schedule: &[CallingWindow],
    date: Date,
) -> Result<Vec<LocalWindow>, jiff::Error> {
    let weekday = date.weekday().to_monday_one_offset();
    let mut minutes: Vec<(u16, u16)> = schedule
        .iter()
        .filter(|w| valid_window(w) && i8::try_from(w.weekday) == Ok(weekday))
        .map(|w| (w.start_minute, w.end_minute))
        .collect();
    minutes.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(minutes.len());
    for (start, end) in minutes {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut windows = Vec::with_capacity(merged.len());
    for (start, end) in merged {
        let start = local_instant(tz, date, start)?;
        let end = local_instant(tz, date, end)?;
        // A window wholly inside a spring-forward gap holds no real time.
        if start < end {
            windows.push(LocalWindow { start, end, local_date: date });
        }
    }
    Ok(windows)
}

/// Days after today searched for the next window.
const LOOKAHEAD_DAYS: i16 = 7;

#[derive(Debug, Default)]
struct Located {
    /// The window containing now, extended over touching windows (also past
    /// midnight) so a call may run on when one window hands over to the next.
    current: Option<LocalWindow>,
    /// The first window starting after now (after `current`, if any).
    next: Option<LocalWindow>,
}

fn locate(
    tz: &TimeZone,
    schedule: &[CallingWindow],
    today: Date,
    now: Timestamp,
) -> Result<Located, jiff::Error> {
    let mut found = Located::default();
    // The merged window being built; it is complete once a later window does
    // not touch it.
    let mut building: Option<LocalWindow> = None;
    let mut date = today;
    for offset in 0..=LOOKAHEAD_DAYS {
        if offset > 0 {
            date = date.tomorrow()?;
        }
        for window in day_windows(tz, schedule, date)? {
            match &mut building {
                Some(b) if window.start <= b.end => b.end = b.end.max(window.end),
                _ => {
                    if let Some(done) = building.replace(window) {
                        if classify(&mut found, done, now) {
                            return Ok(found);
                        }
                    }
                }
            }
        }
    }
    if let Some(done) = building {
        classify(&mut found, done, now);
    }
    Ok(found)
}

/// Files a complete window; true once the next window is known.
fn classify(found: &mut Located, window: LocalWindow, now: Timestamp) -> bool {
    if window.end <= now {
        false
    } else if window.start <= now {
        found.current = Some(window);
        false
    } else {
        found.next = Some(window);
        true
    }
}

fn secs_u32(duration: SignedDuration) -> u32 {
    u32::try_from(duration.as_secs().max(0)).unwrap_or(u32::MAX)
}

fn misconfigured(error: FacilityError) -> DenyReason {
    DenyReason::FacilityMisconfigured { detail: error.to_string() }
}

fn unknown_unit(unit: &UnitId) -> DenyReason {
    DenyReason::FacilityMisconfigured { detail: format!("housing unit {unit} is not in the directory") }
}

fn time_error(error: jiff::Error) -> DenyReason {
    DenyReason::FacilityMisconfigured { detail: format!("calendar arithmetic failed: {error}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn number_keys_agree_across_spellings() {
        let key = NumberKey::of("+15551234567");
        for spelling in ["15551234567", "5551234567", "(555) 123-4567", "+1 555.123.4567"] {
            assert_eq!(NumberKey::of(spelling), key, "{spelling}");
        }
        assert_eq!(NumberKey::of("+44 20 7946 0000").as_str(), "+442079460000");
        assert_eq!(NumberKey::of("911").as_str(), "911");
        assert!(NumberKey::of("call me").is_empty());
    }

    #[test]
    fn barred_by_national_prefix_or_short_code() {
        let barred = proto::domain::FacilityRecord::default_barred_prefixes();
        for n in ["+18005551234", "18005551234", "8005551234", "900-555-0000", "911", "+1411"] {
            assert!(is_barred(n, &barred), "{n}");
        }
        for n in ["+15558005555", "+448001234567", "5551234", "+19", ""] {
            assert!(!is_barred(n, &barred), "{n}");
        }
        let short_code = vec!["611".to_string()];
        assert!(is_barred("611", &short_code));
    }

    #[test]
    fn cap_periods_are_blocks_of_days_from_the_anchor() {
        let anchor = date(2026, 3, 1);
        let p = cap_period(anchor, 14, date(2026, 3, 14)).unwrap();
        assert_eq!((p.start, p.next_start), (anchor, date(2026, 3, 15)));
        let p = cap_period(anchor, 14, date(2026, 3, 15)).unwrap();
        assert_eq!((p.start, p.next_start), (date(2026, 3, 15), date(2026, 3, 29)));
        // Before the anchor, periods continue backwards.
        let p = cap_period(anchor, 14, date(2026, 2, 28)).unwrap();
        assert_eq!((p.start, p.next_start), (date(2026, 2, 15), anchor));
        assert!(cap_period(anchor, 0, anchor).is_none());
    }
}
