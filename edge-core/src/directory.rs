//! The in-memory view of everything central synced down.
//!
//! Owns: the indexes the policy needs to answer in microseconds (facility and
//! its parsed time zone, units, residents, contacts and contacts-of-resident,
//! blocks and privileged numbers keyed by canonical number, suspensions by id
//! and by resident, cap usage by resident/kind/period), and what messaging
//! validates against (the eCard catalog, stamp packages, central's stamp
//! counts). Mail itself is not held here: the store serves it.
//!
//! Must not: persist anything, talk to central, or decide policy. The store is
//! the durable copy; this is rebuilt from it at start and kept current by
//! feeding it the same [`Change`]s the store applies.
//!
//! Lockdowns are deliberately absent: they are local staff state that works
//! with the uplink down, so the shell owns them and passes a [`Lockdowns`] set
//! into every policy call.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use proto::central::{Change, Entity, EntityKey};
use proto::domain::{
    BlockRecord, CallKind, ContactId, ContactRecord, FacilityRecord, HousingUnitRecord, LockdownScope,
    PrivilegedNumberRecord, ResidentId, ResidentRecord, SuspensionRecord, UnitId,
};
use proto::messaging::{ECardId, ECardRecord, PackageId, StampPackageRecord};

use crate::policy::NumberKey;

/// Lockdowns in force, kept by the shell (not synced from central).
pub type Lockdowns = BTreeSet<LockdownScope>;

/// Why the facility's settings cannot be used to decide anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FacilityError {
    #[error("no facility record has been synced yet")]
    Missing,
    #[error("facility time zone {name:?} is not usable: {detail}")]
    BadTimeZone { name: String, detail: String },
}

#[derive(Debug, Clone)]
struct FacilityEntry {
    record: FacilityRecord,
    /// Parsed once on upsert so decisions never touch the tz database.
    time_zone: Result<TimeZone, FacilityError>,
}

/// How many entities of each kind the directory holds, for status and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryCounts {
    pub facility: usize,
    pub units: usize,
    pub residents: usize,
    pub contacts: usize,
    pub blocks: usize,
    pub privileged: usize,
    pub suspensions: usize,
    pub cap_usage: usize,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    facility: Option<FacilityEntry>,
    units: HashMap<UnitId, HousingUnitRecord>,
    residents: HashMap<ResidentId, ResidentRecord>,
    contacts: HashMap<ContactId, ContactRecord>,
    /// Sorted by (name, id) so the tablet's contact list is stable.
    contacts_by_resident: HashMap<ResidentId, BTreeSet<(String, ContactId)>>,
    /// Several records may share a canonical number (different spellings or
    /// scopes); each is kept so deleting one leaves the others in force.
    blocks: HashMap<NumberKey, BTreeSet<BlockRecord>>,
    block_count: usize,
    /// Inner map is keyed by the number as central spelled it, which is what
    /// a deletion names.
    privileged: HashMap<NumberKey, BTreeMap<String, PrivilegedNumberRecord>>,
    privileged_count: usize,
    suspensions: HashMap<u64, SuspensionRecord>,
    suspensions_by_resident: HashMap<ResidentId, BTreeSet<u64>>,
    /// Nested so lookups borrow the resident id instead of cloning it.
    cap_usage: HashMap<ResidentId, HashMap<(CallKind, Date), u32>>,
    cap_usage_count: usize,
    ecards: BTreeMap<ECardId, ECardRecord>,
    stamp_packages: BTreeMap<PackageId, StampPackageRecord>,
    /// Stamps per (resident, contact) as central last counted them.
    stamp_counts: HashMap<(ResidentId, ContactId), u32>,
}

