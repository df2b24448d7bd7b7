//! The local debit and stamp ledger: what a resident may spend right now.
//!
//! Owns: the balance central last confirmed (from the change feed) minus
//! every debit the edge has queued or that central applied but the edge's
//! copy does not show yet; stamps per resident and contact the same way; the
//! funding of each message (which stamps pay for it); and the
//! "payment failed" states when central refuses a purchase made offline.
//!
//! Must not: persist, send, or read a clock. The shell owns one `Ledger` and
//! calls it from one task, so it is the single point where purchases are
//! serialised: [`Ledger::buy`] checks and reserves in one `&mut` call, and two
//! tablets racing for the same resident are two calls in some order; the
//! second sees the first's debit. Every mutating call returns the entries to
//! write; the shell writes them in the same transaction as the outbox item
//! (or the deletion of the acked item), so the ledger can be rebuilt with
//! [`Ledger::restore`] after a crash.
//!
//! # When a debit stops counting
//!
//! Central's ack of a purchase names the change-feed sequence `applied_at`
//! at which the debit shows in the resident's balance. The debit keeps
//! counting against the confirmed balance until the edge's copy of the feed
//! has reached that sequence; only then is the confirmed balance the one
//! that includes it. Counting it both in a stale confirmed balance and as
//! pending (e.g. the ack was lost in a crash and the feed got there first)
//! errs on the safe side: the resident sees less, never more, than central
//! holds.
//!
//! # Payment failed
//!
//! A purchase central refuses permanently (the account was spent at
//! commissary while the edge was offline) becomes `PaymentFailed`: no money
//! was taken, its stamps are void, and every queued message those stamps were
//! to pay for becomes `PaymentFailed` as well. The outbox parks those
//! messages (they are in the same conversation lane, behind the purchase, so
//! none of them can have left); they stay visible with the reason until the
//! resident deals with them ([`Ledger::dismiss`]). Nothing is dropped and
//! nothing is sent unpaid; central also refuses a message whose `funded_by`
//! purchase it never applied.

use std::collections::{BTreeMap, HashMap};

use proto::domain::{Cents, ContactId, ResidentId};
use proto::messaging::{DeliveryOutcome, IdempotencyKey, MessagingError, RefusalReason, StampPackageRecord};

/// Which stamps pay for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Funding {
    /// Stamps whose payment central has confirmed.
    Confirmed,
    /// A stamp of a purchase still waiting for central.
    Purchase(IdempotencyKey),
}

