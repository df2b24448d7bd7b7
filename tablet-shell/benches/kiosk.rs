//! Kiosk benchmark: cold start to first frame, memory after login, and
//! frame time while a call shows 640x360 video, each against a baseline
//! measured in the same run.
//!
//! Every scenario runs in a fresh child process (this binary, re-run with a
//! scenario name), so start-up and memory are measured cold. The window is
//! 1280x800, drawn by Slint's software renderer into memory, as on a tablet
//! without a GPU; the edge is the canned stand-in of the UI tests, so the
//! figures are the shell's own.
//!
//! Goals (issue 6): first frame <= 500 ms, memory after login <= 60 MB,
//! frame time with video <= 16 ms.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use proto::call::CallState;
use support::{call_update, now, CannedEdge};
use tablet_shell::kiosk::{ContactAction, Screen, UiEvent};
use tablet_shell::ui::driver::Driver;
use tablet_shell::ui::screenshot;
use tablet_shell::vm::settings::Settings;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
const FRAMES: usize = 300;
const RUNS: usize = 5;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn log_in(d: &mut Driver<CannedEdge>) {
    d.log_in_with_keypad(&[1, 0, 0, 1], &[1, 2, 3, 4]);
}

/// Child scenarios; each prints one line of numbers.
fn child(scenario: &str) {
    match scenario {
        // The baseline: a process of this binary that only starts and exits.
        "empty" => println!("{}", rss_kib()),
        "first-frame" => {
            let window = screenshot::install(WIDTH, HEIGHT).expect("platform");
            let d = Driver::new(CannedEdge::default(), Settings::default(), now()).expect("window");
            let _ = screenshot::capture(&window);
            drop(d);
            println!("{}", rss_kib());
        }
        "login" => {
            let window = screenshot::install(WIDTH, HEIGHT).expect("platform");
            let mut d = Driver::new(CannedEdge::default(), Settings::default(), now()).expect("window");
            log_in(&mut d);
            assert_eq!(d.kiosk.borrow().screen(), Screen::Home);
            let _ = screenshot::capture(&window);
            d.ui(UiEvent::Navigate(Screen::Contacts));
            let _ = screenshot::capture(&window);
            d.ui(UiEvent::Navigate(Screen::Mailbox));
            let _ = screenshot::capture(&window);
            d.ui(UiEvent::Navigate(Screen::Home));
            let _ = screenshot::capture(&window);
            println!("{}", rss_kib());
        }
        "video" | "still" => {
            let window = screenshot::install(WIDTH, HEIGHT).expect("platform");
            let mut d = Driver::new(CannedEdge::default(), Settings::default(), now()).expect("window");
            log_in(&mut d);
            d.ui(UiEvent::Navigate(Screen::Contacts));
            d.ui(UiEvent::ContactAction { row: 0, action: ContactAction::VideoCall });
            d.edge.events.push(call_update(CallState::Connected { limit_secs: 900 }));
            d.pump();
            let (w, h) = (640u32, 360u32);
            let mut rgba = vec![0u8; (w * h * 4) as usize];
            let mut times = Vec::with_capacity(FRAMES);
            for frame in 0..FRAMES {
                let started = Instant::now();
                if scenario == "video" {
                    // A moving picture: every pixel changes every frame, like decoded video.
                    for (i, px) in rgba.chunks_exact_mut(4).enumerate() {
                        let v = (i + frame * 7) as u8;
                        px.copy_from_slice(&[v, v.wrapping_mul(3), v.wrapping_add(90), 255]);
                    }
                    tablet_shell::ui::show_frame(&d.window, true, &rgba, w, h);
                }
                d.advance(Duration::from_millis(33));
                let _ = screenshot::capture(&window);
                times.push(started.elapsed());
            }
            times.sort();
            let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
            println!("{:.3} {:.3}", p(0.5), p(0.99));
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn run_child(scenario: &str) -> (Duration, String) {
    let exe = std::env::current_exe().expect("own path");
    let started = Instant::now();
    let out = Command::new(exe).env("KIOSK_BENCH_CHILD", scenario).output().expect("child runs");
    let took = started.elapsed();
    assert!(out.status.success(), "{scenario}: {}", String::from_utf8_lossy(&out.stderr));
    (took, String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if let Ok(scenario) = std::env::var("KIOSK_BENCH_CHILD") {
        child(&scenario);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut empty_ms = Vec::new();
    let mut first_ms = Vec::new();
    let mut empty_rss = Vec::new();
    let mut login_rss = Vec::new();
    for _ in 0..RUNS {
        let (t, rss) = run_child("empty");
        empty_ms.push(t.as_secs_f64() * 1000.0);
        empty_rss.push(rss.parse::<f64>().unwrap_or(0.0));
        let (t, _) = run_child("first-frame");
        first_ms.push(t.as_secs_f64() * 1000.0);
        let (_, rss) = run_child("login");
        login_rss.push(rss.parse::<f64>().unwrap_or(0.0));
    }
    let frame = |scenario| -> (f64, f64) {
        let (_, line) = run_child(scenario);
        let mut parts = line.split_whitespace().map(|p| p.parse::<f64>().unwrap_or(f64::NAN));
        (parts.next().unwrap_or(f64::NAN), parts.next().unwrap_or(f64::NAN))
    };
    let (still_p50, still_p99) = frame("still");
    let (video_p50, video_p99) = frame("video");

    let (empty, first) = (median(empty_ms), median(first_ms));
    let (base_mb, login_mb) = (median(empty_rss) / 1024.0, median(login_rss) / 1024.0);
    println!("kiosk benchmark: {WIDTH}x{HEIGHT}, software renderer, median of {RUNS} cold processes");
    println!("| measure | kiosk | baseline (same run) | ratio | goal | met |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| cold start to first frame | {first:.0} ms | {empty:.0} ms (process that only starts) | {:.1}x | <= 500 ms | {} |",
        first / empty,
        if first <= 500.0 { "yes" } else { "no" }
    );
    println!(
        "| memory after login (RSS) | {login_mb:.1} MB | {base_mb:.1} MB (same) | {:.1}x | <= 60 MB | {} |",
        login_mb / base_mb,
        if login_mb <= 60.0 { "yes" } else { "no" }
    );
    println!(
        "| frame time, 640x360 video, p50 / p99 | {video_p50:.2} / {video_p99:.2} ms | {still_p50:.2} / {still_p99:.2} ms (call screen, no video) | {:.2}x | <= 16 ms | {} |",
        video_p99 / still_p99,
        if video_p99 <= 16.0 { "yes" } else { "no" }
    );
}
