use std::collections::BTreeSet;

use jiff::{civil::date, Timestamp};
use proto::central::{Change, ChangeBatch, Entity, EntityKey};
use proto::domain::*;
use rusqlite::params;

use super::*;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn facility() -> FacilityRecord {
    let mut f = FacilityRecord::with_defaults(FacilityId::new("demo-ca-01"), "Demo", "America/Los_Angeles");
    f.caps.push(CapRule { kind: CallKind::Video, minutes: 300, period_days: 14, anchor: date(2024, 1, 1) });
    f
}

fn unit(id: &str, windows: &[(u8, u16, u16)]) -> HousingUnitRecord {
    HousingUnitRecord {
        id: UnitId::new(id),
        name: format!("Unit {id}"),
        schedule: windows
            .iter()
            .map(|&(weekday, start_minute, end_minute)| CallingWindow { weekday, start_minute, end_minute })
            .collect(),
    }
}

fn resident(id: &str, unit: &str) -> ResidentRecord {
    ResidentRecord {
        id: ResidentId::new(id),
        name: format!("Resident {id}"),
        unit: UnitId::new(unit),
        pin_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        debit_balance_cents: -250,
        active: true,
    }
}

fn contact(id: u64, resident: &str, numbers: &[&str]) -> ContactRecord {
    ContactRecord {
        id: ContactId(id),
        resident: ResidentId::new(resident),
        name: format!("Contact {id}"),
        account_status: AccountStatus::Active,
        approvals: Approvals {
            voice: Approval::Approved,
            video: Approval::Pending,
            message: Approval::Rejected,
        },
        numbers: numbers.iter().map(|n| n.to_string()).collect(),
        video_balance_cents: 1234,
        video_rate_cents_per_min: 25,
    }
}

fn every_kind() -> Vec<Entity> {
    vec![
        Entity::Facility(facility()),
        Entity::Unit(unit("A", &[(1, 480, 720), (1, 780, 1440), (7, 0, 60)])),
        Entity::Unit(unit("B", &[])),
        Entity::Resident(resident("R1", "A")),
        Entity::Resident(ResidentRecord { active: false, ..resident("R2", "B") }),
        Entity::Contact(contact(1, "R1", &["+15551230001", "+15551230002"])),
        Entity::Contact(ContactRecord {
            account_status: AccountStatus::Closed,
            ..contact(u64::MAX, "R2", &[])
        }),
        Entity::Block(BlockRecord { number: "+15551230002".into(), scope: BlockScope::AllFacilities }),
        Entity::Block(BlockRecord {
            number: "+15551230002".into(),
            scope: BlockScope::Facility(FacilityId::new("demo-ca-01")),
        }),
        Entity::Privileged(PrivilegedNumberRecord {
            number: "+15559990000".into(),
            label: "Public defender".into(),
        }),
        Entity::Suspension(SuspensionRecord {
            id: 9,
            resident: ResidentId::new("R1"),
            services: vec![Service::Video, Service::Message],
            ends_on: date(2024, 3, 10),
            reason: "rule 12".into(),
        }),
        Entity::CapUsage(CapUsageRecord {
            resident: ResidentId::new("R1"),
            kind: CallKind::Video,
            period_start: date(2024, 3, 1),
            used_secs: 3600,
        }),
    ]
}

fn upserts(entities: impl IntoIterator<Item = Entity>) -> Vec<Change> {
    entities.into_iter().map(Change::Upsert).collect()
}

fn batch(since: u64, changes: Vec<Change>, next_cursor: u64, more: bool) -> ChangeBatch {
    ChangeBatch { since, changes, next_cursor, more }
}

/// Entities as a set of debug strings: order-insensitive comparison.
fn as_set(entities: &[Entity]) -> BTreeSet<String> {
    entities.iter().map(|e| format!("{e:?}")).collect()
}

fn contact_ids(store: &Store) -> Vec<u64> {
    store
        .load_entities()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Entity::Contact(c) => Some(c.id.0),
            _ => None,
        })
        .collect()
}