impl Funding {
    /// As carried in `OutboxBody::SendMessage::funded_by`.
    pub fn funded_by(self) -> Option<IdempotencyKey> {
        match self {
            Funding::Confirmed => None,
            Funding::Purchase(key) => Some(key),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Purchase {
        stamps: u32,
        price_cents: Cents,
    },
    /// One stamp spent by the message sent under the entry's key.
    Spend {
        funding: Funding,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryState {
    /// In the outbox; central has not applied it yet (as far as the edge knows).
    Queued,
    /// Applied by central at feed sequence `applied_at`; counted until the
    /// edge's copy of the feed reaches it.
    Settled { applied_at: u64 },
    /// Central refused the purchase (or, for a spend, the purchase paying for
    /// it). Counts for nothing; kept so the resident sees it.
    PaymentFailed { reason: RefusalReason },
}

/// One debit or stamp movement the edge made and central has not yet shown
/// back in the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: IdempotencyKey,
    /// Creation order, for choosing the oldest purchase to fund a message.
    pub seq: u64,
    pub resident: ResidentId,
    pub contact: ContactId,
    pub kind: EntryKind,
    pub state: EntryState,
}

impl Entry {
    fn is_purchase(&self) -> bool {
        matches!(self.kind, EntryKind::Purchase { .. })
    }
}

/// A write the shell owes the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerUpdate {
    Upsert(Entry),
    Forget(IdempotencyKey),
}

/// A figure central confirmed through the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    Debit { resident: ResidentId, balance_cents: Cents },
    Stamps { resident: ResidentId, contact: ContactId, stamps: u32 },
}

/// What a resident holds for one contact, for the tablet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StampView {
    /// Stamps that may be spent now.
    pub available: u32,
    /// Of those, stamps from purchases central has not confirmed yet.
    pub awaiting_payment: u32,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// How far the edge's copy of the change feed is complete.
    cursor: u64,
    debit: HashMap<ResidentId, Cents>,
    stamps: HashMap<(ResidentId, ContactId), u32>,
    entries: BTreeMap<IdempotencyKey, Entry>,
    next_seq: u64,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the ledger from the store: the feed cursor, the confirmed
    /// figures and every entry written through [`LedgerUpdate`]s.
    pub fn restore(
        cursor: u64,
        confirmed: impl IntoIterator<Item = Confirmed>,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Self {
        let mut ledger = Ledger { cursor, ..Ledger::default() };
        for figure in confirmed {
            ledger.confirm(figure);
        }
        for entry in entries {
            ledger.next_seq = ledger.next_seq.max(entry.seq + 1);
            ledger.entries.insert(entry.key, entry);
        }
        ledger
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn entry(&self, key: &IdempotencyKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The resident's purchases and messages in the "payment failed" state.
    pub fn payment_failed<'a>(&'a self, resident: &'a ResidentId) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .values()
            .filter(move |e| &e.resident == resident && matches!(e.state, EntryState::PaymentFailed { .. }))
    }

    /// The confirmed balance as central last sent it (0 if never).
    pub fn confirmed_debit(&self, resident: &ResidentId) -> Cents {
        self.debit.get(resident).copied().unwrap_or(0)
    }

    /// What the resident may spend now: confirmed balance minus debits
    /// central has not shown back yet. Negative only if central's balance
    /// fell below what is already queued (spending elsewhere while offline).
    pub fn debit_available(&self, resident: &ResidentId) -> Cents {
        let pending: Cents = self
            .entries
            .values()
            .filter(|e| &e.resident == resident && self.counts(e))
            .map(|e| match e.kind {
                EntryKind::Purchase { price_cents, .. } => price_cents,
                EntryKind::Spend { .. } => 0,
            })
            .sum();
        self.confirmed_debit(resident) - pending
    }

    /// Stamps the resident may spend on `contact` now.
    pub fn stamps(&self, resident: &ResidentId, contact: ContactId) -> StampView {
        let pools = self.pools(resident, contact);
        let awaiting: i64 = pools.pending.iter().map(|(_, free)| *free).sum();
        let available = (pools.secure_free + awaiting).max(0);
        StampView { available: clamp_u32(available), awaiting_payment: clamp_u32(awaiting.min(available)) }
    }

    /// Buys `package` for `contact` from the resident's debit account, if the
    /// price fits what is available. The returned entry must be written in
    /// the same transaction as the `BuyStamps` outbox item under `key`; if
    /// that transaction fails, call [`Ledger::forget`].
    pub fn buy(
        &mut self,
        resident: &ResidentId,
        contact: ContactId,
        package: &StampPackageRecord,
        key: IdempotencyKey,
    ) -> Result<Entry, MessagingError> {
        let available = self.debit_available(resident);
        // A free or negatively priced package is a catalog error, not a gift.
        if package.price_cents <= 0 || package.stamps == 0 || package.price_cents > available {
            return Err(MessagingError::InsufficientFunds {
                available_cents: available,
                price_cents: package.price_cents,
            });
        }
        let kind = EntryKind::Purchase { stamps: package.stamps, price_cents: package.price_cents };
        Ok(self.insert(key, resident, contact, kind))
    }

    /// Spends one stamp for the message sent under `key`: from confirmed
    /// stamps first, else from the oldest queued purchase with a stamp left.
    /// Write the entry with the `SendMessage` item (its `funded_by` is
    /// [`Funding::funded_by`] of the entry's funding).
    pub fn spend(
        &mut self,
        resident: &ResidentId,
        contact: ContactId,
        key: IdempotencyKey,
    ) -> Result<Entry, MessagingError> {
        let pools = self.pools(resident, contact);
        let awaiting: i64 = pools.pending.iter().map(|(_, free)| *free).sum();
        if pools.secure_free + awaiting < 1 {
            return Err(MessagingError::NoStamps { contact });
        }
        let funding = if pools.secure_free >= 1 {
            Funding::Confirmed
        } else {
            match pools.pending.iter().find(|(_, free)| *free >= 1) {
                Some((purchase, _)) => Funding::Purchase(*purchase),
                None => return Err(MessagingError::NoStamps { contact }),
            }
        };
        Ok(self.insert(key, resident, contact, EntryKind::Spend { funding }))
    }

    /// Drops an entry: a reservation whose transaction failed, or a
    /// "payment failed" entry the resident has dealt with. Returns whether it
    /// existed.
    pub fn forget(&mut self, key: &IdempotencyKey) -> bool {
        self.entries.remove(key).is_some()
    }

    /// The resident has seen a "payment failed" entry and chosen what to do
    /// (buy again and resend, or turn the message back into a draft).
    /// Refuses (returns `None`) for entries in any other state, so nothing
    /// pending can be dismissed by mistake.
    pub fn dismiss(&mut self, key: &IdempotencyKey) -> Option<LedgerUpdate> {
        match self.entries.get(key)?.state {
            EntryState::PaymentFailed { .. } => {
                self.entries.remove(key);
                Some(LedgerUpdate::Forget(*key))
            }
            _ => None,
        }
    }

    /// Central's verdict on the outbox item under `key`. Items that are not
    /// ledger entries (call records, audit rows) are ignored.
    pub fn settle(&mut self, key: &IdempotencyKey, outcome: &DeliveryOutcome) -> Vec<LedgerUpdate> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Vec::new();
        };
        if !matches!(entry.state, EntryState::Queued) {
            // A repeated verdict (duplicate ack) changes nothing.
            return Vec::new();
        }
        match outcome {
            DeliveryOutcome::Accepted { applied_at } | DeliveryOutcome::Duplicate { applied_at } => {
                if *applied_at <= self.cursor {
                    self.entries.remove(key);
                    vec![LedgerUpdate::Forget(*key)]
                } else {
                    entry.state = EntryState::Settled { applied_at: *applied_at };
                    vec![LedgerUpdate::Upsert(entry.clone())]
                }
            }
            DeliveryOutcome::Refused { permanent: false, .. } => Vec::new(),
            DeliveryOutcome::Refused { reason, permanent: true } => {
                if entry.is_purchase() {
                    entry.state = EntryState::PaymentFailed { reason: reason.clone() };
                    let mut updates = vec![LedgerUpdate::Upsert(entry.clone())];
                    let failed = RefusalReason::FundingRefused { purchase: *key };
                    for spend in self.entries.values_mut() {
                        let funded_here = spend.kind == EntryKind::Spend { funding: Funding::Purchase(*key) };
                        if funded_here && spend.state == EntryState::Queued {
                            spend.state = EntryState::PaymentFailed { reason: failed.clone() };
                            updates.push(LedgerUpdate::Upsert(spend.clone()));
                        }
                    }
                    updates
                } else if matches!(reason, RefusalReason::FundingRefused { .. }) {
                    entry.state = EntryState::PaymentFailed { reason: reason.clone() };
                    vec![LedgerUpdate::Upsert(entry.clone())]
                } else {
                    // Central took no stamp for a message it refused; the
                    // outbox keeps the message parked with the reason.
                    self.entries.remove(key);
                    vec![LedgerUpdate::Forget(*key)]
                }
            }
        }
    }

