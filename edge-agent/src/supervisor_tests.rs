//! The link core on a simulated clock, and the key's lockdown against a
//! real store.

use std::time::Duration;

use edge_core::{outbox::OutboxConfig, sync::SyncConfig};
use proto::domain::LockdownScope;
use supervisor_frame::{FrameError, LedPattern, PanelStatus, ToPanel};

use super::*;
use crate::{state::EdgeState, store::Store, supervisor_link::apply_key_lockdown};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn drain(core: &mut LinkCore) -> Vec<LinkAction> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

fn sends(actions: &[LinkAction]) -> Vec<ToPanel> {
    actions
        .iter()
        .filter_map(|a| match a {
            LinkAction::Send(m) => Some(*m),
            _ => None,
        })
        .collect()
}

fn records(actions: &[LinkAction]) -> Vec<(&'static str, Option<ToPanel>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            LinkAction::Record { action, ack, .. } => Some((*action, *ack)),
            _ => None,
        })
        .collect()
}

fn key_actions(actions: &[LinkAction]) -> Vec<bool> {
    actions
        .iter()
        .filter_map(|a| match a {
            LinkAction::KeyLockdown { on } => Some(*on),
            _ => None,
        })
        .collect()
}

fn connected(config: SupervisorConfig) -> LinkCore {
    let mut core = LinkCore::new(config);
    core.on_connected(secs(0));
    core
}

#[test]
fn a_connect_sends_settings_leds_and_a_heartbeat_then_one_heartbeat_a_second() {
    let config = SupervisorConfig { heartbeat_timeout_secs: 5, ..Default::default() };
    let mut core = connected(config.clone());
    let first = sends(&drain(&mut core));
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(first[0], ToPanel::Configure(config.panel_config()));
    assert!(matches!(first[1], ToPanel::Leds(_)));
    assert_eq!(first[2], ToPanel::Heartbeat { seq: 0 });
    assert_eq!(core.poll_timeout(), Some(secs(1)));
    core.handle_timeout(Duration::from_millis(999));
    assert!(drain(&mut core).is_empty());
    for s in 1..=5 {
        core.handle_timeout(secs(s));
        assert_eq!(sends(&drain(&mut core)), [ToPanel::Heartbeat { seq: s as u32 }]);
    }
}

#[test]
fn the_key_locks_down_at_once_and_is_acted_on_again_after_every_reconnect() {
    let mut core = connected(SupervisorConfig::default());
    drain(&mut core);
    core.on_status(secs(1), PanelStatus::default());
    assert!(key_actions(&drain(&mut core)) == [false], "key off at connect: lift a key lockdown left behind");
    core.on_status(secs(2), PanelStatus { key_lockdown: true, ..Default::default() });
    assert_eq!(key_actions(&drain(&mut core)), [true]);
    // The same state again is not a new action...
    core.on_status(secs(3), PanelStatus { key_lockdown: true, ..Default::default() });
    assert!(key_actions(&drain(&mut core)).is_empty());
    // ...until the link is lost and found again.
    core.on_disconnected();
    core.on_connected(secs(10));
    drain(&mut core);
    core.on_status(secs(10), PanelStatus { key_lockdown: true, ..Default::default() });
    assert_eq!(key_actions(&drain(&mut core)), [true]);
}

#[test]
fn with_cli_lift_turning_the_key_back_only_records_it() {
    let mut core = connected(SupervisorConfig { key_lift: KeyLift::Cli, ..Default::default() });
    drain(&mut core);
    core.on_status(secs(1), PanelStatus::default());
    assert!(drain(&mut core).is_empty(), "key off at connect: nothing to do");
    core.on_status(secs(2), PanelStatus { key_lockdown: true, ..Default::default() });
    assert_eq!(key_actions(&drain(&mut core)), [true]);
    core.on_status(secs(3), PanelStatus::default());
    let actions = drain(&mut core);
    assert!(key_actions(&actions).is_empty());
    assert_eq!(records(&actions), [("panel.key_released", None)]);
}

#[test]
fn resets_and_tampers_are_recorded_once_then_acknowledged_with_both_totals() {
    let mut core = connected(SupervisorConfig::default());
    drain(&mut core);
    let status =
        PanelStatus { main_board_resets: 2, resets_acked: 1, tamper_events: 3, ..Default::default() };
    core.on_status(secs(1), status);
    let actions = drain(&mut core);
    assert_eq!(
        records(&actions),
        [
            ("panel.main_board_reset", None),
            ("panel.tamper", Some(ToPanel::AckEvents { resets: 2, tampers: 3 }))
        ]
    );
    core.recorded(true);
    core.recorded(true);
    // The ack has not reached the panel yet: the next status repeats the counts.
    core.on_status(secs(2), status);
    assert!(records(&drain(&mut core)).is_empty(), "recorded twice");
    // A new reset only: the ack keeps the tamper total already recorded.
    core.on_status(
        secs(3),
        PanelStatus { main_board_resets: 3, resets_acked: 2, tampers_acked: 3, ..status },
    );
    assert_eq!(
        records(&drain(&mut core)),
        [("panel.main_board_reset", Some(ToPanel::AckEvents { resets: 3, tampers: 3 }))]
    );
}

