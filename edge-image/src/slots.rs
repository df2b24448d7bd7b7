//! Boot state and install planning, sans-IO.
//!
//! Everything here works on entry *file names* (and optionally the version line of
//! an entry), so the agent can feed it from `read_dir` and the tests from literals.
//! The boot-counting suffixes follow systemd-boot: `+LEFT` or `+LEFT-DONE`; a
//! counter with LEFT == 0 marks an entry that ran out of tries (systemd-boot sorts it
//! last, so the box fell back), and systemd-bless-boot drops the suffix once the
//! health check passed.

use std::fmt;
use std::str::FromStr;

use crate::version::Version;

/// Prefix of every entry file this crate writes in `ESP/loader/entries/`.
pub const ENTRY_PREFIX: &str = "facility-edge-";
/// Tries a freshly installed slot gets before systemd-boot gives up on it.
pub const DEFAULT_TRIES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// `root-a` / `root-b`: the GPT partition label of this slot's root filesystem.
    pub fn partlabel(self) -> &'static str {
        match self {
            Slot::A => "root-a",
            Slot::B => "root-b",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("slot {0:?} is neither \"a\" nor \"b\"")]
pub struct SlotParseError(pub String);

impl FromStr for Slot {
    type Err = SlotParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "a" | "A" => Ok(Slot::A),
            "b" | "B" => Ok(Slot::B),
            other => Err(SlotParseError(other.to_owned())),
        }
    }
}

/// systemd-boot's boot counter: tries left, and tries done (absent before the first
/// attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootCounter {
    pub left: u32,
    pub done: Option<u32>,
}

/// A parsed `facility-edge-<slot>[+left[-done]].conf` file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryName {
    pub slot: Slot,
    /// `None` once systemd-bless-boot confirmed the slot.
    pub counter: Option<BootCounter>,
}

impl EntryName {
    pub fn confirmed(slot: Slot) -> Self {
        Self { slot, counter: None }
    }

    pub fn fresh(slot: Slot, tries: u32) -> Self {
        Self { slot, counter: Some(BootCounter { left: tries, done: None }) }
    }

    /// Parses an entry file name; `None` for files that are not ours (other OSes,
    /// temp files, typos), which callers skip rather than fail on.
    pub fn parse(file_name: &str) -> Option<EntryName> {
        let stem = file_name.strip_suffix(".conf")?.strip_prefix(ENTRY_PREFIX)?;
        let (slot_str, counter_str) = match stem.split_once('+') {
            Some((s, c)) => (s, Some(c)),
            None => (stem, None),
        };
        let slot = match slot_str {
            "a" => Slot::A,
            "b" => Slot::B,
            _ => return None,
        };
        let counter = match counter_str {
            None => None,
            Some(c) => {
                let (left, done) = match c.split_once('-') {
                    Some((l, d)) => (l, Some(d)),
                    None => (c, None),
                };
                let left = parse_count(left)?;
                let done = match done {
                    Some(d) => Some(parse_count(d)?),
                    None => None,
                };
                Some(BootCounter { left, done })
            }
        };
        Some(EntryName { slot, counter })
    }

    pub fn file_name(&self) -> String {
        match self.counter {
            None => format!("{ENTRY_PREFIX}{}.conf", self.slot),
            Some(BootCounter { left, done: None }) => format!("{ENTRY_PREFIX}{}+{left}.conf", self.slot),
            Some(BootCounter { left, done: Some(d) }) => {
                format!("{ENTRY_PREFIX}{}+{left}-{d}.conf", self.slot)
            }
        }
    }
}

fn parse_count(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What the entries say about one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    /// No entry: never installed, or an install was started and not finished.
    Empty,
    /// Blessed by systemd-bless-boot after a good boot.
    Confirmed,
    /// Boot counter still running.
    Trial { left: u32, done: u32 },
    /// Counter ran out: systemd-boot no longer picks it, the box fell back.
    Bad { done: u32 },
}