#[test]
fn fresh_store_has_no_sync_progress() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.sync_state().unwrap(), SyncState { cursor: 0, last_success: None, resync: None });
    assert!(store.load_entities().unwrap().is_empty());
}

#[test]
fn every_entity_kind_round_trips_exactly() {
    let mut store = Store::open_in_memory().unwrap();
    let entities = every_kind();
    let outcome =
        store.apply_batch(&batch(0, upserts(entities.clone()), 12, false), ApplyMode::Normal, ts(5)).unwrap();
    assert_eq!(outcome.upserts, entities.len());
    assert_eq!(outcome.cursor, 12);
    let loaded = store.load_entities().unwrap();
    assert_eq!(loaded.len(), entities.len());
    assert_eq!(as_set(&loaded), as_set(&entities));
    assert!(matches!(loaded[0], Entity::Facility(_)), "facility loads first");
    let state = store.sync_state().unwrap();
    assert_eq!(state.cursor, 12);
    assert_eq!(state.last_success, Some(ts(5)));
}

#[test]
fn upserts_replace_child_lists_and_fields() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .apply_batch(
            &batch(
                0,
                upserts([
                    Entity::Unit(unit("A", &[(1, 0, 60), (2, 0, 60), (3, 0, 60)])),
                    Entity::Contact(contact(1, "R1", &["+1555000001", "+1555000002", "+1555000003"])),
                ]),
                2,
                false,
            ),
            ApplyMode::Normal,
            ts(0),
        )
        .unwrap();
    let mut changed = contact(1, "R9", &["+1555000009"]);
    changed.approvals.video = Approval::Approved;
    changed.video_balance_cents = -5;
    let shrunk = unit("A", &[(5, 10, 20)]);
    store
        .apply_batch(
            &batch(2, upserts([Entity::Unit(shrunk.clone()), Entity::Contact(changed.clone())]), 4, false),
            ApplyMode::Normal,
            ts(1),
        )
        .unwrap();
    assert_eq!(
        as_set(&store.load_entities().unwrap()),
        as_set(&[Entity::Unit(shrunk), Entity::Contact(changed)])
    );
}

#[test]
fn deletes_remove_each_kind_and_ignore_unknown_keys() {
    let mut store = Store::open_in_memory().unwrap();
    let entities = every_kind();
    store.apply_batch(&batch(0, upserts(entities.clone()), 1, false), ApplyMode::Normal, ts(0)).unwrap();
    let mut deletes: Vec<Change> = entities.iter().filter_map(Entity::key).map(Change::Delete).collect();
    deletes.push(Change::Delete(EntityKey::Contact(ContactId(424242))));
    deletes.push(Change::Delete(EntityKey::Unit(UnitId::new("nowhere"))));
    let outcome = store.apply_batch(&batch(1, deletes.clone(), 2, false), ApplyMode::Normal, ts(1)).unwrap();
    assert_eq!(outcome.deletes, deletes.len());
    // Only the facility, which is never deleted, remains; child rows went
    // with their parents.
    assert_eq!(store.load_entities().unwrap(), vec![Entity::Facility(facility())]);
    let orphans: i64 = store.conn.query_row("SELECT count(*) FROM calling_window", [], |r| r.get(0)).unwrap();
    assert_eq!(orphans, 0);
}

#[test]
fn batch_not_following_the_cursor_is_refused_and_changes_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .apply_batch(
            &batch(0, upserts([Entity::Contact(contact(1, "R1", &[]))]), 10, false),
            ApplyMode::Normal,
            ts(0),
        )
        .unwrap();
    let before = (store.load_entities().unwrap(), store.sync_state().unwrap());
    for since in [0, 9, 11] {
        let err = store
            .apply_batch(
                &batch(since, upserts([Entity::Contact(contact(2, "R1", &[]))]), 20, false),
                ApplyMode::Normal,
                ts(50),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::StaleBatch { since: s, stored: 10 } if s == since), "{err}");
    }
    let err = store.apply_batch(&batch(10, vec![], 9, false), ApplyMode::Normal, ts(50)).unwrap_err();
    assert!(matches!(err, StoreError::CursorRegression { since: 10, next_cursor: 9 }));
    assert_eq!((store.load_entities().unwrap(), store.sync_state().unwrap()), before);
}

