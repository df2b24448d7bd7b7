//! The service's logging, shared with the bridge benchmark's node so that
//! the benchmark measures what ships: `RUST_LOG` or `info`, to the journal
//! with structured fields under systemd, else formatted on stderr.
//!
//! The level matters to the media path's cost: `moq-transport` opens a
//! session span at the most verbose level the filter enables for
//! `moq_transport::session`, and enters it on every stream read and write.

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // Under systemd stderr is already captured, but the journal keeps the
    // structured fields.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            registry.with(journald).init();
            return;
        }
    }
    registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).init();
}