    /// The shell committed a change-feed page ending at `cursor`, carrying
    /// these confirmed figures. Debits the feed now shows stop counting.
    pub fn apply_sync(
        &mut self,
        cursor: u64,
        figures: impl IntoIterator<Item = Confirmed>,
    ) -> Vec<LedgerUpdate> {
        for figure in figures {
            self.confirm(figure);
        }
        // A resync restarts the feed from 0 while the old copy (complete to
        // the old cursor) is still served, so the cursor never goes back.
        self.cursor = self.cursor.max(cursor);
        let reflected: Vec<IdempotencyKey> = self
            .entries
            .values()
            .filter(|e| matches!(e.state, EntryState::Settled { applied_at } if applied_at <= self.cursor))
            .map(|e| e.key)
            .collect();
        reflected
            .into_iter()
            .map(|key| {
                self.entries.remove(&key);
                LedgerUpdate::Forget(key)
            })
            .collect()
    }

    fn confirm(&mut self, figure: Confirmed) {
        match figure {
            Confirmed::Debit { resident, balance_cents } => {
                self.debit.insert(resident, balance_cents);
            }
            Confirmed::Stamps { resident, contact, stamps } => {
                self.stamps.insert((resident, contact), stamps);
            }
        }
    }

    fn insert(
        &mut self,
        key: IdempotencyKey,
        resident: &ResidentId,
        contact: ContactId,
        kind: EntryKind,
    ) -> Entry {
        let entry = Entry {
            key,
            seq: self.next_seq,
            resident: resident.clone(),
            contact,
            kind,
            state: EntryState::Queued,
        };
        self.next_seq += 1;
        self.entries.insert(key, entry.clone());
        entry
    }