#[test]
fn mode_must_match_the_stored_resync_marker() {
    let mut store = Store::open_in_memory().unwrap();
    let err = store.apply_batch(&batch(5, vec![], 6, false), ApplyMode::Resync, ts(0)).unwrap_err();
    assert!(matches!(err, StoreError::ModeMismatch { mode: ApplyMode::Resync, resync_in_progress: false }));
    store.apply_batch(&batch(0, vec![], 3, true), ApplyMode::Resync, ts(0)).unwrap();
    let err = store.apply_batch(&batch(3, vec![], 4, false), ApplyMode::Normal, ts(0)).unwrap_err();
    assert!(matches!(err, StoreError::ModeMismatch { mode: ApplyMode::Normal, resync_in_progress: true }));
    assert_eq!(store.sync_state().unwrap().cursor, 3);
}

#[test]
fn resync_keeps_serving_old_data_then_sweeps_what_was_not_resent() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .apply_batch(
            &batch(
                0,
                upserts([
                    Entity::Facility(facility()),
                    Entity::Unit(unit("A", &[(1, 0, 60)])),
                    Entity::Contact(contact(1, "R1", &["+1"])),
                    Entity::Contact(contact(2, "R1", &["+2"])),
                    Entity::Contact(contact(3, "R1", &["+3"])),
                ]),
                50,
                false,
            ),
            ApplyMode::Normal,
            ts(0),
        )
        .unwrap();

    // The cursor expired; the resync starts from 0 while the old rows stay.
    let first = store
        .apply_batch(
            &batch(0, upserts([Entity::Contact(contact(1, "R1", &["+1"]))]), 70, true),
            ApplyMode::Resync,
            ts(10),
        )
        .unwrap();
    assert!(!first.resync_completed);
    assert_eq!(contact_ids(&store), vec![1, 2, 3], "old data still served mid-resync");
    let state = store.sync_state().unwrap();
    assert_eq!(state.cursor, 70);
    assert_eq!(state.resync, Some(ResyncMarker { started_at: ts(10) }));

    let updated3 = ContactRecord { name: "renamed".into(), ..contact(3, "R1", &["+3"]) };
    let last = store
        .apply_batch(
            &batch(70, upserts([Entity::Contact(updated3.clone())]), 90, false),
            ApplyMode::Resync,
            ts(20),
        )
        .unwrap();
    assert!(last.resync_completed);
    assert_eq!(last.swept, 2, "contact 2 and unit A were not re-sent");
    assert_eq!(
        as_set(&store.load_entities().unwrap()),
        as_set(&[
            Entity::Facility(facility()),
            Entity::Contact(contact(1, "R1", &["+1"])),
            Entity::Contact(updated3),
        ])
    );
    let state = store.sync_state().unwrap();
    assert_eq!((state.cursor, state.resync, state.last_success), (90, None, Some(ts(20))));

    // Later deltas are normal again and survive the next resync's generation logic.
    store
        .apply_batch(
            &batch(90, upserts([Entity::Contact(contact(4, "R1", &[]))]), 91, false),
            ApplyMode::Normal,
            ts(30),
        )
        .unwrap();
    assert_eq!(contact_ids(&store), vec![1, 3, 4]);
}

