//! The seed data central-sim starts from, and the deterministic generator
//! that produces `fixtures/demo.json`.
//!
//! Owns: the fixture file format and the demo facility's content (see the
//! "Demo fixture" table in the crate README; tests in other crates rely on the
//! well-known IDs in [`demo_ids`]). Must not: touch the database (seeding is
//! [`crate::db::Db::seed`]'s job).

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use jiff::civil::Date;
use proto::domain::*;
use proto::messaging::{
    Attachment, Direction, ECardId, ECardRecord, MailRecord, Message, MessageId, PackageId, Review,
    StampCountRecord, StampPackageRecord, MAX_ATTACHMENTS,
};
use serde::{Deserialize, Serialize};

/// The fixture compiled into the binary, used when `init` gets no `--fixture`.
pub const EMBEDDED_DEMO: &str = include_str!("../fixtures/demo.json");

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("fixture is not valid JSON for this format: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("fixture is inconsistent: {0}")]
    Inconsistent(String),
    #[error("could not hash a demo PIN: {0}")]
    Hash(String),
}

/// Everything central knows at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixture {
    pub facilities: Vec<FacilityFixture>,
    /// Blocks are keyed by number, not by resident, so they live beside the
    /// facilities; central sends every block to every edge and the edge
    /// applies the block's scope.
    pub blocks: Vec<BlockRecord>,
    /// The state's list of privileged (attorney) numbers, sent to every edge.
    pub privileged: Vec<PrivilegedNumberRecord>,
}

/// One facility and everything that belongs to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacilityFixture {
    pub facility: FacilityRecord,
    pub units: Vec<HousingUnitRecord>,
    pub residents: Vec<ResidentRecord>,
    pub contacts: Vec<ContactRecord>,
    pub suspensions: Vec<SuspensionRecord>,
    #[serde(default)]
    pub cap_usage: Vec<CapUsageRecord>,
    /// The eCard catalog residents may attach from.
    #[serde(default)]
    pub ecards: Vec<ECardRecord>,
    /// Stamp packages on sale here, with this facility's prices.
    #[serde(default)]
    pub stamp_packages: Vec<StampPackageRecord>,
    /// Stamps each resident holds per contact (a missing pair holds none).
    #[serde(default)]
    pub stamp_counts: Vec<StampCountRecord>,
    /// Mail central already holds for this facility's residents.
    #[serde(default)]
    pub mail: Vec<MailRecord>,
}

impl Fixture {
    /// Parses a fixture and checks the references between its records.
    pub fn from_json(text: &str) -> Result<Fixture, FixtureError> {
        let fixture: Fixture = serde_json::from_str(text)?;
        fixture.check()?;
        Ok(fixture)
    }

    /// The fixture embedded in the binary.
    pub fn embedded() -> Result<Fixture, FixtureError> {
        Self::from_json(EMBEDDED_DEMO)
    }

