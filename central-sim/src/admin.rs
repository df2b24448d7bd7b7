//! The admin commands: what a provider's back office would change (approvals,
//! blocks, balances, rates, suspensions, ...), applied straight to central's
//! database so tests can drive the sync.
//!
//! Owns: parsing and validating admin input and turning each command into
//! entity upserts/deletes in one write transaction. Input is validated before
//! anything is written, and any error drops the transaction, so a rejected
//! command leaves the database untouched. Must not: talk to the network.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use clap::{Subcommand, ValueEnum};
use jiff::civil::Date;
use proto::central::{Entity, EntityKey};
use proto::domain::*;
use proto::messaging::{
    Attachment, Direction, ECardId, MailRecord, MediaId, Message, MessageId, Review, StampCountRecord,
    MAX_ATTACHMENTS, MAX_VIDEOGRAM_SECS,
};
use rusqlite::params;
use serde_json::{json, Value};

use crate::db::{Audience, Db, DbError, Writer};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The operator's input is wrong (exit code 2).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The record the command names does not exist (exit code 2).
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Release(#[from] crate::releases::ReleaseError),
}

fn media_error(e: crate::media::MediaError) -> AdminError {
    match e {
        crate::media::MediaError::Db(db) => AdminError::Db(db),
        other => AdminError::Invalid(other.to_string()),
    }
}