#[test]
fn restarted_resync_sweeps_rows_only_the_abandoned_attempt_resent() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .apply_batch(
            &batch(
                0,
                upserts([Entity::Contact(contact(1, "R", &[])), Entity::Contact(contact(2, "R", &[]))]),
                5,
                false,
            ),
            ApplyMode::Normal,
            ts(0),
        )
        .unwrap();
    store
        .apply_batch(
            &batch(
                0,
                upserts([Entity::Contact(contact(1, "R", &[])), Entity::Contact(contact(2, "R", &[]))]),
                8,
                true,
            ),
            ApplyMode::Resync,
            ts(1),
        )
        .unwrap();
    // The cursor expired again mid-resync (contact 2 deleted, tombstone gone).
    let outcome = store
        .apply_batch(
            &batch(0, upserts([Entity::Contact(contact(1, "R", &[]))]), 9, false),
            ApplyMode::Resync,
            ts(2),
        )
        .unwrap();
    assert!(outcome.resync_completed);
    assert_eq!(contact_ids(&store), vec![1]);
}

#[test]
fn empty_final_resync_page_clears_everything_synced() {
    let mut store = Store::open_in_memory().unwrap();
    let entities = every_kind();
    store.apply_batch(&batch(0, upserts(entities), 3, false), ApplyMode::Normal, ts(0)).unwrap();
    let outcome = store.apply_batch(&batch(0, vec![], 0, false), ApplyMode::Resync, ts(1)).unwrap();
    assert_eq!(outcome.swept, every_kind().len() - 1);
    assert_eq!(store.load_entities().unwrap(), vec![Entity::Facility(facility())]);
}

#[test]
fn failing_change_rolls_back_the_whole_batch_and_cursor() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON contact WHEN NEW.id = 666 \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .unwrap();
    let err = store
        .apply_batch(
            &batch(
                0,
                upserts([Entity::Contact(contact(1, "R", &["+1"])), Entity::Contact(contact(666, "R", &[]))]),
                2,
                false,
            ),
            ApplyMode::Normal,
            ts(0),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)));
    assert!(store.load_entities().unwrap().is_empty());
    assert_eq!(store.sync_state().unwrap().cursor, 0);
    assert_eq!(store.sync_state().unwrap().last_success, None);
}

#[test]
fn record_sync_success_moves_only_the_last_success_time() {
    let mut store = Store::open_in_memory().unwrap();
    store.apply_batch(&batch(0, vec![], 7, false), ApplyMode::Normal, ts(0)).unwrap();
    store.record_sync_success(ts(99)).unwrap();
    let state = store.sync_state().unwrap();
    assert_eq!((state.cursor, state.last_success), (7, Some(ts(99))));
}

#[test]
fn undecodable_rows_are_typed_errors_naming_table_and_key() {
    let mut store = Store::open_in_memory().unwrap();
    store.apply_batch(&batch(0, upserts(every_kind()), 1, false), ApplyMode::Normal, ts(0)).unwrap();
    let cases = [
        ("UPDATE contact SET approval_video = 'maybe' WHERE id = 1", "contact", "1"),
        ("UPDATE resident SET active = 7 WHERE id = 'R1'", "resident", "R1"),
        ("UPDATE calling_window SET weekday = 300 WHERE unit_id = 'A'", "calling_window", "A"),
        ("UPDATE suspension SET ends_on = 'soon' WHERE id = 9", "suspension", "9"),
        ("UPDATE facility SET caps_json = '{' ", "facility", "demo-ca-01"),
        ("UPDATE cap_usage SET used_secs = -1", "cap_usage", "R1"),
    ];
    for (corruption, table, key) in cases {
        let tx = store.conn.unchecked_transaction().unwrap();
        tx.execute_batch(corruption).unwrap();
        match store.load_entities() {
            Err(StoreError::Corrupt { table: t, key: k, .. }) => {
                assert_eq!((t, k.as_str()), (table, key), "{corruption}")
            }
            other => panic!("{corruption}: expected a Corrupt error, got {other:?}"),
        }
        tx.rollback().unwrap();
    }
    store.load_entities().unwrap();
}

#[test]
fn file_store_uses_wal_full_sync_foreign_keys_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.sqlite");
    {
        let mut store = Store::open(&path).unwrap();
        let mode: String = store.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = store.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let fks: i64 = store.conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync, fks), ("wal", 2, 1));
        store.apply_batch(&batch(0, upserts(every_kind()), 4, false), ApplyMode::Normal, ts(3)).unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(as_set(&store.load_entities().unwrap()), as_set(&every_kind()));
    assert_eq!(store.sync_state().unwrap().cursor, 4);
}

