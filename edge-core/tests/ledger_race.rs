//! The ledger: offline purchases never overspend, two tablets racing for
//! one resident included, and a refused purchase turns the messages it paid
//! for into "payment failed" instead of dropping or sending them.

use edge_core::ledger::{Confirmed, EntryKind, EntryState, Funding, Ledger, LedgerUpdate};
use proptest::prelude::*;
use proto::domain::{ContactId, ResidentId};
use proto::messaging::*;

const C: ContactId = ContactId(1);

fn r() -> ResidentId {
    ResidentId::new("R-1")
}

fn key(n: u128) -> IdempotencyKey {
    IdempotencyKey::from_u128(n)
}

fn package(stamps: u32, price_cents: i64) -> StampPackageRecord {
    StampPackageRecord { id: PackageId(u64::from(stamps)), stamps, price_cents }
}

fn ledger(balance: i64, stamps: u32) -> Ledger {
    let mut l = Ledger::new();
    l.apply_sync(
        10,
        [
            Confirmed::Debit { resident: r(), balance_cents: balance },
            Confirmed::Stamps { resident: r(), contact: C, stamps },
        ],
    );
    l
}

#[test]
fn a_purchase_must_fit_the_confirmed_balance_minus_what_is_queued() {
    let mut l = ledger(1000, 0);
    l.buy(&r(), C, &package(5, 600), key(1)).unwrap();
    assert_eq!(l.debit_available(&r()), 400);
    assert_eq!(
        l.buy(&r(), C, &package(5, 600), key(2)),
        Err(MessagingError::InsufficientFunds { available_cents: 400, price_cents: 600 })
    );
    l.buy(&r(), C, &package(1, 400), key(3)).unwrap();
    assert_eq!(l.debit_available(&r()), 0);
}

#[test]
fn an_applied_debit_counts_until_the_feed_shows_it() {
    let mut l = ledger(1000, 0);
    l.buy(&r(), C, &package(5, 600), key(1)).unwrap();
    // Central applied it at feed sequence 12; the edge's copy is at 10.
    let updates = l.settle(&key(1), &DeliveryOutcome::Accepted { applied_at: 12 });
    assert!(
        matches!(&updates[..], [LedgerUpdate::Upsert(e)] if e.state == EntryState::Settled { applied_at: 12 })
    );
    assert_eq!(l.debit_available(&r()), 400, "the stale confirmed 1000 must not reappear");
    // A page to 11 with the old balance changes nothing.
    assert!(l.apply_sync(11, [Confirmed::Debit { resident: r(), balance_cents: 1000 }]).is_empty());
    assert_eq!(l.debit_available(&r()), 400);
    // The page reaching 12 carries the debited balance; the entry is done.
    let updates = l.apply_sync(12, [Confirmed::Debit { resident: r(), balance_cents: 400 }]);
    assert_eq!(updates, vec![LedgerUpdate::Forget(key(1))]);
    assert_eq!(l.debit_available(&r()), 400);
    // A resync restarting from 0 does not move the cursor back.
    l.apply_sync(0, []);
    assert_eq!(l.cursor(), 12);
}

#[test]
fn a_refused_purchase_fails_the_messages_it_paid_for() {
    let mut l = ledger(1000, 1);
    // One confirmed stamp, then five bought offline.
    let first = l.spend(&r(), C, key(10)).unwrap();
    assert_eq!(first.kind, EntryKind::Spend { funding: Funding::Confirmed });
    assert_eq!(l.stamps(&r(), C).available, 0);
    assert_eq!(l.spend(&r(), C, key(11)), Err(MessagingError::NoStamps { contact: C }));
    l.buy(&r(), C, &package(5, 300), key(1)).unwrap();
    assert_eq!(l.stamps(&r(), C).available, 5);
    assert_eq!(l.stamps(&r(), C).awaiting_payment, 5);
    let second = l.spend(&r(), C, key(11)).unwrap();
    assert_eq!(second.kind, EntryKind::Spend { funding: Funding::Purchase(key(1)) });
    assert_eq!(
        l.spend(&r(), C, key(12)).unwrap().kind,
        EntryKind::Spend { funding: Funding::Purchase(key(1)) }
    );
    assert_eq!(l.stamps(&r(), C).available, 3);

    // Central: the account was spent at commissary meanwhile.
    let refusal = RefusalReason::InsufficientFunds { balance_cents: 100, price_cents: 300 };
    let updates = l.settle(&key(1), &DeliveryOutcome::Refused { reason: refusal.clone(), permanent: true });
    assert_eq!(updates.len(), 3, "the purchase and both messages it paid for: {updates:?}");
    assert_eq!(l.entry(&key(1)).unwrap().state, EntryState::PaymentFailed { reason: refusal });
    for k in [11, 12] {
        assert_eq!(
            l.entry(&key(k)).unwrap().state,
            EntryState::PaymentFailed { reason: RefusalReason::FundingRefused { purchase: key(1) } }
        );
    }
    // The message paid from confirmed stamps is untouched; no money is held.
    assert_eq!(l.entry(&key(10)).unwrap().state, EntryState::Queued);
    assert_eq!(l.debit_available(&r()), 1000);
    assert_eq!(l.stamps(&r(), C).available, 0);
    assert_eq!(l.payment_failed(&r()).count(), 3);
    // Only payment-failed entries can be dismissed.
    assert_eq!(l.dismiss(&key(10)), None);
    assert_eq!(l.dismiss(&key(11)), Some(LedgerUpdate::Forget(key(11))));
}

