//! Downlink change-feed state machine (work in progress).

/// How the shell must apply a batch of the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyMode {
    /// An incremental page: apply the changes and the new cursor.
    Normal,
    /// A page of a full resync from cursor 0: keep serving the old data; when
    /// the final page (`more == false`) commits, drop every entity the resync
    /// did not re-send.
    Resync,
}