#[test]
fn a_failed_record_is_retried_and_never_acknowledged_unrecorded() {
    let mut core = connected(SupervisorConfig::default());
    drain(&mut core);
    let status = PanelStatus { tamper_events: 1, ..Default::default() };
    core.on_status(secs(1), status);
    assert_eq!(records(&drain(&mut core)).len(), 1);
    core.recorded(false);
    core.on_status(secs(2), status);
    assert_eq!(
        records(&drain(&mut core)),
        [("panel.tamper", Some(ToPanel::AckEvents { resets: 0, tampers: 1 }))]
    );
}

#[test]
fn over_temperature_is_recorded_when_raised_and_cleared_not_for_a_cool_start() {
    let mut core = connected(SupervisorConfig::default());
    drain(&mut core);
    core.on_status(secs(1), PanelStatus { temperature_centi: Some(2_500), ..Default::default() });
    assert!(records(&drain(&mut core)).is_empty());
    let hot = PanelStatus { temperature_centi: Some(8_000), over_temp: true, ..Default::default() };
    core.on_status(secs(2), hot);
    assert_eq!(records(&drain(&mut core)), [("panel.over_temperature", None)]);
    core.on_status(secs(3), hot);
    assert!(records(&drain(&mut core)).is_empty());
    core.on_status(secs(4), PanelStatus { temperature_centi: Some(6_000), ..Default::default() });
    assert_eq!(records(&drain(&mut core)), [("panel.temperature_normal", None)]);
}

#[test]
fn the_link_is_down_after_three_seconds_without_a_status_and_counts_bad_frames() {
    let mut core = connected(SupervisorConfig::default());
    drain(&mut core);
    assert!(!core.view().link_up);
    core.on_status(secs(1), PanelStatus::default());
    assert!(core.view().link_up);
    core.handle_timeout(Duration::from_millis(3_999));
    assert!(core.view().link_up);
    core.handle_timeout(secs(4));
    assert!(!core.view().link_up);
    core.on_frame_error(FrameError::Crc);
    core.on_frame_error(FrameError::Oversize);
    assert_eq!(core.view().frame_errors, 2);
}

#[test]
fn leds_are_sent_on_change_only_and_show_offline_and_lockdown() {
    let mut core = connected(SupervisorConfig::default());
    drain(&mut core);
    core.set_led_inputs(false, false);
    assert!(drain(&mut core).is_empty(), "unchanged from the connect's LEDs");
    core.set_led_inputs(true, true);
    let sent = sends(&drain(&mut core));
    assert_eq!(
        sent,
        [ToPanel::Leds(supervisor_frame::LedState {
            online: LedPattern::On,
            offline: LedPattern::Off,
            lockdown: LedPattern::On,
            fault: LedPattern::Off,
        })]
    );
    core.set_led_inputs(true, true);
    assert!(drain(&mut core).is_empty());
}

#[test]
fn config_reads_the_supervisor_table_and_refuses_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    std::fs::write(
        &path,
        "[supervisor]\nuart = \"tcp:127.0.0.1:5000\"\nheartbeat_timeout_secs = 3\nkey_lift = \"cli\"\n",
    )
    .unwrap();
    let config = crate::config::Config::load(Some(&path)).unwrap();
    let panel = config.supervisor.unwrap();
    assert_eq!(panel.uart, "tcp:127.0.0.1:5000");
    assert_eq!(panel.key_lift, KeyLift::Cli);
    assert_eq!(panel.panel_config().heartbeat_timeout_ms, 3_000);
    assert_eq!(panel.baud, 115_200);
    std::fs::write(&path, "[supervisor]\nkey_lift = \"turn\"\n").unwrap();
    assert!(crate::config::Config::load(Some(&path)).is_err());
}

fn state(dir: &tempfile::TempDir) -> EdgeState {
    let store = Store::open(&dir.path().join("edge.db")).unwrap();
    EdgeState::load("f".into(), store, SyncConfig::default(), OutboxConfig::default(), jiff::Timestamp::now())
        .unwrap()
        .0
}