fn status_of(entries: &[EntryName], slot: Slot) -> EntryStatus {
    // Two entries for one slot should not happen (install removes the old one
    // first); if it does, the most cautious reading wins: bad, then trial.
    let mut best = EntryStatus::Empty;
    for e in entries.iter().filter(|e| e.slot == slot) {
        let s = match e.counter {
            None => EntryStatus::Confirmed,
            Some(BootCounter { left: 0, done }) => EntryStatus::Bad { done: done.unwrap_or(0) },
            Some(BootCounter { left, done }) => EntryStatus::Trial { left, done: done.unwrap_or(0) },
        };
        best = match (best, s) {
            (EntryStatus::Bad { .. }, _) => best,
            (_, EntryStatus::Bad { .. }) => s,
            (EntryStatus::Trial { .. }, _) => best,
            _ => s,
        };
    }
    best
}

/// The boot picture: which slot runs which version, and what the entries say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    pub running_slot: Slot,
    pub running_version: Version,
    pub running: EntryStatus,
    pub other: EntryStatus,
    /// Version from the other slot's entry (`version` line), when the caller read it.
    pub other_version: Option<Version>,
}

impl BootState {
    /// Builds the state from the names in `ESP/loader/entries/`; foreign names are
    /// ignored.
    #[allow(clippy::should_implement_trait)]
    pub fn from<I, S>(running_slot: Slot, entry_names: I, running_version: Version) -> BootState
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries: Vec<EntryName> =
            entry_names.into_iter().filter_map(|n| EntryName::parse(n.as_ref())).collect();
        BootState {
            running_slot,
            running_version,
            running: status_of(&entries, running_slot),
            other: status_of(&entries, running_slot.other()),
            other_version: None,
        }
    }

    pub fn with_other_version(mut self, v: Option<Version>) -> Self {
        self.other_version = v;
        self
    }
}

/// A decision to install `version` into `target`. Only `plan_install` makes one, so
/// holding a plan means the checks below passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallPlan {
    target: Slot,
    running: Slot,
    version: Version,
    tries: u32,
}

impl InstallPlan {
    pub fn target(&self) -> Slot {
        self.target
    }
    pub fn running(&self) -> Slot {
        self.running
    }
    pub fn version(&self) -> Version {
        self.version
    }
    pub fn tries(&self) -> u32 {
        self.tries
    }
    /// Name of the entry the install writes last.
    pub fn entry_name(&self) -> EntryName {
        EntryName::fresh(self.target, self.tries)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "slot {slot} is running on trial ({left} tries left); wait for its health check to confirm it before installing another update"
    )]
    TrialInProgress { slot: Slot, left: u32 },
    #[error("bundle version {bundle} is not newer than the running version {running}; refusing downgrade or replay")]
    NotNewer { bundle: Version, running: Version },
}

/// Decides where an update goes. The target is always the slot that is not running;
/// an unconfirmed running slot or a version that is not strictly newer is refused.
pub fn plan_install(state: &BootState, bundle_version: Version) -> Result<InstallPlan, PlanError> {
    match state.running {
        EntryStatus::Trial { left, .. } => {
            return Err(PlanError::TrialInProgress { slot: state.running_slot, left })
        }
        // Running from an entry whose counter reached zero is the last try of an
        // unconfirmed slot: still a trial.
        EntryStatus::Bad { .. } => {
            return Err(PlanError::TrialInProgress { slot: state.running_slot, left: 0 })
        }
        EntryStatus::Confirmed | EntryStatus::Empty => {}
    }
    if bundle_version <= state.running_version {
        return Err(PlanError::NotNewer { bundle: bundle_version, running: state.running_version });
    }
    Ok(InstallPlan {
        target: state.running_slot.other(),
        running: state.running_slot,
        version: bundle_version,
        tries: DEFAULT_TRIES,
    })
}

/// What the other slot holds, for the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherSlot {
    Empty,
    /// A confirmed older (or newer) system kept as fallback.
    Good,
    /// Installed, waiting for the next reboot to try it.
    Pending {
        left: u32,
    },
    /// Tried and failed its boot checks; the box fell back to the running slot.
    FellBack,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotReport {
    pub running_slot: Slot,
    pub running_version: Version,
    pub running_confirmed: bool,
    pub other_slot: Slot,
    pub other: OtherSlot,
    pub other_version: Option<Version>,
}

