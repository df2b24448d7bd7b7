//! Call signalling vocabulary shared by the tablet link and the central link
//! (issue 5; media over MoQ comes later).
//!
//! The tablet never learns "declined": [`CallEndReason::DidNotAnswer`] covers
//! declined, refused while ringing and unanswered alike.

use serde::{Deserialize, Serialize};

/// A call's id, drawn at random by the edge (unique per box across restarts).
pub type CallId = u64;

/// How a call ended, in the words the tablet shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallEndReason {
    DidNotAnswer,
    TimeLimit,
    ResidentHungUp,
    ContactHungUp,
    Lockdown,
    Suspended,
    Blocked,
    AccountClosed,
    ConnectionLost,
    EdgeShutdown,
    EdgeRestarted,
}

/// Where a call stands, pushed to the resident's tablet at every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallState {
    Ringing,
    /// The contact answered; the tablet runs its timer from here.
    Connected {
        limit_secs: u32,
    },
    /// The timer turns red: the limit is `remaining_secs` away.
    Warned {
        remaining_secs: u32,
    },
    Ended {
        reason: CallEndReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallUpdate {
    pub call_id: CallId,
    pub state: CallState,
}

/// Where a call's media goes: the tablet announces `publish` on its media
/// connection to the edge and subscribes to the tracks of `subscribe`
/// (MoQ namespaces as `/`-separated paths; tracks `video` and `audio`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMedia {
    pub publish: String,
    pub subscribe: String,
}

/// What the contact did, as central reports it to the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContactEvent {
    Answered,
    Declined,
    HungUp,
}

/// One contact-side event of one call. Central reports every event that has
/// happened so far on each poll; the edge ignores repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCallEvent {
    pub call_id: CallId,
    pub event: ContactEvent,
}
