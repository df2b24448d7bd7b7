//! The QEMU tier (issue 4): the aarch64 edge image, booted under
//! qemu-system-aarch64, provisioned from a kit on its data partition, serving
//! tablets on the host through a forwarded port and reaching central-sim on
//! the host. Power is cut (QEMU killed) in the middle of a queue, repeatedly.
//!
//! Needs `cargo xtask image edge` first; `cargo xtask test` does that and
//! runs this file with `--features qemu`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use facility_tests::qemu::{tail, Central, EdgeImage, EdgeVm, Kit};
use facility_tests::{find, mentions, CliResult};
use serde_json::Value;

const PIN: &str = "1234";
const RESIDENT: &str = "R1001";
/// Boot to agent-ready under TCG: the goal is 15 s; the limit here leaves room
/// for a loaded CI machine and for the first boot's provisioning.
const BOOT_LIMIT: Duration = Duration::from_secs(120);

fn tablet(vm: &EdgeVm, device: &Path, args: &[&str]) -> CliResult {
    let out = vm.tablet_cmd(device).args(["--resident", RESIDENT, "--pin", PIN]).args(args).output().unwrap();
    facility_tests::cli_result(out)
}

/// Retries a tablet command until `pred` holds: the guest needs a moment after
/// boot to sync, and a fresh boot to open its port.
fn tablet_until(
    vm: &EdgeVm,
    device: &Path,
    args: &[&str],
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let out = tablet(vm, device, args);
        if let Some(value) = out.json.last() {
            if pred(value) {
                return value.clone();
            }
        }
        last = format!("code {} stdout {} stderr {}", out.code, out.stdout, out.stderr);
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("tablet {args:?} never matched; last: {last}\nconsole:\n{}", tail(&vm.console(), 60));
}

fn open_all_day(central: &Central, unit: &str) {
    for weekday in 1..=7 {
        let day = weekday.to_string();
        central.admin(&["schedule", "--unit", unit, "--weekday", &day, "--windows", "00:00-24:00"]);
    }
}

/// Message IDs central holds for the resident.
fn central_mail(central: &Central) -> BTreeSet<String> {
    let shown = central.admin(&["show", "resident", RESIDENT]);
    shown.last()["mail"]
        .as_array()
        .unwrap_or_else(|| panic!("no mail: {}", shown.stdout))
        .iter()
        .filter_map(|m| m.pointer("/Mail/message/id"))
        .map(hex_id)
        .collect()
}

fn hex_id(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        Value::Array(bytes) => bytes.iter().map(|b| format!("{:02x}", b.as_u64().unwrap_or(0))).collect(),
        other => panic!("unexpected id {other}"),
    }
}

/// Sent-folder states by message id, as the tablet shows them.
fn sent_states(vm: &EdgeVm, device: &Path) -> Vec<(String, String)> {
    let sent =
        tablet_until(vm, device, &["messages", "sent"], Duration::from_secs(60), |v| v.get("ok").is_some());
    let items = find(&sent, "messages").and_then(Value::as_array).cloned().unwrap_or_default();
    items
        .iter()
        .map(|m| {
            let id = m.get("id").map(hex_id).unwrap_or_default();
            let state = m.get("state").map(|s| s.as_str().map(String::from).unwrap_or(s.to_string()));
            (id, state.unwrap_or_default())
        })
        .collect()
}

fn deliveries_clean(central: &Central) -> Value {
    let deliveries = central.admin(&["deliveries"]).last().clone();
    let twice = deliveries["applied_more_than_once"].as_array().cloned().unwrap_or_default();
    assert!(twice.is_empty(), "applied more than once: {deliveries}");
    for item in deliveries["items"].as_array().unwrap_or(&Vec::new()) {
        assert!(item["applied"].as_u64().unwrap_or(0) <= 1, "{item}");
    }
    deliveries
}

/// A facility: central-sim (unit A open all day) running on the host, and a
/// box flashed with `image` and provisioned for one tablet, not yet powered on.
fn facility(dir: &Path, image: &EdgeImage) -> (Central, EdgeVm, PathBuf) {
    let mut central = Central::init(&dir.join("central"));
    open_all_day(&central, "A");
    central.start();
    let kit = Kit::prepare(dir, &central, &["T-0001"]);
    let device = kit.devices["T-0001"].clone();
    let vm = EdgeVm::create(&dir.join("vm"), image, &kit);
    (central, vm, device)
}