    pub fn to_json(&self) -> String {
        // Serialising plain data structs to a String cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Referential checks, so that a hand-edited fixture fails at `init`
    /// rather than producing a feed the edge cannot make sense of.
    pub fn check(&self) -> Result<(), FixtureError> {
        let bad = |msg: String| Err(FixtureError::Inconsistent(msg));
        let mut unit_ids = std::collections::HashSet::new();
        let mut resident_ids = std::collections::HashSet::new();
        let mut contact_ids = std::collections::HashSet::new();
        let mut suspension_ids = std::collections::HashSet::new();
        // Catalog, package and message IDs key feed rows, so they are unique
        // across facilities, like contact IDs.
        let mut ecard_ids = std::collections::HashSet::new();
        let mut package_ids = std::collections::HashSet::new();
        let mut message_ids = std::collections::HashSet::new();
        for f in &self.facilities {
            if jiff::tz::TimeZone::get(&f.facility.time_zone).is_err() {
                return bad(format!("unknown time zone {:?}", f.facility.time_zone));
            }
            let local_units: Vec<&UnitId> = f.units.iter().map(|u| &u.id).collect();
            for u in &f.units {
                if !unit_ids.insert(u.id.clone()) {
                    return bad(format!("duplicate unit {}", u.id));
                }
                for w in &u.schedule {
                    if !(1..=7).contains(&w.weekday) || w.start_minute >= w.end_minute || w.end_minute > 1440
                    {
                        return bad(format!("unit {} has an invalid window {w:?}", u.id));
                    }
                }
            }
            for r in &f.residents {
                if !resident_ids.insert(r.id.clone()) {
                    return bad(format!("duplicate resident {}", r.id));
                }
                if !local_units.contains(&&r.unit) {
                    return bad(format!("resident {} is in unknown unit {}", r.id, r.unit));
                }
            }
            for c in &f.contacts {
                if !contact_ids.insert(c.id) {
                    return bad(format!("duplicate contact {}", c.id));
                }
                if !f.residents.iter().any(|r| r.id == c.resident) {
                    return bad(format!("contact {} belongs to unknown resident {}", c.id, c.resident));
                }
            }
            for s in &f.suspensions {
                if !suspension_ids.insert(s.id) {
                    return bad(format!("duplicate suspension {}", s.id));
                }
                if !f.residents.iter().any(|r| r.id == s.resident) {
                    return bad(format!("suspension {} is for unknown resident {}", s.id, s.resident));
                }
            }
            for u in &f.cap_usage {
                if !f.residents.iter().any(|r| r.id == u.resident) {
                    return bad(format!("cap usage for unknown resident {}", u.resident));
                }
            }
            for e in &f.ecards {
                if !ecard_ids.insert(e.id) {
                    return bad(format!("duplicate eCard {}", e.id));
                }
            }
            for p in &f.stamp_packages {
                if !package_ids.insert(p.id) {
                    return bad(format!("duplicate stamp package {}", p.id));
                }
                if p.stamps == 0 || p.price_cents < 0 {
                    return bad(format!("stamp package {} has no stamps or a negative price", p.id));
                }
            }
            let owns = |resident: &ResidentId, contact: ContactId| {
                f.contacts.iter().any(|c| c.id == contact && &c.resident == resident)
            };
            let mut pairs = std::collections::HashSet::new();
            for s in &f.stamp_counts {
                if !owns(&s.resident, s.contact) {
                    return bad(format!("stamps for {} and contact {}, not theirs", s.resident, s.contact));
                }
                if !pairs.insert((s.resident.clone(), s.contact)) {
                    return bad(format!("two stamp counts for {} and contact {}", s.resident, s.contact));
                }
            }
            for m in &f.mail {
                let msg = &m.message;
                if !message_ids.insert(msg.id) {
                    return bad(format!("duplicate message {}", msg.id));
                }
                if !owns(&msg.resident, msg.contact) {
                    return bad(format!(
                        "message {} between {} and contact {}, not theirs",
                        msg.id, msg.resident, msg.contact
                    ));
                }
                if msg.attachments.len() > MAX_ATTACHMENTS {
                    return bad(format!("message {} has {} attachments", msg.id, msg.attachments.len()));
                }
                for a in &msg.attachments {
                    if let Attachment::ECard(card) = a {
                        if !f.ecards.iter().any(|e| e.id == *card) {
                            return bad(format!("message {} attaches unknown eCard {card}", msg.id));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The well-known records of the demo fixture. Keep in step with the README's
/// "Demo fixture" table: other crates' tests use these IDs.
pub mod demo_ids {
    pub const FACILITY: &str = "demo-ca-01";
    /// A facility central does not serve; one block is scoped to it.
    pub const OTHER_FACILITY: &str = "other-ca-02";
    /// Unit A, active, debit balance 2500 cents. Every resident's PIN is
    /// [`super::DEMO_PIN`].
    pub const RESIDENT: &str = "R1001";
    /// Unit B, active.
    pub const RESIDENT_UNIT_B: &str = "R1002";
    /// Unit C, active, video suspended until 2099-12-31 (suspension 1).
    pub const RESIDENT_SUSPENDED: &str = "R1003";
    /// Unit A, active, had a voice+video suspension that ended 2024-01-31.
    pub const RESIDENT_EXPIRED_SUSPENSION: &str = "R1004";
    /// Inactive resident.
    pub const RESIDENT_INACTIVE: &str = "R1050";

    /// R1001's contacts.
    pub const CONTACT_APPROVED: u64 = 1;
    pub const CONTACT_VOICE_PENDING: u64 = 2;
    pub const CONTACT_BLOCKED_ALL: u64 = 3;
    pub const CONTACT_CLOSED: u64 = 4;
    pub const CONTACT_ZERO_BALANCE: u64 = 5;
    pub const CONTACT_BLOCKED_HERE: u64 = 6;
    pub const CONTACT_BLOCKED_OTHER_FACILITY: u64 = 7;
    pub const CONTACT_PRIVILEGED: u64 = 8;
    pub const CONTACT_BARRED: u64 = 9;
    pub const CONTACT_VIDEO_REJECTED: u64 = 10;

    pub const NUMBER_APPROVED: &str = "+12135550100";
    pub const NUMBER_BLOCKED_ALL: &str = "+14155550100";
    pub const NUMBER_BLOCKED_HERE: &str = "+17145550100";
    pub const NUMBER_BLOCKED_OTHER_FACILITY: &str = "+18185550100";
    pub const NUMBER_PRIVILEGED: &str = "+19165550100";
    pub const NUMBER_BARRED: &str = "+18005550123";

    /// eCards 1..=12: 1-4 "Holidays", 5-8 "Birthdays", 9-12 "Motivational".
    pub const ECARD_FIRST: u64 = 1;
    pub const ECARD_LAST: u64 = 12;
    pub const ECARD_BIRTHDAY: u64 = 5;

    /// Stamp packages (id, stamps, price in cents) at the demo facility.
    pub const PACKAGES: [(u64, u32, i64); 4] = [(1, 1, 50), (2, 5, 225), (3, 10, 400), (4, 40, 1400)];
    pub const PACKAGE_ONE_STAMP: u64 = 1;
    pub const PACKAGE_FORTY_STAMPS: u64 = 4;

    /// R1001's stamps per contact (every other contact of R1001 holds none).
    pub const STAMPS_CONTACT_APPROVED: u32 = 3;
    /// R1001 and contact 2 have an explicit zero count.
    pub const STAMPS_CONTACT_VOICE_PENDING: u32 = 0;
    pub const STAMPS_CONTACT_VIDEO_REJECTED: u32 = 1;

    /// Inbound from contact 1 to R1001, approved, the newest (unread) one,
    /// with the birthday eCard attached.
    pub const MAIL_INBOUND_UNREAD: u128 = 0x0000_0000_0000_0000_0000_0000_1001_0001;
    /// Inbound from contact 2 to R1001, approved, older.
    pub const MAIL_INBOUND_OLDER: u128 = 0x0000_0000_0000_0000_0000_0000_1001_0002;
    /// Sent by R1001 to contact 1 and approved.
    pub const MAIL_SENT_APPROVED: u128 = 0x0000_0000_0000_0000_0000_0000_1001_0003;
    /// Sent by R1001 to contact 1 and rejected with [`MAIL_REJECTION_REASON`].
    pub const MAIL_SENT_REJECTED: u128 = 0x0000_0000_0000_0000_0000_0000_1001_0004;
    pub const MAIL_REJECTION_REASON: &str = "Mentions a three-way call (policy 4.2)";
}

/// Every fixture resident's demo PIN (documented in the README).
pub const DEMO_PIN: &str = "1234";

/// Hashes a demo PIN with the default Argon2id parameters and a salt derived
/// from the resident ID.
///
/// Why precompute into the fixture with a derived salt: `init` then costs no
/// argon2 work (tests create many state dirs), and the generator stays
/// byte-for-byte deterministic so `demo.json` can be checked against it. The
/// PINs are published in the README anyway; PINs set with `admin resident
/// --pin` get a random salt.
pub fn hash_demo_pin(resident: &str) -> Result<String, FixtureError> {
    let salt = SaltString::encode_b64(format!("demo-salt-{resident}").as_bytes())
        .map_err(|e| FixtureError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(DEMO_PIN.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| FixtureError::Hash(e.to_string()))
}

/// A small fixed PRNG (SplitMix64) so that the generated fixture never
/// changes with a dependency's RNG algorithm.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const FIRST_NAMES: &[&str] = &[
    "James",
    "Maria",
    "Robert",
    "Linda",
    "Michael",
    "Patricia",
    "David",
    "Jennifer",
    "Carlos",
    "Elizabeth",
    "Daniel",
    "Susan",
    "Jose",
    "Jessica",
    "Anthony",
    "Sarah",
    "Kevin",
    "Karen",
    "Luis",
    "Nancy",
    "Brian",
    "Lisa",
    "Juan",
    "Angela",
    "Marcus",
    "Denise",
    "Tyrone",
    "Rosa",
    "Andre",
    "Keisha",
    "Miguel",
    "Tanya",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
];

/// Area codes for contact numbers (California and a few neighbours; none is a
/// toll-free or premium code, so only the deliberate barred contact hits a
/// barred prefix).
const AREA_CODES: &[&str] = &[
    "213", "415", "714", "818", "916", "310", "323", "510", "562", "619", "626", "650", "707", "760", "805",
    "909", "925", "949", "951", "702",
];

/// Numbers in the fictional 555-01XX range, unique per index (2000 of them).
fn contact_number(index: usize) -> PhoneNumber {
    let area = AREA_CODES[index % AREA_CODES.len()];
    let line = 100 + (index / AREA_CODES.len()) % 100;
    format!("+1{area}55501{:02}", line - 100)
}

fn minute(h: u16, m: u16) -> u16 {
    h * 60 + m
}

/// A window's local start and end as `((hour, minute), (hour, minute))`.
type Span = ((u16, u16), (u16, u16));

fn windows(days: std::ops::RangeInclusive<u8>, spans: &[Span]) -> Vec<CallingWindow> {
    days.flat_map(|weekday| {
        spans.iter().map(move |&((sh, sm), (eh, em))| CallingWindow {
            weekday,
            start_minute: minute(sh, sm),
            end_minute: minute(eh, em),
        })
    })
    .collect()
}

fn demo_units() -> Vec<HousingUnitRecord> {
    let mut unit_c = Vec::new();
    for weekday in [1u8, 3, 5] {
        unit_c.extend(windows(weekday..=weekday, &[((9, 0), (11, 0)), ((18, 0), (20, 0))]));
    }
    for weekday in [2u8, 4] {
        unit_c.extend(windows(weekday..=weekday, &[((13, 0), (15, 0))]));
    }
    unit_c.extend(windows(6..=7, &[((10, 0), (12, 0))]));
    unit_c.sort_by_key(|w| (w.weekday, w.start_minute));

    let mut unit_b = windows(1..=5, &[((8, 0), (11, 30)), ((13, 0), (21, 30))]);
    unit_b.extend(windows(6..=7, &[((9, 0), (21, 0))]));

    vec![
        HousingUnitRecord {
            id: UnitId::new("A"),
            name: "Unit A - General Population".into(),
            schedule: windows(1..=7, &[((7, 0), (22, 0))]),
        },
        HousingUnitRecord { id: UnitId::new("B"), name: "Unit B - Work Release".into(), schedule: unit_b },
        HousingUnitRecord {
            id: UnitId::new("C"),
            name: "Unit C - Restricted Housing".into(),
            schedule: unit_c,
        },
    ]
}

fn approved_all() -> Approvals {
    Approvals { voice: Approval::Approved, video: Approval::Approved, message: Approval::Approved }
}

const ECARDS: [(&str, &str); 12] = [
    ("Holidays", "Season's Greetings"),
    ("Holidays", "Happy New Year"),
    ("Holidays", "Happy Thanksgiving"),
    ("Holidays", "Happy Mother's Day"),
    ("Birthdays", "Happy Birthday"),
    ("Birthdays", "Another Year Stronger"),
    ("Birthdays", "Birthday Wishes From Afar"),
    ("Birthdays", "Celebrate You"),
    ("Motivational", "Keep Going"),
    ("Motivational", "One Day at a Time"),
    ("Motivational", "Proud of You"),
    ("Motivational", "Thinking of You"),
];

fn demo_ecards() -> Vec<ECardRecord> {
    (demo_ids::ECARD_FIRST..)
        .zip(ECARDS)
        .map(|(id, (category, title))| ECardRecord {
            id: ECardId(id),
            category: category.into(),
            title: title.into(),
        })
        .collect()
}

/// R1001's documented counts, then a seeded mix for a third of the other
/// contacts approved for messaging (some of them zero). Drawn from its own
/// generator so the records above never shift when this part changes.
fn demo_stamp_counts(contacts: &[ContactRecord]) -> Vec<StampCountRecord> {
    use demo_ids as ids;
    let r1001 = ResidentId::new(ids::RESIDENT);
    let mut counts: Vec<StampCountRecord> = [
        (ids::CONTACT_APPROVED, ids::STAMPS_CONTACT_APPROVED),
        (ids::CONTACT_VOICE_PENDING, ids::STAMPS_CONTACT_VOICE_PENDING),
        (ids::CONTACT_VIDEO_REJECTED, ids::STAMPS_CONTACT_VIDEO_REJECTED),
    ]
    .into_iter()
    .map(|(contact, stamps)| StampCountRecord {
        resident: r1001.clone(),
        contact: ContactId(contact),
        stamps,
    })
    .collect();
    let mut rng = SplitMix(0x57A3_9500_0000_0001);
    for c in contacts.iter().filter(|c| c.resident != r1001 && c.approvals.message == Approval::Approved) {
        if rng.chance(33) {
            let stamps = if rng.chance(25) { 0 } else { 1 + rng.below(12) as u32 };
            counts.push(StampCountRecord { resident: c.resident.clone(), contact: c.id, stamps });
        }
    }
    counts
}

fn demo_time(text: &str) -> Result<jiff::Timestamp, FixtureError> {
    text.parse().map_err(|e: jiff::Error| FixtureError::Inconsistent(format!("demo time {text}: {e}")))
}

fn demo_mail() -> Result<Vec<MailRecord>, FixtureError> {
    use demo_ids as ids;
    let mail = |id: u128, contact: u64, direction: Direction, subject: &str, body: &str, sent_at: &str| {
        Ok::<_, FixtureError>(Message {
            id: MessageId::from_u128(id),
            resident: ResidentId::new(ids::RESIDENT),
            contact: ContactId(contact),
            direction,
            subject: subject.into(),
            body: body.into(),
            attachments: Vec::new(),
            sent_at: demo_time(sent_at)?,
        })
    };
    let mut unread = mail(
        ids::MAIL_INBOUND_UNREAD,
        ids::CONTACT_APPROVED,
        Direction::ContactToResident,
        "Happy birthday!",
        "Thinking of you today. The kids made you a card too. Love, Maria",
        "2025-03-14T17:05:00Z",
    )?;
    unread.attachments.push(Attachment::ECard(ECardId(ids::ECARD_BIRTHDAY)));
    Ok(vec![
        MailRecord {
            message: mail(
                ids::MAIL_INBOUND_OLDER,
                ids::CONTACT_VOICE_PENDING,
                Direction::ContactToResident,
                "Visiting schedule",
                "I put in for the visit on the 22nd. Will let you know when it is confirmed.",
                "2025-03-02T20:30:00Z",
            )?,
            review: Review::Approved,
        },
        MailRecord {
            message: mail(
                ids::MAIL_SENT_APPROVED,
                ids::CONTACT_APPROVED,
                Direction::ResidentToContact,
                "Thank you",
                "Got the photos. Tell everyone I said hello.",
                "2025-03-05T16:00:00Z",
            )?,
            review: Review::Approved,
        },
        MailRecord {
            message: mail(
                ids::MAIL_SENT_REJECTED,
                ids::CONTACT_APPROVED,
                Direction::ResidentToContact,
                "Sunday",
                "Can you patch my brother in when I call on Sunday?",
                "2025-03-09T18:45:00Z",
            )?,
            review: Review::Rejected { reason: ids::MAIL_REJECTION_REASON.into() },
        },
        MailRecord { message: unread, review: Review::Approved },
    ])
}

/// Builds the demo fixture. Deterministic: the same code always yields the
/// same fixture, which the test suite compares against `fixtures/demo.json`.
pub fn generate() -> Result<Fixture, FixtureError> {
    use demo_ids as ids;
    let mut rng = SplitMix(0x000F_AC11_17E0_DE40);
    let facility_id = FacilityId::new(ids::FACILITY);

    let mut facility =
        FacilityRecord::with_defaults(facility_id.clone(), "Demo State Prison", "America/Los_Angeles");
    facility.caps.push(CapRule {
        kind: CallKind::Video,
        minutes: 600,
        period_days: 14,
        // A Monday.
        anchor: jiff::civil::date(2025, 1, 6),
    });

    let units = demo_units();
    let unit_ids = ["A", "B", "C"];
    let mut residents = Vec::new();
    for i in 0..50usize {
        let id = format!("R{}", 1001 + i);
        let name = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
        let unit = unit_ids[i % 3];
        let debit_balance_cents = if id == ids::RESIDENT { 2500 } else { (rng.below(400) * 50) as Cents };
        residents.push(ResidentRecord {
            pin_hash: hash_demo_pin(&id)?,
            id: ResidentId::new(id.clone()),
            name,
            unit: UnitId::new(unit),
            debit_balance_cents,
            active: id != ids::RESIDENT_INACTIVE,
        });
    }

    let mut contacts = Vec::new();
    let r1001 = ResidentId::new(ids::RESIDENT);
    let special = |id: u64, name: &str, number: &str| ContactRecord {
        id: ContactId(id),
        resident: r1001.clone(),
        name: name.into(),
        account_status: AccountStatus::Active,
        approvals: approved_all(),
        numbers: vec![number.to_string()],
        video_balance_cents: 2000,
        video_rate_cents_per_min: 20,
    };
    // R1001's contacts: one per rule the edge must enforce.
    let mut c = special(ids::CONTACT_APPROVED, "Maria Alvarez", ids::NUMBER_APPROVED);
    c.numbers.push("+13105550100".into());
    c.video_balance_cents = 2500;
    contacts.push(c);
    let mut c = special(ids::CONTACT_VOICE_PENDING, "Daniel Alvarez", "+13235550100");
    c.approvals.voice = Approval::Pending;
    contacts.push(c);
    contacts.push(special(ids::CONTACT_BLOCKED_ALL, "Rosa Lopez", ids::NUMBER_BLOCKED_ALL));
    let mut c = special(ids::CONTACT_CLOSED, "Tanya Brooks", "+15105550100");
    c.account_status = AccountStatus::Closed;
    contacts.push(c);
    let mut c = special(ids::CONTACT_ZERO_BALANCE, "Kevin Alvarez", "+15625550100");
    c.video_balance_cents = 0;
    contacts.push(c);
    contacts.push(special(ids::CONTACT_BLOCKED_HERE, "Luis Garcia", ids::NUMBER_BLOCKED_HERE));
    contacts.push(special(
        ids::CONTACT_BLOCKED_OTHER_FACILITY,
        "Angela Reed",
        ids::NUMBER_BLOCKED_OTHER_FACILITY,
    ));
    let mut c = special(ids::CONTACT_PRIVILEGED, "Law Office of J. Chen", ids::NUMBER_PRIVILEGED);
    c.approvals.video = Approval::Rejected;
    c.video_balance_cents = 0;
    contacts.push(c);
    contacts.push(special(ids::CONTACT_BARRED, "Helpline", ids::NUMBER_BARRED));
    let mut c = special(ids::CONTACT_VIDEO_REJECTED, "Marcus Bell", "+16195550100");
    c.approvals.video = Approval::Rejected;
    contacts.push(c);

    // 190 more spread over R1002..R1050, numbers continuing after the ones above.
    let mut number_index = 40;
    let mut next_id = 11u64;
    let mut resident_index = 1usize;
    while next_id <= 200 {
        let resident = residents[resident_index].id.clone();
        resident_index = if resident_index == residents.len() - 1 { 1 } else { resident_index + 1 };
        let mut approvals = approved_all();
        if rng.chance(12) {
            approvals.voice = if rng.chance(70) { Approval::Pending } else { Approval::Rejected };
        }
        if rng.chance(18) {
            approvals.video = if rng.chance(60) { Approval::Pending } else { Approval::Rejected };
        }
        if rng.chance(10) {
            approvals.message = if rng.chance(70) { Approval::Pending } else { Approval::Rejected };
        }
        let mut numbers = vec![contact_number(number_index)];
        number_index += 1;
        if rng.chance(15) {
            numbers.push(contact_number(number_index));
            number_index += 1;
        }
        contacts.push(ContactRecord {
            id: ContactId(next_id),
            resident,
            name: format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)),
            account_status: if rng.chance(4) { AccountStatus::Closed } else { AccountStatus::Active },
            approvals,
            numbers,
            video_balance_cents: if rng.chance(20) { 0 } else { (rng.below(100) * 50 + 100) as Cents },
            video_rate_cents_per_min: 15 + rng.below(11) as u32,
        });
        next_id += 1;
    }

    // A second attorney, used by one ordinary contact.
    let second_attorney = contact_number(number_index);
    if let Some(c) = contacts.iter_mut().find(|c| c.id == ContactId(57)) {
        c.name = "Public Defender's Office".into();
        c.numbers = vec![second_attorney.clone()];
        c.approvals.video = Approval::Rejected;
    }

    let this_facility = BlockScope::Facility(facility_id.clone());
    let number_of = |id: u64| contacts.iter().find(|c| c.id == ContactId(id)).map(|c| c.numbers[0].clone());
    let mut blocks = vec![
        BlockRecord { number: ids::NUMBER_BLOCKED_ALL.into(), scope: BlockScope::AllFacilities },
        BlockRecord { number: ids::NUMBER_BLOCKED_HERE.into(), scope: this_facility.clone() },
        BlockRecord {
            number: ids::NUMBER_BLOCKED_OTHER_FACILITY.into(),
            scope: BlockScope::Facility(FacilityId::new(ids::OTHER_FACILITY)),
        },
    ];
    for (id, scope) in [
        (23, BlockScope::AllFacilities),
        (88, BlockScope::AllFacilities),
        (131, this_facility.clone()),
        (176, this_facility),
    ] {
        if let Some(number) = number_of(id) {
            blocks.push(BlockRecord { number, scope });
        }
    }

    let privileged = vec![
        PrivilegedNumberRecord {
            number: ids::NUMBER_PRIVILEGED.into(),
            label: "Law Office of J. Chen".into(),
        },
        PrivilegedNumberRecord { number: second_attorney, label: "County Public Defender".into() },
    ];

    let suspensions = vec![
        SuspensionRecord {
            id: 1,
            resident: ResidentId::new(ids::RESIDENT_SUSPENDED),
            services: vec![Service::Video],
            ends_on: Date::constant(2099, 12, 31),
            reason: "Video visitation misuse (incident 24-0117)".into(),
        },
        SuspensionRecord {
            id: 2,
            resident: ResidentId::new(ids::RESIDENT_EXPIRED_SUSPENSION),
            services: vec![Service::Voice, Service::Video],
            ends_on: Date::constant(2024, 1, 31),
            reason: "Disciplinary hearing 23-0912 (served)".into(),
        },
    ];

    let stamp_counts = demo_stamp_counts(&contacts);
    let fixture = Fixture {
        facilities: vec![FacilityFixture {
            facility,
            units,
            residents,
            contacts,
            suspensions,
            cap_usage: Vec::new(),
            ecards: demo_ecards(),
            stamp_packages: ids::PACKAGES
                .iter()
                .map(|&(id, stamps, price_cents)| StampPackageRecord {
                    id: PackageId(id),
                    stamps,
                    price_cents,
                })
                .collect(),
            stamp_counts,
            mail: demo_mail()?,
        }],
        blocks,
        privileged,
    };
    fixture.check()?;
    Ok(fixture)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn embedded_fixture_is_exactly_what_the_generator_produces() {
        let generated = generate().unwrap();
        assert_eq!(generated.to_json(), EMBEDDED_DEMO, "run `central-sim gen-fixture` to refresh demo.json");
        assert_eq!(Fixture::embedded().unwrap(), generated);
        assert_eq!(generate().unwrap(), generated, "generator must be deterministic");
    }

    fn contact(f: &FacilityFixture, id: u64) -> &ContactRecord {
        f.contacts.iter().find(|c| c.id == ContactId(id)).unwrap()
    }

    #[test]
    fn documented_demo_ids_have_the_documented_properties() {
        use demo_ids as ids;
        let fixture = Fixture::embedded().unwrap();
        let f = &fixture.facilities[0];
        assert_eq!(f.facility.id.as_str(), ids::FACILITY);
        assert_eq!(f.facility.time_zone, "America/Los_Angeles");
        assert_eq!(f.units.len(), 3);
        assert_eq!(f.residents.len(), 50);
        assert_eq!(f.contacts.len(), 200);

        let r = f.residents.iter().find(|r| r.id.as_str() == ids::RESIDENT).unwrap();
        assert!(r.active);
        assert_eq!(r.unit.as_str(), "A");
        let hash = PasswordHash::new(&r.pin_hash).unwrap();
        assert!(Argon2::default().verify_password(b"1234", &hash).is_ok());
        assert!(Argon2::default().verify_password(b"1235", &hash).is_err());
        assert!(!f.residents.iter().find(|r| r.id.as_str() == ids::RESIDENT_INACTIVE).unwrap().active);
        assert_eq!(f.residents.iter().filter(|r| !r.active).count(), 1);

        let for_r1001 = |id| {
            let c = contact(f, id);
            assert_eq!(c.resident.as_str(), ids::RESIDENT);
            c
        };
        let ok = for_r1001(ids::CONTACT_APPROVED);
        assert_eq!(ok.approvals, approved_all());
        assert!(ok.video_balance_cents > 0);
        assert_eq!(ok.account_status, AccountStatus::Active);
        assert_eq!(ok.numbers[0], ids::NUMBER_APPROVED);
        assert_eq!(for_r1001(ids::CONTACT_VOICE_PENDING).approvals.voice, Approval::Pending);
        assert_eq!(for_r1001(ids::CONTACT_CLOSED).account_status, AccountStatus::Closed);
        assert_eq!(for_r1001(ids::CONTACT_ZERO_BALANCE).video_balance_cents, 0);
        assert_eq!(for_r1001(ids::CONTACT_VIDEO_REJECTED).approvals.video, Approval::Rejected);
        let block_of = |id| {
            let number = &for_r1001(id).numbers[0];
            fixture.blocks.iter().filter(|b| &b.number == number).map(|b| b.scope.clone()).collect::<Vec<_>>()
        };
        assert_eq!(block_of(ids::CONTACT_BLOCKED_ALL), vec![BlockScope::AllFacilities]);
        assert_eq!(
            block_of(ids::CONTACT_BLOCKED_HERE),
            vec![BlockScope::Facility(FacilityId::new(ids::FACILITY))]
        );
        assert_eq!(
            block_of(ids::CONTACT_BLOCKED_OTHER_FACILITY),
            vec![BlockScope::Facility(FacilityId::new(ids::OTHER_FACILITY))]
        );
        assert!(block_of(ids::CONTACT_APPROVED).is_empty());
        let privileged = &for_r1001(ids::CONTACT_PRIVILEGED).numbers[0];
        assert!(fixture.privileged.iter().any(|p| &p.number == privileged));
        let barred = &for_r1001(ids::CONTACT_BARRED).numbers[0];
        assert!(f.facility.barred_prefixes.iter().any(|p| barred[2..].starts_with(p.as_str())));

        let suspended =
            f.suspensions.iter().find(|s| s.resident.as_str() == ids::RESIDENT_SUSPENDED).unwrap();
        assert_eq!(suspended.services, vec![Service::Video]);
    }

    #[test]
    fn documented_messaging_records_have_the_documented_properties() {
        use demo_ids as ids;
        let fixture = Fixture::embedded().unwrap();
        let f = &fixture.facilities[0];
        assert_eq!(f.ecards.len(), 12);
        for (range, category) in [(1..=4, "Holidays"), (5..=8, "Birthdays"), (9..=12, "Motivational")] {
            for id in range {
                let card = f.ecards.iter().find(|e| e.id == ECardId(id)).unwrap();
                assert_eq!(card.category, category, "eCard {id}");
            }
        }
        let packages: Vec<(u64, u32, Cents)> =
            f.stamp_packages.iter().map(|p| (p.id.0, p.stamps, p.price_cents)).collect();
        assert_eq!(packages, ids::PACKAGES.to_vec());

        let stamps = |contact: u64| {
            f.stamp_counts
                .iter()
                .find(|s| s.resident.as_str() == ids::RESIDENT && s.contact == ContactId(contact))
                .map(|s| s.stamps)
        };
        assert_eq!(stamps(ids::CONTACT_APPROVED), Some(ids::STAMPS_CONTACT_APPROVED));
        assert_eq!(stamps(ids::CONTACT_VOICE_PENDING), Some(0));
        assert_eq!(stamps(ids::CONTACT_VIDEO_REJECTED), Some(ids::STAMPS_CONTACT_VIDEO_REJECTED));
        assert_eq!(stamps(ids::CONTACT_ZERO_BALANCE), None);
        assert!(f.stamp_counts.iter().filter(|s| s.resident.as_str() != ids::RESIDENT).count() > 20);
        assert!(f.stamp_counts.iter().any(|s| s.resident.as_str() != ids::RESIDENT && s.stamps == 0));

        let mail = |id: u128| f.mail.iter().find(|m| m.message.id == MessageId::from_u128(id)).unwrap();
        let unread = mail(ids::MAIL_INBOUND_UNREAD);
        assert_eq!(unread.message.direction, Direction::ContactToResident);
        assert_eq!(unread.message.contact, ContactId(ids::CONTACT_APPROVED));
        assert_eq!(unread.review, Review::Approved);
        assert_eq!(unread.message.attachments, vec![Attachment::ECard(ECardId(ids::ECARD_BIRTHDAY))]);
        assert!(f.mail.iter().all(|m| m.message.sent_at <= unread.message.sent_at), "the newest");
        assert_eq!(mail(ids::MAIL_INBOUND_OLDER).message.direction, Direction::ContactToResident);
        assert_eq!(mail(ids::MAIL_SENT_APPROVED).message.direction, Direction::ResidentToContact);
        let rejected = mail(ids::MAIL_SENT_REJECTED);
        assert_eq!(rejected.message.direction, Direction::ResidentToContact);
        assert_eq!(rejected.review, Review::Rejected { reason: ids::MAIL_REJECTION_REASON.into() });
        assert!(f.mail.iter().all(|m| m.message.resident.as_str() == ids::RESIDENT));
    }

    #[test]
    fn fixture_has_a_realistic_mix() {
        let fixture = Fixture::embedded().unwrap();
        let f = &fixture.facilities[0];
        let all_approved = f.contacts.iter().filter(|c| c.approvals == approved_all()).count();
        assert!(all_approved > 120 && all_approved < 190, "{all_approved}");
        assert!(f.contacts.iter().filter(|c| c.account_status == AccountStatus::Closed).count() >= 3);
        assert!(f.contacts.iter().filter(|c| c.video_balance_cents == 0).count() >= 10);
        assert!(f.contacts.iter().all(|c| (15..=25).contains(&c.video_rate_cents_per_min)));
        assert!(f.contacts.iter().any(|c| c.approvals.message == Approval::Rejected));
        assert!(fixture.blocks.len() >= 6);
        assert_eq!(fixture.privileged.len(), 2);
        for p in &fixture.privileged {
            assert!(
                f.contacts.iter().any(|c| c.numbers.contains(&p.number)),
                "{} used by a contact",
                p.number
            );
        }
        let mut numbers: Vec<&String> = f.contacts.iter().flat_map(|c| &c.numbers).collect();
        assert!(numbers.iter().all(|n| n.starts_with("+1") && n.len() == 12));
        let total = numbers.len();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), total, "contact numbers are unique");
        // Every resident except possibly the inactive one has contacts.
        for r in f.residents.iter().filter(|r| r.active) {
            assert!(f.contacts.iter().any(|c| c.resident == r.id), "{} has contacts", r.id);
        }
    }
}