#[test]
fn the_key_uses_the_lockdown_path_and_lifts_only_its_own_lockdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = state(&dir);
    let now = jiff::Timestamp::now();
    assert!(apply_key_lockdown(&mut state, true, now).unwrap());
    assert!(state.lockdowns.contains(&LockdownScope::Facility));
    let rows = state.store.lockdown_rows().unwrap();
    assert_eq!(rows[0].actor, KEY_ACTOR);
    // Re-sent after a reconnect: nothing written again.
    assert!(!apply_key_lockdown(&mut state, true, now).unwrap());
    assert!(apply_key_lockdown(&mut state, false, now).unwrap());
    assert!(state.lockdowns.is_empty());
    // A lockdown from the CLI is not lifted by the key.
    state.store.set_lockdown(&LockdownScope::Facility, true, "it:alice", now).unwrap();
    state.lockdowns = state.store.lockdowns().unwrap();
    assert!(!apply_key_lockdown(&mut state, false, now).unwrap());
    assert!(state.lockdowns.contains(&LockdownScope::Facility));
    // Persisted, and audited in the same transactions.
    drop(state);
    let store = Store::open(&dir.path().join("edge.db")).unwrap();
    assert!(store.lockdowns().unwrap().contains(&LockdownScope::Facility));
    let report = store.audit_verify().unwrap();
    assert!(report.is_intact());
    assert_eq!(report.rows_checked, 3, "key on, key off, CLI on");
    let panel_rows = store.audit_recent_by_actor("panel", 10).unwrap();
    let actions: Vec<_> = panel_rows.iter().map(|row| row["action"].as_str().unwrap_or("")).collect();
    assert_eq!(actions, ["lockdown.on", "lockdown.off"]);
}

/// A fake panel on loopback: the shell connects, gets the panel's frames
/// and acts on the store.
mod shell {
    use std::collections::HashSet;

    use supervisor_frame::{Decoder, ToAgent, MAX_FRAME};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    use super::*;
    use crate::state::Shared;

    async fn next_frame(stream: &mut TcpStream, decoder: &mut Decoder) -> ToPanel {
        let mut byte = [0u8; 1];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
            let n = read.expect("a frame within 5 s").expect("read");
            assert_eq!(n, 1, "the link closed");
            if let Some(frame) = decoder.push::<ToPanel>(byte[0]) {
                return frame.expect("a valid frame");
            }
        }
    }

    /// Frames until one matches.
    async fn wait_for(
        stream: &mut TcpStream,
        decoder: &mut Decoder,
        pred: impl Fn(&ToPanel) -> bool,
    ) -> ToPanel {
        loop {
            let frame = next_frame(stream, decoder).await;
            if pred(&frame) {
                return frame;
            }
        }
    }

    async fn send(stream: &mut TcpStream, status: PanelStatus) {
        let mut buf = [0u8; MAX_FRAME];
        let bytes = supervisor_frame::encode(&ToAgent::Status(status), &mut buf).expect("fits");
        stream.write_all(bytes).await.expect("write");
    }

    #[tokio::test]
    async fn the_shell_applies_the_key_records_a_reset_before_acking_and_resends_after_reconnect() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::new(state(&dir), HashSet::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = SupervisorConfig {
            uart: format!("tcp:{}", listener.local_addr().unwrap()),
            heartbeat_timeout_secs: 7,
            ..Default::default()
        };
        let link = tokio::spawn(crate::supervisor_link::run(config.clone(), shared.clone()));

        let (mut panel, _) = listener.accept().await.unwrap();
        let mut decoder = Decoder::new();
        assert_eq!(next_frame(&mut panel, &mut decoder).await, ToPanel::Configure(config.panel_config()));
        wait_for(&mut panel, &mut decoder, |f| matches!(f, ToPanel::Heartbeat { .. })).await;

        send(&mut panel, PanelStatus { key_lockdown: true, main_board_resets: 1, ..Default::default() })
            .await;
        let ack = wait_for(&mut panel, &mut decoder, |f| matches!(f, ToPanel::AckEvents { .. })).await;
        assert_eq!(ack, ToPanel::AckEvents { resets: 1, tampers: 0 });
        {
            let state = shared.lock();
            assert!(state.lockdowns.contains(&LockdownScope::Facility));
            // The reset was committed before the ack went out.
            let rows = state.store.audit_recent_by_actor("panel", 10).unwrap();
            let actions: Vec<_> =
                rows.iter().map(|r| r["action"].as_str().unwrap_or("").to_string()).collect();
            assert_eq!(actions, ["lockdown.on", "panel.main_board_reset"]);
            assert!(state.panel.link_up);
        }

        // The link drops; the shell reopens it and starts over with the settings.
        drop(panel);
        let (mut panel, _) =
            tokio::time::timeout(Duration::from_secs(5), listener.accept()).await.unwrap().unwrap();
        let mut decoder = Decoder::new();
        assert_eq!(next_frame(&mut panel, &mut decoder).await, ToPanel::Configure(config.panel_config()));
        // Key turned back while the link was down: the key's lockdown is lifted.
        send(&mut panel, PanelStatus { main_board_resets: 1, resets_acked: 1, ..Default::default() }).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while shared.lock().lockdowns.contains(&LockdownScope::Facility) {
            assert!(tokio::time::Instant::now() < deadline, "the key's lockdown was not lifted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(shared.lock().panel.reconnects, 2);
        link.abort();
    }
}