impl AdminError {
    /// Bad input and unknown records are the operator's to fix (2); anything
    /// else is central-sim's own failure (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Invalid(_) | AdminError::NotFound(_) => 2,
            AdminError::Release(
                crate::releases::ReleaseError::Bundle { .. } | crate::releases::ReleaseError::Conflict { .. },
            ) => 2,
            AdminError::Db(_) | AdminError::Release(_) => 1,
        }
    }
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, AdminError> {
    Err(AdminError::Invalid(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceArg {
    Voice,
    Video,
    Message,
}

impl From<ServiceArg> for Service {
    fn from(s: ServiceArg) -> Self {
        match s {
            ServiceArg::Voice => Service::Voice,
            ServiceArg::Video => Service::Video,
            ServiceArg::Message => Service::Message,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApprovalArg {
    Approved,
    Pending,
    Rejected,
}

impl From<ApprovalArg> for Approval {
    fn from(a: ApprovalArg) -> Self {
        match a {
            ApprovalArg::Approved => Approval::Approved,
            ApprovalArg::Pending => Approval::Pending,
            ApprovalArg::Rejected => Approval::Rejected,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Voice,
    Video,
}

impl From<KindArg> for CallKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Voice => CallKind::Voice,
            KindArg::Video => CallKind::Video,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AddRemove {
    Add,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ShowWhat {
    /// One contact.
    Contact { id: u64 },
    /// One resident with their contacts and suspensions.
    Resident { id: String },
}

/// A review verdict: exactly one of `--approve` or `--reject REASON`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[group(required = true, multiple = false)]
pub struct VerdictArgs {
    #[arg(long)]
    pub approve: bool,
    /// Rejects with this reason, which the sender sees.
    #[arg(long)]
    pub reject: Option<String>,
}

/// Where a block applies: exactly one of `--facility F` or `--all`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// Block only at this facility.
    #[arg(long)]
    pub facility: Option<String>,
    /// Block at every facility.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AdminCommand {
    /// Sets one service's approval of a contact.
    Approve {
        #[arg(long)]
        contact: u64,
        #[arg(long, value_enum)]
        service: ServiceArg,
        #[arg(long, value_enum)]
        status: ApprovalArg,
    },
    /// Blocks a number at one facility or at all.
    Block {
        #[arg(long)]
        number: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Removes a block.
    Unblock {
        #[arg(long)]
        number: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Sets a contact's prepaid video balance.
    Balance {
        #[arg(long)]
        contact: u64,
        #[arg(long, allow_negative_numbers = true)]
        cents: i64,
    },
    /// Sets a contact's video rate.
    Rate {
        #[arg(long)]
        contact: u64,
        #[arg(long)]
        cents_per_min: u32,
    },
    /// Closes a contact's account.
    CloseAccount {
        #[arg(long)]
        contact: u64,
    },
    /// Reopens a closed contact account.
    ReopenAccount {
        #[arg(long)]
        contact: u64,
    },
    /// Suspends services of a resident through the end of a local date.
    Suspend {
        #[arg(long)]
        resident: String,
        /// Comma-separated: voice,video,message.
        #[arg(long, value_enum, value_delimiter = ',', required = true)]
        services: Vec<ServiceArg>,
        /// Last local day of the suspension (YYYY-MM-DD).
        #[arg(long)]
        until: String,
        #[arg(long)]
        reason: String,
    },
    /// Lifts a suspension.
    Unsuspend {
        #[arg(long)]
        id: u64,
    },
    /// Adds or removes a privileged (attorney) number.
    Privileged {
        #[arg(value_enum)]
        action: AddRemove,
        #[arg(long)]
        number: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// Changes a resident.
    Resident {
        #[arg(long)]
        id: String,
        #[arg(long)]
        active: Option<bool>,
        #[arg(long, allow_negative_numbers = true)]
        debit_cents: Option<i64>,
        #[arg(long)]
        pin: Option<String>,
    },
    /// Changes facility settings.
    Facility {
        #[arg(long)]
        id: String,
        #[arg(long)]
        voice_limit_secs: Option<u32>,
        #[arg(long)]
        video_limit_secs: Option<u32>,
        /// IANA time zone name.
        #[arg(long)]
        tz: Option<String>,
    },
    /// Replaces one weekday's calling windows of a housing unit.
    Schedule {
        #[arg(long)]
        unit: String,
        /// ISO weekday, 1 = Monday .. 7 = Sunday.
        #[arg(long)]
        weekday: u8,
        /// `HH:MM-HH:MM` windows, comma-separated; `none` or "" for no calls.
        #[arg(long)]
        windows: String,
    },
    /// Sets the minutes a resident used in one cap period.
    CapUsage {
        #[arg(long)]
        resident: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// First local day of the cap period (YYYY-MM-DD).
        #[arg(long)]
        period_start: String,
        #[arg(long)]
        used_secs: u32,
    },
    /// Approves or rejects a message under review (the verdict reaches the
    /// resident's edge through the feed; a rejection refunds no stamp).
    Review {
        /// The message id (hex, as printed in the feed).
        #[arg(long)]
        message: String,
        #[command(flatten)]
        verdict: VerdictArgs,
    },
    /// Mail from a contact to their resident, as if sent from outside.
    SendMail {
        #[arg(long)]
        contact: u64,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        body: String,
        /// An eCard from the facility's catalog; repeat for more.
        #[arg(long = "attach-ecard")]
        attach_ecard: Vec<u64>,
        /// A photo file (.png or .jpg) to attach; repeat for more.
        #[arg(long = "attach-photo")]
        attach_photo: Vec<std::path::PathBuf>,
        /// A photo file attached as a Snap'n'Send; repeat for more.
        #[arg(long = "attach-snap")]
        attach_snap: Vec<std::path::PathBuf>,
        /// A VideoGram (.webm, VP8) to attach; give its length with
        /// `--videogram-secs`.
        #[arg(long = "attach-videogram", requires = "videogram_secs")]
        attach_videogram: Option<std::path::PathBuf>,
        #[arg(long = "videogram-secs")]
        videogram_secs: Option<u16>,
        /// Leaves it under review instead of approved.
        #[arg(long)]
        pending: bool,
    },
    /// Sets the stamps a resident holds for one contact.
    Stamps {
        #[arg(long)]
        resident: String,
        #[arg(long)]
        contact: u64,
        #[arg(long)]
        count: u32,
    },
    /// Per delivered key: how often it was received and how often applied.
    Deliveries {
        /// Only this idempotency key (32 hex digits).
        #[arg(long)]
        key: Option<String>,
    },
    /// Prints the eCard catalog.
    Ecards,
    /// Prints the stamp packages and prices.
    Packages,
    /// Purges all but the newest N tombstones; older cursors then expire.
    Compact {
        #[arg(long)]
        keep_last: u64,
    },
    /// Prints a record as JSON.
    #[command(subcommand)]
    Show(ShowWhat),
    /// Prints the feed head, horizon and row counts.
    Head,
    /// Publishes a signed update bundle: copied into STATE/releases/ and
    /// offered to every edge running an older version.
    PublishRelease {
        /// The `.febundle` file.
        bundle: std::path::PathBuf,
    },
    /// Prints the published releases, newest first.
    Releases,
    /// Prints what each facility's edge last reported in Hello (version,
    /// slot, on_trial, last_update_failure).
    Edges,
    /// How the contact behaves on the next call to them (then forgotten).
    /// Without a script a contact answers after 2 s and stays on the line.
    CallScript {
        #[arg(long)]
        contact: u64,
        /// Answer this many seconds after the phone starts ringing.
        #[arg(long, value_name = "SECS", group = "pickup", value_parser = parse_secs_ms)]
        answer_after: Option<u64>,
        /// Decline this many seconds after the phone starts ringing.
        #[arg(long, value_name = "SECS", group = "pickup", value_parser = parse_secs_ms)]
        decline_after: Option<u64>,
        /// Never pick up (the edge's ring timeout ends the call).
        #[arg(long, group = "pickup")]
        no_answer: bool,
        /// After answering, hang up this many seconds after the answer.
        #[arg(long, value_name = "SECS", value_parser = parse_secs_ms)]
        hangup_after: Option<u64>,
    },
    /// Lists the calls edges rang, with their end reasons, and the call
    /// records (CDRs) delivered with what was collected.
    Calls,
}

/// Seconds (fractions allowed, at most a day) as milliseconds.
fn parse_secs_ms(text: &str) -> Result<u64, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err("must be between 0 and 86400 seconds".into());
    }
    Ok((secs * 1000.0).round() as u64)
}

fn call_script(
    db: &mut Db,
    contact: u64,
    answer_after_ms: Option<u64>,
    decline_after_ms: Option<u64>,
    no_answer: bool,
    hangup_after_ms: Option<u64>,
) -> Result<Value, AdminError> {
    use crate::calls::{Pickup, Script};
    let pickup = match (answer_after_ms, decline_after_ms, no_answer) {
        (Some(a), None, false) => Pickup::AnswerAfterMs(a),
        (None, Some(d), false) => Pickup::DeclineAfterMs(d),
        (None, None, true) => Pickup::NoAnswer,
        _ => return invalid("give exactly one of --answer-after, --decline-after, --no-answer"),
    };
    if hangup_after_ms.is_some() && !matches!(pickup, Pickup::AnswerAfterMs(_)) {
        return invalid("--hangup-after needs --answer-after");
    }
    let w = db.writer()?;
    let exists = w.row(&crate::db::key_text(&EntityKey::Contact(ContactId(contact)))?)?.is_some();
    drop(w);
    if !exists {
        return Err(AdminError::NotFound(format!("contact {contact}")));
    }
    let script = Script { pickup, hangup_after_ms };
    crate::calls::set_script(db, ContactId(contact), &script)?;
    Ok(json!({ "ok": true, "command": "call-script", "contact": contact, "script": script }))
}

/// `+` and 8..=15 digits (E.164), or a 3..=6 digit short code.
pub fn validate_number(number: &str) -> Result<(), AdminError> {
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match number.strip_prefix('+') {
        Some(rest) => digits_only(rest) && (8..=15).contains(&rest.len()) && !rest.starts_with('0'),
        None => digits_only(number) && (3..=6).contains(&number.len()),
    };
    if ok {
        Ok(())
    } else {
        invalid(format!("{number:?} is not an E.164 number (+15551234567) or a short code"))
    }
}

fn validate_facility_id(id: &str) -> Result<(), AdminError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        invalid(format!("{id:?} is not a facility id (lowercase letters, digits, '-', '_')"))
    }
}

fn parse_date(text: &str, what: &str) -> Result<Date, AdminError> {
    text.parse::<Date>().or_else(|e| invalid(format!("{what} {text:?} is not a YYYY-MM-DD date: {e}")))
}

fn parse_hhmm(text: &str) -> Result<u16, AdminError> {
    let bad = || AdminError::Invalid(format!("{text:?} is not a time HH:MM"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Parses `08:00-11:30,13:00-22:00` (or `none`) into sorted,
/// non-overlapping windows on `weekday`.
pub fn parse_windows(weekday: u8, text: &str) -> Result<Vec<CallingWindow>, AdminError> {
    if !(1..=7).contains(&weekday) {
        return invalid(format!("weekday {weekday} is not 1 (Monday) ..= 7 (Sunday)"));
    }
    if text.trim().is_empty() || text.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for span in text.split(',') {
        let span = span.trim();
        let (start, end) = span
            .split_once('-')
            .ok_or_else(|| AdminError::Invalid(format!("{span:?} is not HH:MM-HH:MM")))?;
        let (start_minute, end_minute) = (parse_hhmm(start)?, parse_hhmm(end)?);
        if start_minute >= end_minute {
            return invalid(format!("window {span:?} ends before it starts (split windows across midnight)"));
        }
        out.push(CallingWindow { weekday, start_minute, end_minute });
    }
    out.sort_by_key(|w| w.start_minute);
    if out.windows(2).any(|pair| pair[0].end_minute > pair[1].start_minute) {
        return invalid(format!("windows {text:?} overlap"));
    }
    Ok(out)
}

/// Hashes a PIN with Argon2id default parameters and a random salt.
pub fn hash_pin(pin: &str) -> Result<String, AdminError> {
    if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return invalid("a PIN is 4 to 8 digits");
    }
    let salt = SaltString::generate(rand::rngs::OsRng);
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .or_else(|e| invalid(format!("could not hash the PIN: {e}")))
}

/// Parses a message id or an idempotency key: 1 to 32 hex digits.
pub fn parse_hex_id(text: &str, what: &str) -> Result<u128, AdminError> {
    let ok = (1..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit());
    match u128::from_str_radix(text, 16) {
        Ok(n) if ok => Ok(n),
        _ => invalid(format!("{what} {text:?} is not 1 to 32 hex digits")),
    }
}

fn check_text_limits(limit: u32, subject: &str, body: &str) -> Result<(), AdminError> {
    for (field, text) in [("subject", subject), ("body", body)] {
        let chars = text.chars().count();
        if chars > limit as usize {
            return invalid(format!("the {field} is {chars} characters; the limit is {limit}"));
        }
    }
    if subject.trim().is_empty() && body.trim().is_empty() {
        return invalid("a message needs a subject or a body");
    }
    Ok(())
}

fn load_contact(w: &Writer<'_>, id: u64) -> Result<(ContactRecord, Audience), AdminError> {
    match load(w, &EntityKey::Contact(ContactId(id)))? {
        Some((Entity::Contact(c), audience)) => Ok((c, audience)),
        _ => Err(AdminError::NotFound(format!("contact {id}"))),
    }
}

fn load_resident(w: &Writer<'_>, id: &str) -> Result<(ResidentRecord, Audience), AdminError> {
    match load(w, &EntityKey::Resident(ResidentId::new(id)))? {
        Some((Entity::Resident(r), audience)) => Ok((r, audience)),
        _ => Err(AdminError::NotFound(format!("resident {id}"))),
    }
}

fn load(w: &Writer<'_>, key: &EntityKey) -> Result<Option<(Entity, Audience)>, AdminError> {
    let row = w.row(&crate::db::key_text(key)?)?;
    Ok(row.and_then(|r| {
        let audience = r.facility.map_or(Audience::Every, |f| Audience::Facility(FacilityId(f)));
        r.entity.map(|e| (e, audience))
    }))
}

/// The result line of a command that wrote (or found nothing to write).
fn written(command: &str, seq: Option<u64>, w: &Writer<'_>, entity: Value) -> Result<Value, AdminError> {
    Ok(json!({
        "ok": true,
        "command": command,
        "changed": seq.is_some(),
        "seq": seq,
        "head": w.head()?,
        "entity": entity,
    }))
}

fn entity_json(entity: &Entity) -> Value {
    serde_json::to_value(entity).unwrap_or(Value::Null)
}

/// Runs one admin command and returns the JSON to print.
pub fn run(db: &mut Db, command: &AdminCommand) -> Result<Value, AdminError> {
    match command {
        AdminCommand::Show(what) => return show(db, what),
        AdminCommand::Deliveries { key } => return deliveries(db, key.as_deref()),
        AdminCommand::Ecards => {
            return Ok(json!({ "ok": true, "command": "ecards", "ecards": live(db, "ecard")? }))
        }
        AdminCommand::Packages => {
            return Ok(json!({ "ok": true, "command": "packages", "packages": live(db, "stamp_package")? }))
        }
        AdminCommand::Head => return Ok(serde_json::to_value(db.head_info()?).unwrap_or(Value::Null)),
        AdminCommand::PublishRelease { bundle } => {
            let dir = db.state_dir().ok_or(crate::releases::ReleaseError::NoStateDir)?;
            let published = crate::releases::publish(db, &dir, bundle)?;
            return Ok(json!({ "ok": true, "command": "publish-release", "release": published }));
        }
        AdminCommand::Releases => {
            let releases = crate::releases::list(db)?;
            return Ok(json!({ "ok": true, "command": "releases", "releases": releases }));
        }
        AdminCommand::CallScript { contact, answer_after, decline_after, no_answer, hangup_after } => {
            return call_script(db, *contact, *answer_after, *decline_after, *no_answer, *hangup_after);
        }
        AdminCommand::Calls => return Ok(crate::calls::list(db)?),
        AdminCommand::Edges => {
            let edges = crate::releases::edges(db)?;
            return Ok(json!({ "ok": true, "command": "edges", "edges": edges }));
        }
        AdminCommand::Compact { keep_last } => {
            let report = db.compact(*keep_last)?;
            return Ok(
                json!({ "ok": true, "command": "compact", "purged": report.purged, "horizon": report.horizon }),
            );
        }
        _ => {}
    }

    let w = db.writer()?;
    let out = match command {
        AdminCommand::Approve { contact, service, status } => {
            let (mut c, audience) = load_contact(&w, *contact)?;
            match Service::from(*service) {
                Service::Voice => c.approvals.voice = (*status).into(),
                Service::Video => c.approvals.video = (*status).into(),
                Service::Message => c.approvals.message = (*status).into(),
            }
            let entity = Entity::Contact(c);
            written("approve", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Balance { contact, cents } => {
            if *cents < 0 {
                return invalid("a prepaid balance cannot be negative");
            }
            let (mut c, audience) = load_contact(&w, *contact)?;
            c.video_balance_cents = *cents;
            let entity = Entity::Contact(c);
            written("balance", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Rate { contact, cents_per_min } => {
            if *cents_per_min > 10_000 {
                return invalid("a rate above $100 per minute is surely a typo");
            }
            let (mut c, audience) = load_contact(&w, *contact)?;
            c.video_rate_cents_per_min = *cents_per_min;
            let entity = Entity::Contact(c);
            written("rate", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::CloseAccount { contact } | AdminCommand::ReopenAccount { contact } => {
            let (mut c, audience) = load_contact(&w, *contact)?;
            let (name, status) = match command {
                AdminCommand::CloseAccount { .. } => ("close-account", AccountStatus::Closed),
                _ => ("reopen-account", AccountStatus::Active),
            };
            c.account_status = status;
            let entity = Entity::Contact(c);
            written(name, w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Block { number, scope } | AdminCommand::Unblock { number, scope } => {
            validate_number(number)?;
            let scope = match (&scope.facility, scope.all) {
                (Some(f), false) => {
                    validate_facility_id(f)?;
                    BlockScope::Facility(FacilityId::new(f.as_str()))
                }
                (None, true) => BlockScope::AllFacilities,
                _ => return invalid("give exactly one of --facility F or --all"),
            };
            let record = BlockRecord { number: number.clone(), scope };
            let entity = Entity::Block(record.clone());
            if matches!(command, AdminCommand::Block { .. }) {
                written("block", w.upsert(&entity, &Audience::Every)?, &w, entity_json(&entity))?
            } else {
                let Some(seq) = w.delete(&EntityKey::Block(record))? else {
                    return Err(AdminError::NotFound(format!("no such block on {number}")));
                };
                written("unblock", Some(seq), &w, entity_json(&entity))?
            }
        }
        AdminCommand::Suspend { resident, services, until, reason } => {
            let ends_on = parse_date(until, "--until")?;
            if reason.trim().is_empty() {
                return invalid("a suspension needs a --reason");
            }
            let mut services: Vec<Service> = services.iter().map(|&s| s.into()).collect();
            services.sort();
            services.dedup();
            let (r, audience) = load_resident(&w, resident)?;
            let record = SuspensionRecord {
                id: w.next_suspension_id()?,
                resident: r.id,
                services,
                ends_on,
                reason: reason.clone(),
            };
            let entity = Entity::Suspension(record);
            written("suspend", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Unsuspend { id } => {
            let Some(seq) = w.delete(&EntityKey::Suspension(*id))? else {
                return Err(AdminError::NotFound(format!("suspension {id}")));
            };
            written("unsuspend", Some(seq), &w, json!({ "Suspension": id }))?
        }
        AdminCommand::Privileged { action, number, label } => {
            validate_number(number)?;
            match action {
                AddRemove::Add => {
                    let label = label.clone().unwrap_or_else(|| "Privileged number".into());
                    let entity = Entity::Privileged(PrivilegedNumberRecord { number: number.clone(), label });
                    written("privileged add", w.upsert(&entity, &Audience::Every)?, &w, entity_json(&entity))?
                }
                AddRemove::Remove => {
                    let Some(seq) = w.delete(&EntityKey::Privileged(number.clone()))? else {
                        return Err(AdminError::NotFound(format!("privileged number {number}")));
                    };
                    written("privileged remove", Some(seq), &w, json!({ "Privileged": number }))?
                }
            }
        }
        AdminCommand::Resident { id, active, debit_cents, pin } => {
            if active.is_none() && debit_cents.is_none() && pin.is_none() {
                return invalid("nothing to change: give --active, --debit-cents or --pin");
            }
            // Validate (and hash) before loading so bad input never reaches a write.
            let pin_hash = pin.as_deref().map(hash_pin).transpose()?;
            let (mut r, audience) = load_resident(&w, id)?;
            if let Some(active) = active {
                r.active = *active;
            }
            if let Some(cents) = debit_cents {
                r.debit_balance_cents = *cents;
            }
            if let Some(hash) = pin_hash {
                r.pin_hash = hash;
            }
            let entity = Entity::Resident(r);
            written("resident", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Facility { id, voice_limit_secs, video_limit_secs, tz } => {
            if voice_limit_secs.is_none() && video_limit_secs.is_none() && tz.is_none() {
                return invalid("nothing to change: give --voice-limit-secs, --video-limit-secs or --tz");
            }
            for limit in [voice_limit_secs, video_limit_secs].into_iter().flatten() {
                if !(60..=4 * 3600).contains(limit) {
                    return invalid(format!("a call limit of {limit} s is outside 60..=14400"));
                }
            }
            if let Some(tz) = tz {
                if jiff::tz::TimeZone::get(tz).is_err() {
                    return invalid(format!("{tz:?} is not a known IANA time zone"));
                }
            }
            let key = crate::db::facility_row_key(&FacilityId::new(id.as_str()))?;
            let Some(crate::db::Row { entity: Some(Entity::Facility(mut f)), .. }) = w.row(&key)? else {
                return Err(AdminError::NotFound(format!("facility {id}")));
            };
            if let Some(v) = voice_limit_secs {
                f.voice_limit_secs = *v;
            }
            if let Some(v) = video_limit_secs {
                f.video_limit_secs = *v;
            }
            if let Some(tz) = tz {
                f.time_zone = tz.clone();
            }
            let audience = Audience::Facility(f.id.clone());
            let entity = Entity::Facility(f);
            written("facility", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Schedule { unit, weekday, windows } => {
            let new_windows = parse_windows(*weekday, windows)?;
            let Some((Entity::Unit(mut u), audience)) =
                load(&w, &EntityKey::Unit(UnitId::new(unit.as_str())))?
            else {
                return Err(AdminError::NotFound(format!("unit {unit}")));
            };
            u.schedule.retain(|win| win.weekday != *weekday);
            u.schedule.extend(new_windows);
            u.schedule.sort_by_key(|win| (win.weekday, win.start_minute));
            let entity = Entity::Unit(u);
            written("schedule", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::CapUsage { resident, kind, period_start, used_secs } => {
            let period_start = parse_date(period_start, "--period-start")?;
            let (r, audience) = load_resident(&w, resident)?;
            let entity = Entity::CapUsage(CapUsageRecord {
                resident: r.id,
                kind: (*kind).into(),
                period_start,
                used_secs: *used_secs,
            });
            written("cap-usage", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Review { message, verdict } => {
            let review = match (&verdict.reject, verdict.approve) {
                (Some(reason), false) if !reason.trim().is_empty() => {
                    Review::Rejected { reason: reason.clone() }
                }
                (None, true) => Review::Approved,
                _ => return invalid("give --approve, or --reject with a reason the sender will see"),
            };
            let id = MessageId::from_u128(parse_hex_id(message, "--message")?);
            let Some((Entity::Mail(mut mail), audience)) = load(&w, &EntityKey::Mail(id))? else {
                return Err(AdminError::NotFound(format!("message {id}")));
            };
            mail.review = review;
            let entity = Entity::Mail(mail);
            written("review", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::SendMail {
            contact,
            subject,
            body,
            attach_ecard,
            attach_photo,
            attach_snap,
            attach_videogram,
            videogram_secs,
            pending,
        } => {
            let count = attach_ecard.len()
                + attach_photo.len()
                + attach_snap.len()
                + usize::from(attach_videogram.is_some());
            if count > MAX_ATTACHMENTS {
                return invalid(format!("{count} attachments; at most {MAX_ATTACHMENTS}"));
            }
            if videogram_secs.is_some_and(|s| s == 0 || s > MAX_VIDEOGRAM_SECS) {
                return invalid(format!("a VideoGram lasts 1 to {MAX_VIDEOGRAM_SECS} seconds"));
            }
            let (c, audience) = load_contact(&w, *contact)?;
            if c.account_status == AccountStatus::Closed || c.approvals.message != Approval::Approved {
                return invalid(format!("contact {contact} may not send messages (closed or not approved)"));
            }
            let Audience::Facility(facility) = &audience else {
                return invalid(format!("contact {contact} belongs to no facility"));
            };
            let key = crate::db::facility_row_key(facility)?;
            let Some(crate::db::Row { entity: Some(Entity::Facility(f)), .. }) = w.row(&key)? else {
                return Err(AdminError::NotFound(format!("facility {facility}")));
            };
            check_text_limits(f.message_char_limit, subject, body)?;
            let mut attachments = Vec::new();
            for card in attach_ecard {
                if !matches!(load(&w, &EntityKey::ECard(ECardId(*card)))?, Some((Entity::ECard(_), a)) if a == audience)
                {
                    return Err(AdminError::NotFound(format!("eCard {card} in {facility}'s catalog")));
                }
                attachments.push(Attachment::ECard(ECardId(*card)));
            }
            // Media goes into central's blob store in the same transaction
            // as the message that carries it.
            let add_media = |path: &std::path::Path, video: bool| -> Result<MediaId, AdminError> {
                let (content_type, bytes) = crate::media::read_file(path).map_err(media_error)?;
                if content_type.is_video() != video {
                    return invalid(format!(
                        "{}: {} is not a {}",
                        path.display(),
                        content_type.mime(),
                        if video { "VideoGram (.webm)" } else { "photo (.png/.jpg)" }
                    ));
                }
                let (id, _) = crate::media::store(w.connection(), facility, content_type, &bytes)
                    .map_err(media_error)?;
                Ok(id)
            };
            for path in attach_photo {
                attachments.push(Attachment::Photo(add_media(path, false)?));
            }
            for path in attach_snap {
                attachments.push(Attachment::SnapNSend(add_media(path, false)?));
            }
            if let (Some(path), Some(secs)) = (attach_videogram, videogram_secs) {
                attachments
                    .push(Attachment::VideoGram { media: add_media(path, true)?, duration_secs: *secs });
            }
            // Central names contacts' messages; a random id cannot collide
            // with one an edge drew for a resident's message.
            let message = Message {
                id: MessageId::from_u128(rand::random()),
                resident: c.resident.clone(),
                contact: c.id,
                direction: Direction::ContactToResident,
                subject: subject.clone(),
                body: body.clone(),
                attachments,
                sent_at: jiff::Timestamp::now(),
            };
            let review = if *pending { Review::Pending } else { Review::Approved };
            let entity = Entity::Mail(MailRecord { message, review });
            written("send-mail", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Stamps { resident, contact, count } => {
            let (c, audience) = load_contact(&w, *contact)?;
            if c.resident.as_str() != resident {
                return Err(AdminError::NotFound(format!("contact {contact} of resident {resident}")));
            }
            let entity =
                Entity::StampCount(StampCountRecord { resident: c.resident, contact: c.id, stamps: *count });
            written("stamps", w.upsert(&entity, &audience)?, &w, entity_json(&entity))?
        }
        AdminCommand::Show(_)
        | AdminCommand::Head
        | AdminCommand::Compact { .. }
        | AdminCommand::Deliveries { .. }
        | AdminCommand::Ecards
        | AdminCommand::Packages
        | AdminCommand::PublishRelease { .. }
        | AdminCommand::Releases
        | AdminCommand::Edges
        | AdminCommand::CallScript { .. }
        | AdminCommand::Calls => Value::Null,
    };
    w.commit()?;
    Ok(out)
}

fn live(db: &Db, kind: &str) -> Result<Vec<Value>, AdminError> {
    Ok(db.live_of_kind(kind)?.iter().map(entity_json).collect())
}

/// Per key: `received` counts every delivery central processed (retries
/// included), `applied` counts the rows of the application log for it, so
/// exactly-once shows as `applied` = 1 for every accepted key (0 for a
/// refused one) however often it was received.
fn deliveries(db: &Db, key: Option<&str>) -> Result<Value, AdminError> {
    let key = key.map(|k| parse_hex_id(k, "--key").map(|n| format!("{n:032x}"))).transpose()?;
    let mut stmt = db
        .connection()
        .prepare(
            "SELECT k.facility, k.key, d.kind, COALESCE(d.received, 0), d.verdict,
                (SELECT COUNT(*) FROM application a WHERE a.facility = k.facility AND a.key = k.key)
         FROM (SELECT facility, key FROM delivery UNION SELECT facility, key FROM application) AS k
         LEFT JOIN delivery d ON d.facility = k.facility AND d.key = k.key
         WHERE ?1 IS NULL OR k.key = ?1
         ORDER BY k.facility, k.key",
        )
        .map_err(DbError::from)?;
    let rows = stmt
        .query_map(params![key], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(DbError::from)?;
    let mut items = Vec::new();
    let (mut received_total, mut applied_total) = (0, 0);
    let mut applied_more_than_once = Vec::new();
    for row in rows {
        let (facility, key, kind, received, verdict, applied) = row.map_err(DbError::from)?;
        received_total += received;
        applied_total += applied;
        if applied > 1 {
            applied_more_than_once.push(key.clone());
        }
        let verdict: Value = verdict.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or(Value::Null);
        items.push(json!({
            "facility": facility, "key": key, "kind": kind,
            "received": received, "applied": applied, "verdict": verdict,
        }));
    }
    Ok(json!({
        "ok": true,
        "command": "deliveries",
        "keys": items.len(),
        "received": received_total,
        "applied": applied_total,
        "applied_more_than_once": applied_more_than_once,
        "items": items,
    }))
}

fn show(db: &Db, what: &ShowWhat) -> Result<Value, AdminError> {
    match what {
        ShowWhat::Contact { id } => match db.entity(&EntityKey::Contact(ContactId(*id)))? {
            Some(e) => Ok(entity_json(&e)),
            None => Err(AdminError::NotFound(format!("contact {id}"))),
        },
        ShowWhat::Resident { id } => {
            let resident_id = ResidentId::new(id.as_str());
            let Some(resident) = db.entity(&EntityKey::Resident(resident_id.clone()))? else {
                return Err(AdminError::NotFound(format!("resident {id}")));
            };
            let mut contacts: Vec<ContactRecord> = db
                .live_of_kind("contact")?
                .into_iter()
                .filter_map(|e| match e {
                    Entity::Contact(c) if c.resident == resident_id => Some(c),
                    _ => None,
                })
                .collect();
            contacts.sort_by_key(|c| c.id);
            let contacts: Vec<Value> =
                contacts.into_iter().map(|c| entity_json(&Entity::Contact(c))).collect();
            let suspensions: Vec<Value> = db
                .live_of_kind("suspension")?
                .iter()
                .filter(|e| matches!(e, Entity::Suspension(s) if s.resident == resident_id))
                .map(entity_json)
                .collect();
            let stamps: Vec<Value> = db
                .live_of_kind("stamp_count")?
                .iter()
                .filter(|e| matches!(e, Entity::StampCount(s) if s.resident == resident_id))
                .map(entity_json)
                .collect();
            let mail: Vec<Value> = db
                .live_of_kind("mail")?
                .iter()
                .filter(|e| matches!(e, Entity::Mail(m) if m.message.resident == resident_id))
                .map(entity_json)
                .collect();
            Ok(json!({
                "resident": entity_json(&resident),
                "contacts": contacts,
                "suspensions": suspensions,
                "stamps": stamps,
                "mail": mail,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    use clap::Parser;

    use super::*;
    use crate::db::Row;
    use crate::fixture::{demo_ids as ids, Fixture};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AdminCommand,
    }

    fn parse(args: &[&str]) -> AdminCommand {
        let argv = std::iter::once("admin").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}")).command
    }

    fn seeded() -> Db {
        let mut db = Db::open_in_memory().unwrap();
        db.seed(&Fixture::embedded().unwrap()).unwrap();
        db
    }

    fn dump(db: &Db) -> BTreeMap<String, Row> {
        db.all_rows().unwrap().into_iter().map(|r| (r.key.clone(), r)).collect()
    }

    fn contact_key(id: u64) -> String {
        crate::db::key_text(&EntityKey::Contact(ContactId(id))).unwrap()
    }

    fn resident_key(id: &str) -> String {
        crate::db::key_text(&EntityKey::Resident(ResidentId::new(id))).unwrap()
    }

    fn block_key(number: &str, scope: BlockScope) -> String {
        crate::db::key_text(&EntityKey::Block(BlockRecord { number: number.into(), scope })).unwrap()
    }

    /// Runs `args` and checks that exactly the rows `keys` changed, each to a
    /// fresh seq above the old head, and that the head moved by one per row.
    /// Returns the rows after the command.
    fn run_changing(db: &mut Db, args: &[&str], keys: &[String]) -> BTreeMap<String, Row> {
        let before = dump(db);
        let head = db.head_info().unwrap().head;
        let out = run(db, &parse(args)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(out["changed"], true, "{args:?}: {out}");
        let after = dump(db);
        assert_eq!(db.head_info().unwrap().head, head + keys.len() as u64, "{args:?}");
        let all_keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in all_keys {
            if keys.contains(key) {
                let row = &after[key];
                assert!(row.seq > head, "{args:?}: {key} got a new seq");
                assert_ne!(before.get(key), Some(row), "{args:?}: {key} changed");
            } else {
                assert_eq!(before.get(key), after.get(key), "{args:?}: {key} must not change");
            }
        }
        after
    }

    fn contact_in(rows: &BTreeMap<String, Row>, id: u64) -> ContactRecord {
        match &rows[&contact_key(id)].entity {
            Some(Entity::Contact(c)) => c.clone(),
            other => panic!("contact {id}: {other:?}"),
        }
    }

    fn original_contact(id: u64) -> ContactRecord {
        let f = Fixture::embedded().unwrap();
        f.facilities[0].contacts.iter().find(|c| c.id == ContactId(id)).unwrap().clone()
    }

    #[test]
    fn approve_changes_one_service_of_one_contact() {
        let mut db = seeded();
        let id = ids::CONTACT_VOICE_PENDING.to_string();
        let rows = run_changing(
            &mut db,
            &["approve", "--contact", &id, "--service", "voice", "--status", "approved"],
            &[contact_key(ids::CONTACT_VOICE_PENDING)],
        );
        let mut expected = original_contact(ids::CONTACT_VOICE_PENDING);
        expected.approvals.voice = Approval::Approved;
        assert_eq!(contact_in(&rows, ids::CONTACT_VOICE_PENDING), expected);

        let rows = run_changing(
            &mut db,
            &["approve", "--contact", "1", "--service", "message", "--status", "rejected"],
            &[contact_key(1)],
        );
        let mut expected = original_contact(1);
        expected.approvals.message = Approval::Rejected;
        assert_eq!(contact_in(&rows, 1), expected);
    }

    #[test]
    fn contact_money_and_account_commands() {
        let mut db = seeded();
        let mut expected = original_contact(1);
        let rows = run_changing(&mut db, &["balance", "--contact", "1", "--cents", "0"], &[contact_key(1)]);
        expected.video_balance_cents = 0;
        assert_eq!(contact_in(&rows, 1), expected);
        let rows =
            run_changing(&mut db, &["rate", "--contact", "1", "--cents-per-min", "25"], &[contact_key(1)]);
        expected.video_rate_cents_per_min = 25;
        assert_eq!(contact_in(&rows, 1), expected);
        let rows = run_changing(&mut db, &["close-account", "--contact", "1"], &[contact_key(1)]);
        expected.account_status = AccountStatus::Closed;
        assert_eq!(contact_in(&rows, 1), expected);
        let rows = run_changing(&mut db, &["reopen-account", "--contact", "1"], &[contact_key(1)]);
        expected.account_status = AccountStatus::Active;
        assert_eq!(contact_in(&rows, 1), expected);
    }

    #[test]
    fn block_and_unblock_per_scope() {
        let mut db = seeded();
        let number = ids::NUMBER_APPROVED;
        let all = block_key(number, BlockScope::AllFacilities);
        let here = block_key(number, BlockScope::Facility(FacilityId::new(ids::FACILITY)));
        let rows = run_changing(&mut db, &["block", "--number", number, "--all"], std::slice::from_ref(&all));
        assert_eq!(rows[&all].facility, None, "blocks reach every facility");
        run_changing(
            &mut db,
            &["block", "--number", number, "--facility", ids::FACILITY],
            std::slice::from_ref(&here),
        );
        let rows =
            run_changing(&mut db, &["unblock", "--number", number, "--all"], std::slice::from_ref(&all));
        assert_eq!(rows[&all].entity, None, "unblock leaves a tombstone");
        assert!(rows[&here].entity.is_some(), "the facility block stays");
        run_changing(&mut db, &["unblock", "--number", number, "--facility", ids::FACILITY], &[here]);
    }

    #[test]
    fn suspend_and_unsuspend() {
        let mut db = seeded();
        let key = crate::db::key_text(&EntityKey::Suspension(3)).unwrap();
        let rows = run_changing(
            &mut db,
            &[
                "suspend",
                "--resident",
                "R1010",
                "--services",
                "video,voice",
                "--until",
                "2030-02-28",
                "--reason",
                "hearing",
            ],
            std::slice::from_ref(&key),
        );
        assert_eq!(
            rows[&key].entity,
            Some(Entity::Suspension(SuspensionRecord {
                id: 3,
                resident: ResidentId::new("R1010"),
                services: vec![Service::Voice, Service::Video],
                ends_on: jiff::civil::date(2030, 2, 28),
                reason: "hearing".into(),
            }))
        );
        assert_eq!(rows[&key].facility.as_deref(), Some(ids::FACILITY));
        let rows = run_changing(&mut db, &["unsuspend", "--id", "3"], std::slice::from_ref(&key));
        assert_eq!(rows[&key].entity, None);
        let next = crate::db::key_text(&EntityKey::Suspension(4)).unwrap();
        run_changing(
            &mut db,
            &[
                "suspend",
                "--resident",
                "R1010",
                "--services",
                "message",
                "--until",
                "2030-03-01",
                "--reason",
                "x",
            ],
            &[next],
        );
    }

    #[test]
    fn privileged_numbers() {
        let mut db = seeded();
        let key = crate::db::key_text(&EntityKey::Privileged("+15305550199".into())).unwrap();
        let rows = run_changing(
            &mut db,
            &["privileged", "add", "--number", "+15305550199", "--label", "Legal aid"],
            std::slice::from_ref(&key),
        );
        assert_eq!(
            rows[&key].entity,
            Some(Entity::Privileged(PrivilegedNumberRecord {
                number: "+15305550199".into(),
                label: "Legal aid".into()
            }))
        );
        let rows = run_changing(
            &mut db,
            &["privileged", "remove", "--number", "+15305550199"],
            std::slice::from_ref(&key),
        );
        assert_eq!(rows[&key].entity, None);
    }

    #[test]
    fn resident_changes_and_new_pin_verifies() {
        let mut db = seeded();
        let key = resident_key("R1002");
        let rows = run_changing(
            &mut db,
            &["resident", "--id", "R1002", "--active", "false", "--debit-cents", "-150", "--pin", "8642"],
            std::slice::from_ref(&key),
        );
        let Some(Entity::Resident(r)) = &rows[&key].entity else { panic!() };
        assert!(!r.active);
        assert_eq!(r.debit_balance_cents, -150);
        let hash = PasswordHash::new(&r.pin_hash).unwrap();
        assert!(Argon2::default().verify_password(b"8642", &hash).is_ok());
        assert!(Argon2::default().verify_password(b"1234", &hash).is_err());
    }

    #[test]
    fn facility_settings() {
        let mut db = seeded();
        let key = crate::db::facility_row_key(&FacilityId::new(ids::FACILITY)).unwrap();
        let rows = run_changing(
            &mut db,
            &["facility", "--id", ids::FACILITY, "--voice-limit-secs", "600", "--tz", "America/Denver"],
            std::slice::from_ref(&key),
        );
        let Some(Entity::Facility(f)) = &rows[&key].entity else { panic!() };
        assert_eq!(f.voice_limit_secs, 600);
        assert_eq!(f.video_limit_secs, FacilityRecord::DEFAULT_VIDEO_LIMIT_SECS);
        assert_eq!(f.time_zone, "America/Denver");
    }

    #[test]
    fn schedule_replaces_one_weekday() {
        let mut db = seeded();
        let key = crate::db::key_text(&EntityKey::Unit(UnitId::new("B"))).unwrap();
        let rows = run_changing(
            &mut db,
            &["schedule", "--unit", "B", "--weekday", "2", "--windows", "13:00-24:00,06:30-08:00"],
            std::slice::from_ref(&key),
        );
        let Some(Entity::Unit(u)) = &rows[&key].entity else { panic!() };
        let tuesday: Vec<(u16, u16)> =
            u.schedule.iter().filter(|w| w.weekday == 2).map(|w| (w.start_minute, w.end_minute)).collect();
        assert_eq!(tuesday, vec![(390, 480), (780, 1440)]);
        let monday: Vec<(u16, u16)> =
            u.schedule.iter().filter(|w| w.weekday == 1).map(|w| (w.start_minute, w.end_minute)).collect();
        assert_eq!(monday, vec![(480, 690), (780, 1290)], "other days untouched");
        let rows = run_changing(
            &mut db,
            &["schedule", "--unit", "B", "--weekday", "2", "--windows", ""],
            std::slice::from_ref(&key),
        );
        let Some(Entity::Unit(u)) = &rows[&key].entity else { panic!() };
        assert!(u.schedule.iter().all(|w| w.weekday != 2));
    }

    #[test]
    fn cap_usage_record() {
        let mut db = seeded();
        let key = crate::db::key_text(&EntityKey::CapUsage {
            resident: ResidentId::new("R1001"),
            kind: CallKind::Video,
            period_start: jiff::civil::date(2025, 1, 6),
        })
        .unwrap();
        let rows = run_changing(
            &mut db,
            &[
                "cap-usage",
                "--resident",
                "R1001",
                "--kind",
                "video",
                "--period-start",
                "2025-01-06",
                "--used-secs",
                "3600",
            ],
            std::slice::from_ref(&key),
        );
        let Some(Entity::CapUsage(u)) = &rows[&key].entity else { panic!() };
        assert_eq!(u.used_secs, 3600);
    }

    #[test]
    fn a_command_that_changes_nothing_spends_no_seq() {
        let mut db = seeded();
        let before = dump(&db);
        let out = run(
            &mut db,
            &parse(&["approve", "--contact", "1", "--service", "voice", "--status", "approved"]),
        )
        .unwrap();
        assert_eq!(out["changed"], false);
        assert_eq!(out["seq"], Value::Null);
        let out = run(&mut db, &parse(&["block", "--number", ids::NUMBER_BLOCKED_ALL, "--all"])).unwrap();
        assert_eq!(out["changed"], false);
        assert_eq!(dump(&db), before);
    }

    #[test]
    fn bad_input_changes_nothing_and_is_reported_as_the_operators_error() {
        let mut db = seeded();
        let before = dump(&db);
        let head = db.head_info().unwrap();
        let cases: &[&[&str]] = &[
            &["approve", "--contact", "9999", "--service", "voice", "--status", "approved"],
            &["balance", "--contact", "1", "--cents", "-5"],
            &["balance", "--contact", "9999", "--cents", "5"],
            &["rate", "--contact", "1", "--cents-per-min", "99999"],
            &["close-account", "--contact", "0"],
            &["block", "--number", "5551234", "--all"],
            &["block", "--number", "+1555abc0100", "--all"],
            &["block", "--number", "+15555550100", "--facility", "Not A Facility!"],
            &["unblock", "--number", "+15555550100", "--all"],
            &["unblock", "--number", ids::NUMBER_BLOCKED_ALL, "--facility", ids::FACILITY],
            &[
                "suspend",
                "--resident",
                "R9999",
                "--services",
                "voice",
                "--until",
                "2030-01-01",
                "--reason",
                "x",
            ],
            &[
                "suspend",
                "--resident",
                "R1001",
                "--services",
                "voice",
                "--until",
                "2030-02-30",
                "--reason",
                "x",
            ],
            &[
                "suspend",
                "--resident",
                "R1001",
                "--services",
                "voice",
                "--until",
                "2030-01-01",
                "--reason",
                " ",
            ],
            &["unsuspend", "--id", "99"],
            &["privileged", "add", "--number", "attorney"],
            &["privileged", "remove", "--number", "+15305550199"],
            &["resident", "--id", "R1001"],
            &["resident", "--id", "R1001", "--pin", "12a4"],
            &["resident", "--id", "R1001", "--pin", "12"],
            &["resident", "--id", "R9999", "--active", "false"],
            &["facility", "--id", ids::FACILITY, "--tz", "Mars/Olympus_Mons"],
            &["facility", "--id", ids::FACILITY, "--voice-limit-secs", "5"],
            &["facility", "--id", "nowhere", "--voice-limit-secs", "600"],
            &["facility", "--id", ids::FACILITY],
            &["schedule", "--unit", "A", "--weekday", "8", "--windows", "08:00-09:00"],
            &["schedule", "--unit", "A", "--weekday", "0", "--windows", "08:00-09:00"],
            &["schedule", "--unit", "A", "--weekday", "1", "--windows", "09:00-08:00"],
            &["schedule", "--unit", "A", "--weekday", "1", "--windows", "08:00-10:00,09:00-11:00"],
            &["schedule", "--unit", "A", "--weekday", "1", "--windows", "8-10"],
            &["schedule", "--unit", "A", "--weekday", "1", "--windows", "08:00-24:30"],
            &["schedule", "--unit", "Z", "--weekday", "1", "--windows", "08:00-09:00"],
            &[
                "cap-usage",
                "--resident",
                "R1001",
                "--kind",
                "video",
                "--period-start",
                "soon",
                "--used-secs",
                "1",
            ],
            &["show", "contact", "9999"],
            &["show", "resident", "R9999"],
            &["stamps", "--resident", "R1002", "--contact", "1", "--count", "3"],
            &["stamps", "--resident", "R1001", "--contact", "9999", "--count", "3"],
            &["review", "--message", "not-hex", "--approve"],
            &["review", "--message", "123456789012345678901234567890123", "--approve"],
            &["review", "--message", "ffff", "--approve"],
            &["review", "--message", "10010004", "--reject", " "],
            &["send-mail", "--contact", "4", "--subject", "s", "--body", "b"],
            &["send-mail", "--contact", "9999", "--subject", "s", "--body", "b"],
            &["send-mail", "--contact", "1", "--subject", " ", "--body", ""],
            &["send-mail", "--contact", "1", "--subject", "s", "--body", "b", "--attach-ecard", "99"],
            &[
                "send-mail",
                "--contact",
                "1",
                "--subject",
                "s",
                "--body",
                "b",
                "--attach-ecard",
                "1",
                "--attach-ecard",
                "2",
                "--attach-ecard",
                "3",
                "--attach-ecard",
                "4",
                "--attach-ecard",
                "5",
                "--attach-ecard",
                "6",
            ],
            &["deliveries", "--key", "xyz"],
        ];
        for args in cases {
            let err = run(&mut db, &parse(args)).expect_err(&format!("{args:?} must fail"));
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
            assert_eq!(dump(&db), before, "{args:?} changed the database");
            assert_eq!(db.head_info().unwrap(), head, "{args:?}");
        }
    }

    #[test]
    fn show_and_head_and_compact() {
        let mut db = seeded();
        let out = run(&mut db, &parse(&["show", "resident", ids::RESIDENT])).unwrap();
        let contacts = out["contacts"].as_array().unwrap();
        assert_eq!(contacts.len(), 10);
        assert_eq!(contacts[0]["Contact"]["id"], 1);
        assert_eq!(out["resident"]["Resident"]["id"], ids::RESIDENT);
        let out = run(&mut db, &parse(&["show", "contact", "5"])).unwrap();
        assert_eq!(out["Contact"]["video_balance_cents"], 0);

        run(&mut db, &parse(&["unsuspend", "--id", "1"])).unwrap();
        run(&mut db, &parse(&["unsuspend", "--id", "2"])).unwrap();
        let out = run(&mut db, &parse(&["head"])).unwrap();
        assert_eq!(out["tombstones"], 2);
        let head = out["head"].as_u64().unwrap();
        let out = run(&mut db, &parse(&["compact", "--keep-last", "0"])).unwrap();
        assert_eq!(out["purged"], 2);
        assert_eq!(out["horizon"], head);
        assert_eq!(db.head_info().unwrap().tombstones, 0);
    }

    #[test]
    fn stamps_review_and_catalog_commands() {
        let mut db = seeded();
        let key = crate::db::key_text(&EntityKey::StampCount {
            resident: ResidentId::new(ids::RESIDENT),
            contact: ContactId(ids::CONTACT_CLOSED),
        })
        .unwrap();
        let rows = run_changing(
            &mut db,
            &["stamps", "--resident", ids::RESIDENT, "--contact", "4", "--count", "7"],
            std::slice::from_ref(&key),
        );
        let Some(Entity::StampCount(s)) = &rows[&key].entity else { panic!() };
        assert_eq!(s.stamps, 7);

        let mail_key =
            crate::db::key_text(&EntityKey::Mail(MessageId::from_u128(ids::MAIL_SENT_APPROVED))).unwrap();
        let hex = format!("{:032x}", ids::MAIL_SENT_APPROVED);
        let rows = run_changing(
            &mut db,
            &["review", "--message", &hex, "--reject", "Gang references"],
            std::slice::from_ref(&mail_key),
        );
        let Some(Entity::Mail(m)) = &rows[&mail_key].entity else { panic!() };
        assert_eq!(m.review, Review::Rejected { reason: "Gang references".into() });
        let out =
            run(&mut db, &parse(&["review", "--message", &hex, "--reject", "Gang references"])).unwrap();
        assert_eq!(out["changed"], false, "the same verdict again changes nothing");

        let out = run(&mut db, &parse(&["ecards"])).unwrap();
        let cards = out["ecards"].as_array().unwrap();
        assert_eq!(cards.len(), 12);
        let categories: std::collections::BTreeSet<&str> =
            cards.iter().map(|c| c["ECard"]["category"].as_str().unwrap()).collect();
        assert_eq!(categories, ["Birthdays", "Holidays", "Motivational"].into_iter().collect());
        let out = run(&mut db, &parse(&["packages"])).unwrap();
        let stamps: Vec<u64> = out["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["StampPackage"]["stamps"].as_u64().unwrap())
            .collect();
        assert_eq!(stamps, vec![1, 5, 10, 40]);

        let out = run(&mut db, &parse(&["show", "resident", ids::RESIDENT])).unwrap();
        assert_eq!(out["mail"].as_array().unwrap().len(), 4);
        assert_eq!(out["stamps"].as_array().unwrap().len(), 4);
        let out = run(&mut db, &parse(&["deliveries"])).unwrap();
        assert_eq!((out["keys"].as_u64(), out["applied"].as_u64()), (Some(0), Some(0)));
    }

    #[test]
    fn window_parser() {
        assert_eq!(parse_windows(3, "none").unwrap(), vec![]);
        assert_eq!(
            parse_windows(3, "00:00-24:00").unwrap(),
            vec![CallingWindow { weekday: 3, start_minute: 0, end_minute: 1440 }]
        );
        assert!(parse_windows(3, "08:00-09:00,09:00-10:00").is_ok(), "touching windows are fine");
        assert!(parse_windows(3, "08:60-09:00").is_err());
        assert!(parse_windows(3, "24:00-24:00").is_err());
    }

    #[test]
    fn number_validation() {
        for ok in ["+15551234567", "+442071838750", "911", "411", "+18005550123"] {
            assert!(validate_number(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "+", "15551234567", "+1555", "+0123456789", "+1 555 123 4567", "91", "+1234567890123456"]
        {
            assert!(validate_number(bad).is_err(), "{bad}");
        }
    }
}