#[test]
fn a_transient_refusal_changes_nothing_and_a_delivery_refusal_returns_the_stamp() {
    let mut l = ledger(1000, 1);
    l.spend(&r(), C, key(1)).unwrap();
    let busy = DeliveryOutcome::Refused {
        reason: RefusalReason::Unavailable { detail: "x".into() },
        permanent: false,
    };
    assert!(l.settle(&key(1), &busy).is_empty());
    assert_eq!(l.stamps(&r(), C).available, 0);
    let refused = DeliveryOutcome::Refused {
        reason: RefusalReason::NotAllowed {
            service: proto::domain::Service::Message,
            detail: "revoked".into(),
        },
        permanent: true,
    };
    assert_eq!(l.settle(&key(1), &refused), vec![LedgerUpdate::Forget(key(1))]);
    assert_eq!(l.stamps(&r(), C).available, 1, "central took no stamp for a message it refused");
}

#[test]
fn restore_gives_back_the_same_figures() {
    let mut l = ledger(1000, 2);
    l.buy(&r(), C, &package(5, 300), key(1)).unwrap();
    l.spend(&r(), C, key(2)).unwrap();
    l.buy(&r(), C, &package(1, 100), key(3)).unwrap();
    l.settle(&key(3), &DeliveryOutcome::Accepted { applied_at: 20 });
    let figures = [
        Confirmed::Debit { resident: r(), balance_cents: 1000 },
        Confirmed::Stamps { resident: r(), contact: C, stamps: 2 },
    ];
    let restored = Ledger::restore(l.cursor(), figures, l.entries().cloned());
    assert_eq!(restored.debit_available(&r()), l.debit_available(&r()));
    assert_eq!(restored.stamps(&r(), C), l.stamps(&r(), C));
    assert_eq!(restored.debit_available(&r()), 600);
}

/// What one tablet does: look at the balance, then buy what it saw fits.
#[derive(Debug, Clone)]
enum Step {
    Look {
        tablet: usize,
    },
    Buy {
        tablet: usize,
        stamps: u32,
    },
    /// Central answers the oldest queued purchase.
    Answer {
        accept: bool,
    },
    /// The feed catches up with central.
    Sync,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize).prop_map(|tablet| Step::Look { tablet }),
        4 => (0..2usize, prop::sample::select(vec![1u32, 5, 10, 40])).prop_map(|(tablet, stamps)| Step::Buy { tablet, stamps }),
        2 => any::<bool>().prop_map(|accept| Step::Answer { accept }),
        1 => Just(Step::Sync),
    ]
}

fn price(stamps: u32) -> i64 {
    i64::from(stamps) * 45
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Two tablets interleave "look, then buy what fits" in any order while
    /// central answers and the feed syncs at random. Whatever the order, the
    /// purchases the ledger allowed never add up to more than the balance,
    /// and central (which refuses what it cannot pay) never has to refuse one.
    #[test]
    fn racing_tablets_never_overspend(balance in 0i64..3000, steps in prop::collection::vec(step(), 1..80)) {
        let mut l = ledger(balance, 0);
        let mut central_balance = balance;
        let mut feed = 10u64;
        let mut queued: std::collections::VecDeque<(IdempotencyKey, i64)> = Default::default();
        let mut seen = [0i64; 2];
        let mut next_key = 0u128;
        for s in steps {
            match s {
                Step::Look { tablet } => seen[tablet] = l.debit_available(&r()),
                Step::Buy { tablet, stamps } => {
                    next_key += 1;
                    let k = key(next_key);
                    let before = l.debit_available(&r());
                    match l.buy(&r(), C, &package(stamps, price(stamps)), k) {
                        Ok(_) => {
                            prop_assert!(price(stamps) <= before);
                            queued.push_back((k, price(stamps)));
                        }
                        Err(MessagingError::InsufficientFunds { available_cents, .. }) => {
                            prop_assert_eq!(available_cents, before);
                            // The tablet's stale look may have promised more.
                            prop_assert!(price(stamps) > before || seen[tablet] < price(stamps));
                        }
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Step::Answer { accept } => {
                    if let Some((k, p)) = queued.pop_front() {
                        let outcome = if accept && p <= central_balance {
                            central_balance -= p;
                            feed += 1;
                            DeliveryOutcome::Accepted { applied_at: feed }
                        } else {
                            prop_assert!(!accept || p <= central_balance, "central had to refuse: overspent");
                            DeliveryOutcome::Refused {
                                reason: RefusalReason::Unavailable { detail: "declined".into() },
                                permanent: true,
                            }
                        };
                        l.settle(&k, &outcome);
                    }
                }
                Step::Sync => {
                    l.apply_sync(feed, [Confirmed::Debit { resident: r(), balance_cents: central_balance }]);
                }
            }
            let pending: i64 = queued.iter().map(|(_, p)| p).sum();
            // Never more than central holds minus what is on its way.
            prop_assert!(l.debit_available(&r()) <= central_balance - pending);
            prop_assert!(l.debit_available(&r()) >= 0);
            prop_assert!(central_balance >= 0);
        }
    }
}