pub fn report(state: &BootState) -> SlotReport {
    let other = match state.other {
        EntryStatus::Empty => OtherSlot::Empty,
        EntryStatus::Confirmed => OtherSlot::Good,
        EntryStatus::Trial { left, .. } => OtherSlot::Pending { left },
        EntryStatus::Bad { .. } => OtherSlot::FellBack,
    };
    SlotReport {
        running_slot: state.running_slot,
        running_version: state.running_version,
        // No entry for the running slot (booted by hand, or a dev box) has nothing
        // to confirm, so it is not reported as a trial.
        running_confirmed: matches!(state.running, EntryStatus::Confirmed | EntryStatus::Empty),
        other_slot: state.running_slot.other(),
        other,
        other_version: state.other_version,
    }
}

impl fmt::Display for SlotReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let update = match self.other_version {
            Some(v) => format!("update to {v}"),
            None => "update".to_owned(),
        };
        match self.other {
            OtherSlot::FellBack => {
                write!(f, "{update} in slot {} failed its boot checks; ", self.other_slot)?
            }
            OtherSlot::Pending { left } => {
                write!(f, "{update} in slot {} waits for a reboot ({left} tries); ", self.other_slot)?
            }
            OtherSlot::Good | OtherSlot::Empty => {}
        }
        write!(f, "running {} from slot {}", self.running_version, self.running_slot)?;
        if !self.running_confirmed {
            f.write_str(" (on trial, not yet confirmed)")?;
        }
        match self.other {
            OtherSlot::Good => match self.other_version {
                Some(v) => write!(f, "; slot {} holds fallback {v}", self.other_slot),
                None => write!(f, "; slot {} holds a fallback", self.other_slot),
            },
            OtherSlot::Empty => write!(f, "; slot {} is empty", self.other_slot),
            _ => Ok(()),
        }
    }
}

/// Finds `facility.slot=<s>` on a kernel command line (`/proc/cmdline`).
pub fn running_slot_from_cmdline(cmdline: &str) -> Option<Slot> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix("facility.slot=")).and_then(|s| s.parse().ok())
}