    /// Whether an entry still counts on top of the confirmed figures.
    fn counts(&self, entry: &Entry) -> bool {
        match entry.state {
            EntryState::Queued => true,
            EntryState::Settled { applied_at } => applied_at > self.cursor,
            EntryState::PaymentFailed { .. } => false,
        }
    }

    /// Stamps for one conversation split by how safe they are: `secure_free`
    /// counts stamps central has been paid for, minus messages spending them;
    /// `pending` lists each queued purchase (oldest first) with its stamps
    /// not yet promised to a message.
    fn pools(&self, resident: &ResidentId, contact: ContactId) -> Pools {
        let confirmed = i64::from(self.stamps.get(&(resident.clone(), contact)).copied().unwrap_or(0));
        let mut secure_free = confirmed;
        let mut queued_purchases: Vec<(u64, IdempotencyKey, i64)> = Vec::new();
        let mut spends_on: HashMap<IdempotencyKey, i64> = HashMap::new();
        let mine = self.entries.values().filter(|e| &e.resident == resident && e.contact == contact);
        for entry in mine.filter(|e| self.counts(e)) {
            match (&entry.kind, &entry.state) {
                (EntryKind::Purchase { stamps, .. }, EntryState::Queued) => {
                    queued_purchases.push((entry.seq, entry.key, i64::from(*stamps)));
                }
                (EntryKind::Purchase { stamps, .. }, _) => secure_free += i64::from(*stamps),
                (EntryKind::Spend { funding: Funding::Purchase(p) }, EntryState::Queued) => {
                    *spends_on.entry(*p).or_default() += 1;
                }
                (EntryKind::Spend { .. }, _) => secure_free -= 1,
            }
        }
        queued_purchases.sort_unstable();
        let queued_keys: Vec<IdempotencyKey> = queued_purchases.iter().map(|(_, k, _)| *k).collect();
        // A queued spend whose purchase has since settled (or been forgotten
        // once the feed showed it) draws on the secure pool.
        for (purchase, count) in &spends_on {
            if !queued_keys.contains(purchase) {
                secure_free -= count;
            }
        }
        let pending = queued_purchases
            .into_iter()
            .map(|(_, key, stamps)| (key, stamps - spends_on.get(&key).copied().unwrap_or(0)))
            .collect();
        Pools { secure_free, pending }
    }
}

struct Pools {
    secure_free: i64,
    pending: Vec<(IdempotencyKey, i64)>,
}

fn clamp_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}