#[test]
fn the_edge_image_provisions_serves_tablets_and_loses_nothing_to_power_cuts() {
    let image = EdgeImage::built(env!("CARGO_PKG_VERSION"));
    let dir = tempfile::tempdir().unwrap();
    let (mut central, mut vm, device) = facility(dir.path(), &image);

    // First boot: the kit becomes the agent's state and the agent comes up.
    let (boot_time, ready) = vm.boot(BOOT_LIMIT);
    eprintln!("first boot to agent-ready: {:.1} s ({ready})", boot_time.as_secs_f64());
    assert!(ready.contains("agent=up") && ready.contains("slot=a"), "{ready}");
    // facility-firstboot prints what it provisioned on the console.
    assert!(vm.console().contains("\"state_dir\":\"/data/edge\""), "{}", tail(&vm.console(), 40));

    // Login, contacts with reasons, and call decisions from the synced cache.
    let call = tablet_until(&vm, &device, &["call", "--contact", "1", "--kind", "video"], BOOT_LIMIT, |v| {
        mentions(v, "Allowed")
    });
    assert!(find(&call, "max_duration_secs").and_then(Value::as_u64).is_some_and(|s| s > 0), "{call}");
    // The image raises net.core.rmem_max, so the tablet port (and the relay
    // uplink, when configured) got the receive buffer the agent asks for (it
    // warns on the console when capped).
    assert!(
        !vm.console().contains("QUIC receive buffer capped"),
        "a QUIC socket's receive buffer was capped\n{}",
        tail(&vm.console(), 40)
    );
    let blocked = tablet(&vm, &device, &["call", "--contact", "3", "--kind", "voice"]);
    assert!(mentions(blocked.last(), "NumberBlocked"), "{}", blocked.stdout);
    let contacts = tablet(&vm, &device, &["contacts"]);
    assert!(mentions(contacts.last(), "AccountClosed"), "{}", contacts.stdout);

    // Forty stamps for contact 1 (package 4, 1,400 of R1001's 2,500 cents).
    let bought = tablet(&vm, &device, &["stamps", "buy", "--contact", "1", "--package", "4"]);
    assert!(bought.last().pointer("/ok/StampsBought").is_some(), "{} {}", bought.stdout, bought.stderr);

    // Central goes away; messages queue on the box; power is cut with the
    // queue non-empty, five times, some with central back and draining.
    central.stop();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut seed: u64 = std::env::var("QEMU_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    eprintln!("QEMU_FAULT_SEED={seed}");
    for cut in 0..5 {
        for i in 0..4 {
            let subject = format!("cut{cut}-msg{i}");
            let out = tablet(
                &vm,
                &device,
                &[
                    "message",
                    "send",
                    "--contact",
                    "1",
                    "--subject",
                    &subject,
                    "--body",
                    "Written before the power cut",
                ],
            );
            let queued = out.last().pointer("/ok/MessageQueued").unwrap_or_else(|| {
                panic!("message not accepted: {} {}\n{}", out.stdout, out.stderr, tail(&vm.console(), 30))
            });
            acknowledged.push(queued.get("id").map(hex_id).expect("message id"));
        }
        // Odd cuts land while central is back and the box is draining.
        if cut % 2 == 1 {
            central.start();
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(200 + (seed >> 33) % 1500));
        vm.power_cut();
        if cut % 2 == 1 {
            central.stop();
        }
        let (boot_time, ready) = vm.boot(BOOT_LIMIT);
        eprintln!("boot after power cut {cut}: {:.1} s", boot_time.as_secs_f64());
        assert!(ready.contains("agent=up"), "{ready}");
        let on_box: BTreeSet<String> = sent_states(&vm, &device).into_iter().map(|(id, _)| id).collect();
        let delivered = central_mail(&central);
        for id in &acknowledged {
            assert!(
                on_box.contains(id) || delivered.contains(id),
                "message {id} acknowledged before cut {cut} is gone\n{}",
                tail(&vm.console(), 40)
            );
        }
    }

    // Central returns: every acknowledged message arrives exactly once.
    central.start();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let delivered = central_mail(&central);
        let missing: Vec<_> = acknowledged.iter().filter(|id| !delivered.contains(*id)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {missing:?}\n{}", tail(&vm.console(), 40));
        std::thread::sleep(Duration::from_secs(1));
    }
    deliveries_clean(&central);
    let states = sent_states(&vm, &device);
    for id in &acknowledged {
        let state = states.iter().find(|(i, _)| i == id).map(|(_, s)| s.as_str());
        assert!(state.is_some_and(|s| s != "Queued"), "{id} still {state:?} on the box");
    }
}

/// `central-sim admin edges`: what the box last said it runs.
fn edge_report(central: &Central) -> Value {
    let edges = central.admin(&["edges"]);
    edges.last()["edges"].as_array().and_then(|e| e.first()).cloned().unwrap_or(Value::Null)
}

fn wait_report(
    central: &Central,
    vm: &EdgeVm,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let report = edge_report(central);
        if pred(&report) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never reported; last report {report}\nconsole:\n{}",
            tail(&vm.console(), 80)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_bad_update_falls_back_to_slot_a_and_a_good_one_is_confirmed_in_slot_b() {
    let base = EdgeImage::built(env!("CARGO_PKG_VERSION"));
    let broken = EdgeImage::built("0.1.1-broken-agent");
    let good = EdgeImage::built("0.1.2");
    let dir = tempfile::tempdir().unwrap();
    let (central, mut vm, device) = facility(dir.path(), &base);
    let (_, ready) = vm.boot(BOOT_LIMIT);
    assert!(ready.contains("slot=a") && ready.contains(&format!("version={}", base.version())), "{ready}");
    wait_report(&central, &vm, "the base image", Duration::from_secs(60), |r| r["version"] == base.version());
    let before =
        tablet(&vm, &device, &["message", "send", "--contact", "1", "--subject", "before", "--body", "x"]);
    let before_id = before.last().pointer("/ok/MessageQueued/id").map(hex_id).expect("message queued");

    // A validly signed update whose agent never comes up: installed into slot b,
    // it fails its boot checks until systemd-boot's tries run out, and the box
    // is back on slot a with the failure reported.
    central.admin(&["publish-release", &broken.release_file("bundle").display().to_string()]);
    let fell_back = wait_report(&central, &vm, "the fallback", Duration::from_secs(600), |r| {
        r["slot"] == "a" && r["last_update_failure"].as_str().is_some_and(|f| f.contains("0.1.1"))
    });
    assert_eq!(fell_back["version"], base.version(), "{fell_back}");
    assert!(fell_back["last_update_failure"].as_str().is_some_and(|f| f.contains("failed its boot checks")));
    // The broken update's agent is a program that exits at once, so its own
    // health check fails too: one failed check per try, three tries, then a
    // boot that is ready on slot a again.
    const FAILED_CHECK: &str = "Failed to start facility-health.service";
    let console = vm.wait_console("the health check of the fallback boot", Duration::from_secs(60), |text| {
        let last_failure = text.rfind(FAILED_CHECK).unwrap_or(0);
        text.rfind("FACILITY-EDGE ").is_some_and(|line| line > last_failure)
    });
    let failed_checks = console.matches(FAILED_CHECK).count();
    assert!(failed_checks >= 3, "{failed_checks} failed health checks\n{}", tail(&console, 80));
    let after_fallback = console.rfind("FACILITY-EDGE ").unwrap_or(0);
    assert!(
        console[after_fallback..].starts_with("FACILITY-EDGE READY slot=a"),
        "the fallback boot's health line is not READY on slot a\n{}",
        tail(&console, 80)
    );

    // A good update: slot b, confirmed by the health check, reported by the box.
    central.admin(&["publish-release", &good.release_file("bundle").display().to_string()]);
    let confirmed = wait_report(&central, &vm, "the good update", Duration::from_secs(400), |r| {
        r["version"] == good.version() && r["slot"] == "b" && r["on_trial"] == false
    });
    eprintln!("confirmed: {confirmed}");
    let console = vm.console_since_power_on();
    assert!(console.contains("FACILITY-EDGE READY slot=b version=0.1.2"), "{}", tail(&console, 60));

    // The data partition came through both updates: the earlier message is
    // still on the box (or already at central), and the box still serves.
    let on_box: BTreeSet<String> = sent_states(&vm, &device).into_iter().map(|(id, _)| id).collect();
    assert!(on_box.contains(&before_id) || central_mail(&central).contains(&before_id));
    let call = tablet_until(&vm, &device, &["call", "--contact", "1", "--kind", "voice"], BOOT_LIMIT, |v| {
        mentions(v, "Allowed")
    });
    assert!(mentions(&call, "Allowed"));

    // A bundle signed with a key the box does not trust: refused with the
    // reason reported, and the box stays on the confirmed slot b.
    let flash = |args: &[&str]| {
        let out = Command::new(facility_tests::bin("facility-flash")).args(args).output().unwrap();
        assert!(out.status.success(), "facility-flash {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let foreign_key = dir.path().join("foreign.key").display().to_string();
    let foreign = dir.path().join("foreign-0.1.3.bundle").display().to_string();
    let part = |name: &str| good.dir.join(name).display().to_string();
    flash(&["keygen", &foreign_key]);
    flash(&[
        "bundle",
        "create",
        "--key",
        &foreign_key,
        "--version",
        "0.1.3",
        "--kernel",
        &part("vmlinuz"),
        "--initrd",
        &part("initrd.img"),
        "--rootfs",
        &part("rootfs.ext4"),
        "-o",
        &foreign,
    ]);
    central.admin(&["publish-release", &foreign]);
    let refused = wait_report(&central, &vm, "the refusal", Duration::from_secs(300), |r| {
        r["last_update_failure"].as_str().is_some_and(|f| f.contains("0.1.3") && f.contains("refused"))
    });
    assert_eq!((refused["slot"].as_str(), refused["version"].as_str()), (Some("b"), Some(good.version())));
    eprintln!("refused: {}", refused["last_update_failure"]);

    // Power cut on the confirmed slot: it boots b again, not a.
    vm.power_cut();
    let (_, ready) = vm.boot(BOOT_LIMIT);
    assert!(ready.contains("slot=b") && ready.contains("trial=false"), "{ready}");
}