#[test]
fn data_version_reveals_writes_from_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.sqlite");
    let agent = Store::open(&path).unwrap();
    let mut cli = Store::open(&path).unwrap();
    let before = agent.data_version().unwrap();
    assert_eq!(agent.data_version().unwrap(), before, "stable without writes");
    cli.set_lockdown(&LockdownScope::Facility, true, "it-admin", ts(0)).unwrap();
    assert_ne!(agent.data_version().unwrap(), before);
    assert!(agent.lockdowns().unwrap().contains(&LockdownScope::Facility));
}

#[test]
fn lockdowns_toggle_and_are_audited_in_the_same_transaction() {
    let mut store = Store::open_in_memory().unwrap();
    let unit_a = LockdownScope::Unit(UnitId::new("A"));
    assert!(store.set_lockdown(&unit_a, true, "sgt.lee", ts(1)).unwrap());
    assert!(!store.set_lockdown(&unit_a, true, "sgt.lee", ts(2)).unwrap(), "already on");
    assert!(store.set_lockdown(&LockdownScope::Facility, true, "lt.ortiz", ts(3)).unwrap());
    assert_eq!(store.lockdowns().unwrap(), BTreeSet::from([LockdownScope::Facility, unit_a.clone()]));
    let rows = store.lockdown_rows().unwrap();
    let row_a = rows.iter().find(|r| r.scope == unit_a).unwrap();
    assert_eq!((row_a.since, row_a.actor.as_str()), (ts(1), "sgt.lee"), "first setter kept");
    assert!(store.set_lockdown(&unit_a, false, "sgt.lee", ts(4)).unwrap());
    assert!(!store.set_lockdown(&unit_a, false, "sgt.lee", ts(5)).unwrap());
    assert_eq!(store.lockdowns().unwrap(), BTreeSet::from([LockdownScope::Facility]));

    let audited: Vec<(String, String, String)> = store
        .conn
        .prepare("SELECT actor, action, detail FROM audit_log ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(audited.len(), 5);
    assert_eq!(audited[0].0, "sgt.lee");
    assert_eq!(audited[0].1, "lockdown.on");
    let detail: serde_json::Value = serde_json::from_str(&audited[0].2).unwrap();
    assert_eq!(detail["unit"], "A");
    assert_eq!(detail["changed"], true);
    assert_eq!(audited[3].1, "lockdown.off");
    assert!(store.audit_verify().unwrap().is_intact());
}

#[test]
fn lockdowns_survive_a_resync_sweep() {
    let mut store = Store::open_in_memory().unwrap();
    store.set_lockdown(&LockdownScope::Facility, true, "it", ts(0)).unwrap();
    store.apply_batch(&batch(0, vec![], 0, false), ApplyMode::Resync, ts(1)).unwrap();
    assert!(store.lockdowns().unwrap().contains(&LockdownScope::Facility));
}

#[test]
fn devices_register_revoke_and_admit() {
    let mut store = Store::open_in_memory().unwrap();
    let t1 = store.register_device("T-0001", "aa11", ts(1)).unwrap();
    store.register_device("T-0002", "bb22", ts(2)).unwrap();
    assert!(matches!(
        store.register_device("T-0001", "cc33", ts(3)),
        Err(StoreError::DeviceNameTaken(name)) if name == "T-0001"
    ));
    assert!(matches!(
        store.register_device("T-0003", "bb22", ts(3)),
        Err(StoreError::FingerprintTaken { device, .. }) if device == "T-0002"
    ));
    assert_eq!(store.device_by_fingerprint("aa11").unwrap(), Some(t1.clone()));
    assert_eq!(store.device_by_fingerprint("ffff").unwrap(), None);
    assert_eq!(
        store.admitted_fingerprints().unwrap(),
        ["aa11".to_string(), "bb22".to_string()].into_iter().collect()
    );

    assert!(matches!(
        store.revoke_device("T-9999", ts(4)),
        Err(StoreError::UnknownDevice(name)) if name == "T-9999"
    ));
    let revoked = store.revoke_device("T-0001", ts(5)).unwrap();
    assert!(revoked.newly_revoked);
    assert_eq!(revoked.device.revoked_at, Some(ts(5)));
    let again = store.revoke_device("T-0001", ts(6)).unwrap();
    assert!(!again.newly_revoked);
    assert_eq!(again.device.revoked_at, Some(ts(5)), "first revocation time kept");
    assert_eq!(store.admitted_fingerprints().unwrap(), ["bb22".to_string()].into_iter().collect());
    assert!(store.device_by_fingerprint("aa11").unwrap().unwrap().is_revoked());
    let names: Vec<String> = store.devices().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["T-0001", "T-0002"]);
    assert!(matches!(store.register_device("T-0001", "dd44", ts(7)), Err(StoreError::DeviceNameTaken(_))));
}