/// Reads the `version` line of a Boot Loader Specification entry.
pub fn entry_version(entry_text: &str) -> Option<Version> {
    entry_text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("version")?;
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        rest.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn parses_entry_names() {
        assert_eq!(EntryName::parse("facility-edge-a.conf"), Some(EntryName::confirmed(Slot::A)));
        assert_eq!(EntryName::parse("facility-edge-b+3.conf"), Some(EntryName::fresh(Slot::B, 3)));
        assert_eq!(
            EntryName::parse("facility-edge-b+1-2.conf"),
            Some(EntryName { slot: Slot::B, counter: Some(BootCounter { left: 1, done: Some(2) }) })
        );
        for bad in [
            "facility-edge-c.conf",
            "facility-edge-a",
            "facility-edge-a+.conf",
            "facility-edge-a+1-.conf",
            "facility-edge-a+x.conf",
            "facility-edge-a+-1.conf",
            "debian.conf",
            ".facility-edge-a.conf.tmp",
            "facility-edge-ab.conf",
        ] {
            assert_eq!(EntryName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn plan_targets_the_other_slot() {
        for running in [Slot::A, Slot::B] {
            let st = BootState::from(running, [EntryName::confirmed(running).file_name()], v("0.1.0"));
            let plan = plan_install(&st, v("0.2.0")).unwrap();
            assert_eq!(plan.target(), running.other());
            assert_ne!(plan.target(), running);
            assert_eq!(plan.entry_name().file_name(), format!("facility-edge-{}+3.conf", running.other()));
        }
    }

    #[test]
    fn plan_refuses_trial_in_progress() {
        for name in ["facility-edge-b+2-1.conf", "facility-edge-b+3.conf", "facility-edge-b+0-3.conf"] {
            let st = BootState::from(Slot::B, ["facility-edge-a.conf", name], v("0.2.0"));
            assert!(
                matches!(
                    plan_install(&st, v("0.3.0")),
                    Err(PlanError::TrialInProgress { slot: Slot::B, .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn plan_refuses_not_newer() {
        let st = BootState::from(Slot::A, ["facility-edge-a.conf"], v("0.2.0"));
        for bundle in ["0.2.0", "0.1.9", "0.0.1"] {
            assert_eq!(
                plan_install(&st, v(bundle)),
                Err(PlanError::NotNewer { bundle: v(bundle), running: v("0.2.0") })
            );
        }
    }

    #[test]
    fn plan_allows_overwriting_a_pending_or_bad_other_slot() {
        for other in ["facility-edge-b+3.conf", "facility-edge-b+0-3.conf", "facility-edge-b.conf"] {
            let st = BootState::from(Slot::A, ["facility-edge-a.conf", other], v("0.1.0"));
            assert_eq!(plan_install(&st, v("0.3.0")).unwrap().target(), Slot::B);
        }
    }

    #[test]
    fn report_fell_back() {
        let st = BootState::from(
            Slot::A,
            ["facility-edge-a.conf", "facility-edge-b+0-3.conf", "x.conf"],
            v("0.1.0"),
        )
        .with_other_version(Some(v("0.2.0")));
        let r = report(&st);
        assert_eq!(r.other, OtherSlot::FellBack);
        assert!(r.running_confirmed);
        assert_eq!(
            r.to_string(),
            "update to 0.2.0 in slot b failed its boot checks; running 0.1.0 from slot a"
        );
    }

    #[test]
    fn report_trial_and_empty() {
        let st = BootState::from(Slot::B, ["facility-edge-b+2-1.conf"], v("0.2.0"));
        let r = report(&st);
        assert!(!r.running_confirmed);
        assert_eq!(r.other, OtherSlot::Empty);
        assert_eq!(r.to_string(), "running 0.2.0 from slot b (on trial, not yet confirmed); slot a is empty");
        let st = BootState::from(Slot::B, ["facility-edge-b.conf", "facility-edge-a.conf"], v("0.2.0"))
            .with_other_version(Some(v("0.1.0")));
        assert_eq!(report(&st).to_string(), "running 0.2.0 from slot b; slot a holds fallback 0.1.0");
    }

    #[test]
    fn cmdline_and_entry_version() {
        assert_eq!(
            running_slot_from_cmdline("root=PARTLABEL=root-b ro facility.slot=b quiet"),
            Some(Slot::B)
        );
        assert_eq!(running_slot_from_cmdline("root=/dev/sda2 ro"), None);
        assert_eq!(entry_version("title X\nversion 0.2.0\nsort-key facility-edge\n"), Some(v("0.2.0")));
        assert_eq!(entry_version("title version 9.9.9\nversionx 1.0.0\n"), None);
    }

    fn slot_strategy() -> impl Strategy<Value = Slot> {
        prop_oneof![Just(Slot::A), Just(Slot::B)]
    }

    proptest! {
        #[test]
        fn entry_name_round_trips(
            slot in slot_strategy(),
            counter in proptest::option::of((any::<u32>(), proptest::option::of(any::<u32>())))
        ) {
            let e = EntryName { slot, counter: counter.map(|(left, done)| BootCounter { left, done }) };
            prop_assert_eq!(EntryName::parse(&e.file_name()), Some(e));
        }

        #[test]
        fn plan_never_targets_running(
            running in slot_strategy(),
            names in proptest::collection::vec("facility-edge-[ab](\\+[0-9](-[0-9])?)?\\.conf", 0..4),
            rv in any::<(u8, u8, u8)>(),
            bv in any::<(u8, u8, u8)>(),
        ) {
            let st = BootState::from(running, &names, Version::new(rv.0.into(), rv.1.into(), rv.2.into()));
            if let Ok(plan) = plan_install(&st, Version::new(bv.0.into(), bv.1.into(), bv.2.into())) {
                prop_assert_ne!(plan.target(), running);
                prop_assert!(bv > rv);
            }
        }
    }
}
