//! The service's logging, shared with the bridge benchmark's node so that
//! the benchmark measures what ships: `RUST_LOG` or [`DEFAULT_DIRECTIVES`],
//! to the journal with structured fields under systemd, else formatted on
//! stderr.

/// What the service logs when `RUST_LOG` is unset: its own events from
/// `info` up, and nothing from `moq-transport`.
///
/// That library logs routine media events as warnings and errors: each
/// refused subscription (a tablet subscribing in the moment between the
/// answer and the contact's tracks reaching the relay, or a tablet of an
/// older release that subscribes while the phone rings, retrying every
/// 100 ms), and each stream reset when a call ends. None of them needs
/// action, and they would bury the warnings that do. The bridge logs its
/// own admissions, refusals and relay failures. On a development host
/// `RUST_LOG=info,moq_transport=debug` brings the library's events back
/// for a diagnosis.
///
/// It also keeps the media path cheaper: `moq-transport` opens a session
/// span at the most verbose level the filter enables for its target and
/// enters it on every stream read and write; with the target off there is
/// no span.
pub const DEFAULT_DIRECTIVES: &str = "info,moq_transport=off";

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_DIRECTIVES));
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