#[test]
fn login_guard_persists_and_clears() {
    let mut store = Store::open_in_memory().unwrap();
    let r = ResidentId::new("R1");
    assert_eq!(store.login_guard(&r).unwrap(), None);
    store.save_login_guard(&r, 3, None).unwrap();
    assert_eq!(
        store.login_guard(&r).unwrap(),
        Some(LoginGuardRow { resident: r.clone(), failures: 3, locked_until: None })
    );
    store.save_login_guard(&r, 5, Some(ts(900))).unwrap();
    assert_eq!(store.login_guard(&r).unwrap().unwrap().locked_until, Some(ts(900)));
    assert_eq!(store.login_guard(&ResidentId::new("R2")).unwrap(), None);
    store.save_login_guard(&r, 0, None).unwrap();
    assert_eq!(store.login_guard(&r).unwrap(), None);
}

fn audited_store(rows: u64) -> Store {
    let mut store = Store::open_in_memory().unwrap();
    for i in 1..=rows {
        let seq = store
            .audit_append(
                "it-admin",
                "test.event",
                &serde_json::json!({ "n": i, "note": "x|y" }),
                ts(i as i64),
            )
            .unwrap();
        assert_eq!(seq, i);
    }
    store
}

/// Lets the test tamper with the log the way someone with the file could.
fn drop_guards(store: &Store) {
    store.conn.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;").unwrap();
}

#[test]
fn intact_audit_log_verifies() {
    let store = audited_store(6);
    let report = store.audit_verify().unwrap();
    assert_eq!(report, AuditReport { rows_checked: 6, first_break: None });
    assert_eq!(Store::open_in_memory().unwrap().audit_verify().unwrap().rows_checked, 0);
}