impl Directory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one change from the downlink feed.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Upsert(entity) => self.upsert(entity.clone()),
            Change::Delete(key) => self.delete(key),
        }
    }

    /// Applies one change, taking it by value to spare a clone.
    pub fn apply_owned(&mut self, change: Change) {
        match change {
            Change::Upsert(entity) => self.upsert(entity),
            Change::Delete(key) => self.delete(&key),
        }
    }

    /// Applies a batch of changes in order.
    pub fn apply_all<'a>(&mut self, changes: impl IntoIterator<Item = &'a Change>) {
        for change in changes {
            self.apply(change);
        }
    }

    /// Inserts or replaces one entity, keeping every index consistent.
    pub fn upsert(&mut self, entity: Entity) {
        match entity {
            Entity::Facility(record) => {
                let time_zone = TimeZone::get(&record.time_zone).map_err(|e| FacilityError::BadTimeZone {
                    name: record.time_zone.clone(),
                    detail: e.to_string(),
                });
                self.facility = Some(FacilityEntry { record, time_zone });
            }
            Entity::Unit(unit) => {
                self.units.insert(unit.id.clone(), unit);
            }
            Entity::Resident(resident) => {
                self.residents.insert(resident.id.clone(), resident);
            }
            Entity::Contact(contact) => self.upsert_contact(contact),
            Entity::Block(block) => {
                let set = self.blocks.entry(NumberKey::of(&block.number)).or_default();
                if set.insert(block) {
                    self.block_count += 1;
                }
            }
            Entity::Privileged(record) => {
                let map = self.privileged.entry(NumberKey::of(&record.number)).or_default();
                if map.insert(record.number.clone(), record).is_none() {
                    self.privileged_count += 1;
                }
            }
            Entity::Suspension(suspension) => self.upsert_suspension(suspension),
            Entity::CapUsage(usage) => {
                let per_resident = self.cap_usage.entry(usage.resident).or_default();
                if per_resident.insert((usage.kind, usage.period_start), usage.used_secs).is_none() {
                    self.cap_usage_count += 1;
                }
            }
            Entity::ECard(card) => {
                self.ecards.insert(card.id, card);
            }
            Entity::StampPackage(package) => {
                self.stamp_packages.insert(package.id, package);
            }
            Entity::StampCount(count) => {
                self.stamp_counts.insert((count.resident, count.contact), count.stamps);
            }
            // Mail is served from the store; no decision here reads it.
            Entity::Mail(_) => {}
        }
    }

    fn upsert_contact(&mut self, contact: ContactRecord) {
        if let Some(old) = self.contacts.get(&contact.id) {
            let (old_resident, old_name) = (old.resident.clone(), old.name.clone());
            self.unindex_contact(&old_resident, old_name, contact.id);
        }
        self.contacts_by_resident
            .entry(contact.resident.clone())
            .or_default()
            .insert((contact.name.clone(), contact.id));
        self.contacts.insert(contact.id, contact);
    }

    fn unindex_contact(&mut self, resident: &ResidentId, name: String, id: ContactId) {
        if let Some(set) = self.contacts_by_resident.get_mut(resident) {
            set.remove(&(name, id));
            if set.is_empty() {
                self.contacts_by_resident.remove(resident);
            }
        }
    }

    fn upsert_suspension(&mut self, suspension: SuspensionRecord) {
        if let Some(old) = self.suspensions.get(&suspension.id) {
            let old_resident = old.resident.clone();
            self.unindex_suspension(&old_resident, suspension.id);
        }
        self.suspensions_by_resident.entry(suspension.resident.clone()).or_default().insert(suspension.id);
        self.suspensions.insert(suspension.id, suspension);
    }

    fn unindex_suspension(&mut self, resident: &ResidentId, id: u64) {
        if let Some(set) = self.suspensions_by_resident.get_mut(resident) {
            set.remove(&id);
            if set.is_empty() {
                self.suspensions_by_resident.remove(resident);
            }
        }
    }

    /// Removes one entity. Deleting something that is not there does nothing:
    /// the feed may repeat a tombstone after a resync.
    pub fn delete(&mut self, key: &EntityKey) {
        match key {
            EntityKey::Unit(id) => {
                self.units.remove(id);
            }
            EntityKey::Resident(id) => {
                self.residents.remove(id);
            }
            EntityKey::Contact(id) => {
                if let Some(old) = self.contacts.remove(id) {
                    self.unindex_contact(&old.resident, old.name, old.id);
                }
            }
            EntityKey::Block(block) => {
                let key = NumberKey::of(&block.number);
                if let Some(set) = self.blocks.get_mut(&key) {
                    if set.remove(block) {
                        self.block_count -= 1;
                    }
                    if set.is_empty() {
                        self.blocks.remove(&key);
                    }
                }
            }
            EntityKey::Privileged(number) => {
                let key = NumberKey::of(number);
                if let Some(map) = self.privileged.get_mut(&key) {
                    if map.remove(number).is_some() {
                        self.privileged_count -= 1;
                    }
                    if map.is_empty() {
                        self.privileged.remove(&key);
                    }
                }
            }
            EntityKey::Suspension(id) => {
                if let Some(old) = self.suspensions.remove(id) {
                    self.unindex_suspension(&old.resident, old.id);
                }
            }
            EntityKey::CapUsage { resident, kind, period_start } => {
                if let Some(per_resident) = self.cap_usage.get_mut(resident) {
                    if per_resident.remove(&(*kind, *period_start)).is_some() {
                        self.cap_usage_count -= 1;
                    }
                    if per_resident.is_empty() {
                        self.cap_usage.remove(resident);
                    }
                }
            }
            EntityKey::ECard(id) => {
                self.ecards.remove(id);
            }
            EntityKey::StampPackage(id) => {
                self.stamp_packages.remove(id);
            }
            EntityKey::StampCount { resident, contact } => {
                self.stamp_counts.remove(&(resident.clone(), *contact));
            }
            EntityKey::Mail(_) => {}
        }
    }

    pub fn ecard(&self, id: ECardId) -> Option<&ECardRecord> {
        self.ecards.get(&id)
    }

    /// The eCard catalog in id order.
    pub fn ecards(&self) -> impl Iterator<Item = &ECardRecord> {
        self.ecards.values()
    }

    pub fn stamp_package(&self, id: PackageId) -> Option<&StampPackageRecord> {
        self.stamp_packages.get(&id)
    }

    /// The stamp packages on sale, in id order.
    pub fn stamp_packages(&self) -> impl Iterator<Item = &StampPackageRecord> {
        self.stamp_packages.values()
    }

    /// Stamps a resident holds for a contact as central last counted them
    /// (0 if central never said). The ledger adds what is queued on top.
    pub fn confirmed_stamps(&self, resident: &ResidentId, contact: ContactId) -> u32 {
        self.stamp_counts.get(&(resident.clone(), contact)).copied().unwrap_or(0)
    }

    pub fn facility(&self) -> Option<&FacilityRecord> {
        self.facility.as_ref().map(|f| &f.record)
    }

    /// The facility's time zone, or why there is none to use.
    pub fn time_zone(&self) -> Result<&TimeZone, FacilityError> {
        match &self.facility {
            None => Err(FacilityError::Missing),
            Some(entry) => entry.time_zone.as_ref().map_err(Clone::clone),
        }
    }

    /// The facility record together with its parsed time zone, or why the
    /// facility cannot be used.
    pub fn facility_with_time_zone(&self) -> Result<(&FacilityRecord, &TimeZone), FacilityError> {
        match &self.facility {
            None => Err(FacilityError::Missing),
            Some(entry) => match &entry.time_zone {
                Ok(tz) => Ok((&entry.record, tz)),
                Err(e) => Err(e.clone()),
            },
        }
    }

    pub fn unit(&self, id: &UnitId) -> Option<&HousingUnitRecord> {
        self.units.get(id)
    }

    pub fn units(&self) -> impl Iterator<Item = &HousingUnitRecord> {
        self.units.values()
    }

    pub fn resident(&self, id: &ResidentId) -> Option<&ResidentRecord> {
        self.residents.get(id)
    }

    pub fn contact(&self, id: ContactId) -> Option<&ContactRecord> {
        self.contacts.get(&id)
    }

    /// A resident's contacts ordered by name, then id.
    pub fn contacts_of<'a>(&'a self, resident: &ResidentId) -> impl Iterator<Item = &'a ContactRecord> + 'a {
        self.contacts_by_resident
            .get(resident)
            .into_iter()
            .flatten()
            .filter_map(move |(_, id)| self.contacts.get(id))
    }

    /// Every block on `number`, whatever its spelling (`+1 (555) 123-4567`
    /// and `15551234567` are the same number).
    pub fn blocks_for<'a>(&'a self, number: &str) -> impl Iterator<Item = &'a BlockRecord> + 'a {
        self.blocks.get(&NumberKey::of(number)).into_iter().flatten()
    }

    /// The privileged record for `number`, whatever its spelling.
    pub fn privileged(&self, number: &str) -> Option<&PrivilegedNumberRecord> {
        self.privileged.get(&NumberKey::of(number)).and_then(|map| map.values().next())
    }

    /// A resident's suspensions, in id order, including ones that have
    /// expired but not yet been deleted by central.
    pub fn suspensions_of<'a>(
        &'a self,
        resident: &ResidentId,
    ) -> impl Iterator<Item = &'a SuspensionRecord> + 'a {
        self.suspensions_by_resident
            .get(resident)
            .into_iter()
            .flatten()
            .filter_map(move |id| self.suspensions.get(id))
    }

    pub fn suspension(&self, id: u64) -> Option<&SuspensionRecord> {
        self.suspensions.get(&id)
    }

    /// Seconds of `kind` calls the resident used in the cap period starting
    /// on `period_start`; 0 when central reported none.
    pub fn cap_used_secs(&self, resident: &ResidentId, kind: CallKind, period_start: Date) -> u32 {
        self.cap_usage
            .get(resident)
            .and_then(|per_resident| per_resident.get(&(kind, period_start)))
            .copied()
            .unwrap_or(0)
    }

    pub fn counts(&self) -> DirectoryCounts {
        DirectoryCounts {
            facility: usize::from(self.facility.is_some()),
            units: self.units.len(),
            residents: self.residents.len(),
            contacts: self.contacts.len(),
            blocks: self.block_count,
            privileged: self.privileged_count,
            suspensions: self.suspensions.len(),
            cap_usage: self.cap_usage_count,
        }
    }

    /// Nothing has been synced yet.
    pub fn is_empty(&self) -> bool {
        self.counts() == DirectoryCounts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proto::domain::{AccountStatus, Approval, Approvals, BlockScope, CapUsageRecord, FacilityId};

    fn contact(id: u64, resident: &str, name: &str) -> ContactRecord {
        let approved = Approval::Approved;
        ContactRecord {
            id: ContactId(id),
            resident: ResidentId::new(resident),
            name: name.into(),
            account_status: AccountStatus::Active,
            approvals: Approvals { voice: approved, video: approved, message: approved },
            numbers: vec![format!("+1555000{id:04}")],
            video_balance_cents: 0,
            video_rate_cents_per_min: 0,
        }
    }

    fn names(dir: &Directory, resident: &str) -> Vec<(String, u64)> {
        dir.contacts_of(&ResidentId::new(resident)).map(|c| (c.name.clone(), c.id.0)).collect()
    }

    fn s(name: &str, id: u64) -> (String, u64) {
        (name.to_string(), id)
    }

    #[test]
    fn contacts_are_listed_by_name_then_id() {
        let mut dir = Directory::new();
        for (id, name) in [(3, "Carol"), (1, "Bob"), (2, "Alice"), (4, "Bob")] {
            dir.upsert(Entity::Contact(contact(id, "R1", name)));
        }
        dir.upsert(Entity::Contact(contact(9, "R2", "Zed")));
        assert_eq!(names(&dir, "R1"), [s("Alice", 2), s("Bob", 1), s("Bob", 4), s("Carol", 3)]);
        assert_eq!(names(&dir, "R2"), [s("Zed", 9)]);
        assert!(names(&dir, "R3").is_empty());
    }

    #[test]
    fn contact_upsert_moves_it_between_residents_and_renames_it() {
        let mut dir = Directory::new();
        dir.upsert(Entity::Contact(contact(1, "R1", "Alice")));
        dir.upsert(Entity::Contact(contact(2, "R1", "Bob")));
        dir.upsert(Entity::Contact(contact(1, "R2", "Alice")));
        assert_eq!(names(&dir, "R1"), [s("Bob", 2)]);
        assert_eq!(names(&dir, "R2"), [s("Alice", 1)]);
        dir.upsert(Entity::Contact(contact(2, "R1", "Aaron")));
        assert_eq!(names(&dir, "R1"), [s("Aaron", 2)]);
        assert_eq!(dir.counts().contacts, 2);
        dir.delete(&EntityKey::Contact(ContactId(1)));
        assert!(names(&dir, "R2").is_empty());
        assert!(dir.contact(ContactId(1)).is_none());
        assert!(!dir.contacts_by_resident.contains_key(&ResidentId::new("R2")));
    }

    #[test]
    fn deleting_missing_keys_changes_nothing() {
        let mut dir = Directory::new();
        dir.upsert(Entity::Contact(contact(1, "R1", "Alice")));
        let before = dir.counts();
        for key in [
            EntityKey::Unit(UnitId::new("X")),
            EntityKey::Resident(ResidentId::new("X")),
            EntityKey::Contact(ContactId(77)),
            EntityKey::Block(BlockRecord { number: "+15550000001".into(), scope: BlockScope::AllFacilities }),
            EntityKey::Privileged("+15550000001".into()),
            EntityKey::Suspension(5),
            EntityKey::CapUsage {
                resident: ResidentId::new("R1"),
                kind: CallKind::Voice,
                period_start: date(2026, 1, 1),
            },
        ] {
            dir.delete(&key);
        }
        assert_eq!(dir.counts(), before);
        assert_eq!(names(&dir, "R1"), [s("Alice", 1)]);
    }

    #[test]
    fn blocks_are_found_under_any_spelling_and_deleted_one_by_one() {
        let mut dir = Directory::new();
        let all = BlockRecord { number: "+15551234567".into(), scope: BlockScope::AllFacilities };
        let here = BlockRecord {
            number: "1 (555) 123-4567".into(),
            scope: BlockScope::Facility(FacilityId::new("F")),
        };
        dir.upsert(Entity::Block(all.clone()));
        dir.upsert(Entity::Block(here.clone()));
        dir.upsert(Entity::Block(here.clone()));
        assert_eq!(dir.counts().blocks, 2);
        assert_eq!(dir.blocks_for("5551234567").count(), 2);
        dir.delete(&EntityKey::Block(all));
        assert_eq!(dir.blocks_for("+15551234567").collect::<Vec<_>>(), [&here]);
        dir.delete(&EntityKey::Block(here));
        assert_eq!(dir.blocks_for("+15551234567").count(), 0);
        assert!(dir.blocks.is_empty());
        assert_eq!(dir.counts().blocks, 0);
    }

    #[test]
    fn privileged_numbers_by_any_spelling() {
        let mut dir = Directory::new();
        dir.upsert(Entity::Privileged(PrivilegedNumberRecord {
            number: "+1 555 000 0100".into(),
            label: "PD".into(),
        }));
        assert!(dir.privileged("15550000100").is_some());
        assert!(dir.privileged("+15550000101").is_none());
        dir.delete(&EntityKey::Privileged("+1 555 000 0100".into()));
        assert!(dir.privileged("15550000100").is_none());
        assert_eq!(dir.counts().privileged, 0);
    }

    #[test]
    fn suspension_upsert_moves_between_residents() {
        let mut dir = Directory::new();
        let mut susp = SuspensionRecord {
            id: 7,
            resident: ResidentId::new("R1"),
            services: vec![],
            ends_on: date(2026, 1, 1),
            reason: String::new(),
        };
        dir.upsert(Entity::Suspension(susp.clone()));
        susp.resident = ResidentId::new("R2");
        dir.upsert(Entity::Suspension(susp));
        assert_eq!(dir.suspensions_of(&ResidentId::new("R1")).count(), 0);
        assert_eq!(dir.suspensions_of(&ResidentId::new("R2")).count(), 1);
        dir.delete(&EntityKey::Suspension(7));
        assert_eq!(dir.suspensions_of(&ResidentId::new("R2")).count(), 0);
        assert!(dir.is_empty());
    }

    #[test]
    fn cap_usage_is_replaced_not_summed() {
        let mut dir = Directory::new();
        let usage = |used_secs| {
            Entity::CapUsage(CapUsageRecord {
                resident: ResidentId::new("R1"),
                kind: CallKind::Video,
                period_start: date(2026, 3, 1),
                used_secs,
            })
        };
        dir.upsert(usage(100));
        dir.upsert(usage(250));
        let r1 = ResidentId::new("R1");
        assert_eq!(dir.cap_used_secs(&r1, CallKind::Video, date(2026, 3, 1)), 250);
        assert_eq!(dir.cap_used_secs(&r1, CallKind::Voice, date(2026, 3, 1)), 0);
        assert_eq!(dir.counts().cap_usage, 1);
    }

    #[test]
    fn facility_time_zone_is_parsed_on_upsert() {
        let mut dir = Directory::new();
        assert_eq!(dir.time_zone().unwrap_err(), FacilityError::Missing);
        let mut record = FacilityRecord::with_defaults(FacilityId::new("F"), "F", "America/Los_Angeles");
        dir.upsert(Entity::Facility(record.clone()));
        assert_eq!(dir.time_zone().unwrap().iana_name(), Some("America/Los_Angeles"));
        record.time_zone = "Not/AZone".into();
        dir.apply(&Change::Upsert(Entity::Facility(record)));
        assert!(matches!(
            dir.time_zone(),
            Err(FacilityError::BadTimeZone { name, .. }) if name == "Not/AZone"
        ));
        assert_eq!(dir.facility().unwrap().time_zone, "Not/AZone");
    }
}