#[test]
fn triggers_refuse_update_and_delete() {
    let store = audited_store(2);
    let update = store.conn.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 1", []);
    let delete = store.conn.execute("DELETE FROM audit_log WHERE seq = 2", []);
    for result in [update, delete] {
        let err = result.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert!(store.audit_verify().unwrap().is_intact());
}

#[test]
fn verify_catches_an_edited_detail() {
    let store = audited_store(5);
    drop_guards(&store);
    store.conn.execute("UPDATE audit_log SET detail = '{\"n\":99}' WHERE seq = 3", []).unwrap();
    let report = store.audit_verify().unwrap();
    assert_eq!(report.rows_checked, 2);
    assert_eq!(report.first_break, Some(AuditBreak::HashMismatch { seq: 3 }));
}

#[test]
fn verify_catches_a_deleted_row_as_a_gap() {
    let store = audited_store(5);
    drop_guards(&store);
    store.conn.execute("DELETE FROM audit_log WHERE seq = 2", []).unwrap();
    let report = store.audit_verify().unwrap();
    assert_eq!(report.first_break, Some(AuditBreak::Missing { seq: 2, found: 3 }));
    assert_eq!(report.rows_checked, 1);
}

#[test]
fn verify_catches_a_cut_off_tail() {
    let store = audited_store(5);
    drop_guards(&store);
    store.conn.execute("DELETE FROM audit_log WHERE seq >= 4", []).unwrap();
    let report = store.audit_verify().unwrap();
    assert_eq!(report.first_break, Some(AuditBreak::Truncated { seq: 4, head_seq: 5 }));
}

#[test]
fn verify_catches_reordered_rows() {
    let store = audited_store(5);
    drop_guards(&store);
    // Swap rows 2 and 3 wholesale, keeping their seq slots.
    store
        .conn
        .execute_batch(
            "UPDATE audit_log SET seq = -2 WHERE seq = 2; \
             UPDATE audit_log SET seq = 2 WHERE seq = 3; \
             UPDATE audit_log SET seq = 3 WHERE seq = -2;",
        )
        .unwrap();
    let report = store.audit_verify().unwrap();
    assert_eq!(report.first_break, Some(AuditBreak::PrevHashMismatch { seq: 2 }));
}

#[test]
fn verify_catches_a_rehashed_edit_at_the_next_link() {
    let store = audited_store(5);
    drop_guards(&store);
    // The forger edits row 3 and recomputes its hash, but cannot fix row 4's link.
    let (prev, at): (String, String) = store
        .conn
        .query_row("SELECT prev_hash, at FROM audit_log WHERE seq = 3", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let mut prev_bytes = [0u8; 32];
    hex::decode_to_slice(&prev, &mut prev_bytes).unwrap();
    let forged =
        hex::encode(super::audit::tests_link_hash(&prev_bytes, 3, &at, "someone", "test.event", "{}"));
    store
        .conn
        .execute(
            "UPDATE audit_log SET actor = 'someone', detail = '{}', hash = ?1 WHERE seq = 3",
            params![forged],
        )
        .unwrap();
    let report = store.audit_verify().unwrap();
    assert_eq!(report.first_break, Some(AuditBreak::PrevHashMismatch { seq: 4 }));
    assert_eq!(report.rows_checked, 3);
}

#[test]
fn verify_catches_a_tampered_hash() {
    let store = audited_store(3);
    drop_guards(&store);
    store.conn.execute("UPDATE audit_log SET hash = ?1 WHERE seq = 1", params!["00".repeat(32)]).unwrap();
    assert_eq!(store.audit_verify().unwrap().first_break, Some(AuditBreak::HashMismatch { seq: 1 }));
}

#[test]
fn appends_continue_the_chain_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.sqlite");
    {
        let mut store = Store::open(&path).unwrap();
        store.audit_append("a", "one", &serde_json::json!(null), ts(1)).unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.audit_append("b", "two", &serde_json::json!([1, 2]), ts(2)).unwrap(), 2);
    assert_eq!(store.audit_verify().unwrap(), AuditReport { rows_checked: 2, first_break: None });
}

/// One audit row as stored, for comparing with its outbox item.
struct AuditRow {
    seq: u64,
    at: String,
    actor: String,
    action: String,
    detail: String,
    prev_hash: [u8; 32],
    hash: [u8; 32],
}

fn audit_rows(store: &Store) -> Vec<AuditRow> {
    let mut stmt = store
        .conn
        .prepare("SELECT seq, at, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let hash = |text: String| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(text, &mut out).unwrap();
                out
            };
            Ok(AuditRow {
                seq: r.get::<_, i64>(0)? as u64,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                detail: r.get(4)?,
                prev_hash: hash(r.get(5)?),
                hash: hash(r.get(6)?),
            })
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn audit_records(store: &Store) -> Vec<(proto::messaging::IdempotencyKey, proto::messaging::AuditRecord)> {
    store
        .outbox_rows()
        .unwrap()
        .into_iter()
        .filter_map(|row| match row.item.body {
            proto::messaging::OutboxBody::Audit(record) => {
                assert_eq!(row.item.created_at, record.at);
                assert_eq!(row.parked, None);
                Some((row.item.key, record))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_audit_row_becomes_exactly_one_outbox_item_carrying_the_row() {
    let mut store = audited_store(3);
    store.set_lockdown(&LockdownScope::Facility, true, "lt.ortiz", ts(10)).unwrap();
    let rows = audit_rows(&store);
    let items = audit_records(&store);
    assert_eq!(rows.len(), 4);
    assert_eq!(store.outbox_rows().unwrap().len(), 4, "nothing but the audit items");
    assert_eq!(items.len(), rows.len());
    for (row, (_, record)) in rows.iter().zip(&items) {
        assert_eq!(record.seq, row.seq);
        assert_eq!(record.at.to_string(), row.at);
        assert_eq!((&record.actor, &record.action, &record.detail), (&row.actor, &row.action, &row.detail));
        assert_eq!((record.prev_hash, record.hash), (row.prev_hash, row.hash));
    }
    // Central can check the chain from the items alone.
    assert_eq!(items[0].1.prev_hash, [0; 32]);
    assert!(items.windows(2).all(|w| w[1].1.prev_hash == w[0].1.hash));
    assert_eq!(items[3].1.action, "lockdown.on");
    let keys: BTreeSet<_> = items.iter().map(|(key, _)| *key).collect();
    assert_eq!(keys.len(), items.len(), "each item has its own random key");
    assert!(store.audit_verify().unwrap().is_intact());
}

#[test]
fn a_failed_audit_transaction_leaves_neither_the_row_nor_the_item() {
    let mut store = audited_store(2);
    let before = store.outbox_rows().unwrap();
    // The outbox insert is the last write of an append: failing it must take
    // back the audit row (and its head) written just before it.
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER outbox_full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
    assert!(store.audit_append("it-admin", "test.event", &serde_json::json!({}), ts(20)).is_err());
    assert!(store.set_lockdown(&LockdownScope::Facility, true, "lt.ortiz", ts(21)).is_err());
    assert_eq!(audit_rows(&store).len(), 2);
    assert_eq!(store.outbox_rows().unwrap(), before);
    assert!(store.lockdowns().unwrap().is_empty(), "the lockdown rolled back with its audit row");
    assert!(store.audit_verify().unwrap().is_intact());

    // And the other way round: an audit row that cannot be written takes
    // its item (and the caller's other writes) back with it.
    store.conn.execute_batch("DROP TRIGGER outbox_full;").unwrap();
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER audit_full BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
    assert!(store.set_lockdown(&LockdownScope::Facility, true, "lt.ortiz", ts(22)).is_err());
    assert_eq!(store.outbox_rows().unwrap(), before);
    assert!(store.lockdowns().unwrap().is_empty());

    // Nothing was half-written: the chain goes on from row 2.
    store.conn.execute_batch("DROP TRIGGER audit_full;").unwrap();
    assert_eq!(store.audit_append("it-admin", "test.event", &serde_json::json!({}), ts(23)).unwrap(), 3);
    assert_eq!(audit_records(&store).len(), 3);
    assert!(store.audit_verify().unwrap().is_intact());
}

#[test]
fn outbox_rows_after_returns_only_later_commits_from_any_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.sqlite");
    let mut agent = Store::open(&path).unwrap();
    let mut cli = Store::open(&path).unwrap();
    agent.audit_append("agent", "one", &serde_json::json!(1), ts(1)).unwrap();
    let seen = agent.outbox_rows().unwrap().last().unwrap().seq;
    cli.set_lockdown(&LockdownScope::Facility, true, "it", ts(2)).unwrap();
    cli.audit_append("it", "revoke-device", &serde_json::json!({"device": "t1"}), ts(3)).unwrap();
    let later = agent.outbox_rows_after(seen).unwrap();
    let actions: Vec<String> = later
        .iter()
        .map(|row| match &row.item.body {
            proto::messaging::OutboxBody::Audit(record) => record.action.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(actions, ["lockdown.on", "revoke-device"]);
    assert!(later.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(agent.outbox_rows_after(later[1].seq).unwrap().is_empty());
}
