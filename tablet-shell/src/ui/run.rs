//! The kiosk as it runs on a tablet or a developer's desktop: the Slint
//! event loop on the main thread, the edge connection on a tokio thread.
//!
//! Slint picks its backend from `SLINT_BACKEND`: `winit` for a desktop
//! window, `linuxkms-software` on tablets (no compositor, no GPU). Under
//! systemd the shell reports ready after its first frame and pets the
//! watchdog from the UI thread, so a hung UI is restarted.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use proto::tablet::{ServerEvent, TabletRequest};
use tokio::sync::mpsc;

use slint::ComponentHandle;

use super::{render, wire, AppWindow};
use crate::kiosk::{EdgeReply, Kiosk, MediaCommand, Outgoing, UiEvent, VideoGramCommand, VideoGramEvent};
use crate::vm::settings::Settings;
use crate::EdgeClient;

/// How often timers (call clock, lockout countdown) are refreshed.
const TICK: Duration = Duration::from_millis(200);
/// Wait between attempts to reach the edge.
const RECONNECT: Duration = Duration::from_secs(2);

/// What the shell needs to start.
#[derive(Debug, Clone)]
pub struct KioskOptions {
    pub edge: SocketAddr,
    pub bundle: net::Bundle,
    pub server_name: String,
    pub id_prefix: String,
    pub settings: Settings,
}

/// What the UI thread hands to the network thread.
enum NetCommand {
    Request(Outgoing),
    Media(MediaCommand),
}

/// What the network thread hands to the UI thread.
enum Inbound {
    Reply(u64, EdgeReply),
    Event(ServerEvent),
    /// A picture for the call screen: the contact's or our own camera's,
    /// tightly packed RGBA, width, height.
    #[cfg_attr(not(feature = "media"), allow(dead_code))]
    Picture(super::CallPicture, Vec<u8>, u32, u32),
    /// A report of the VideoGram player.
    VideoGram(VideoGramEvent),
    /// A picture of VideoGram run `play`, `pts_ms` into the video: tightly
    /// packed RGBA, width, height.
    #[cfg_attr(not(feature = "media"), allow(dead_code))]
    VideoGramPicture {
        play: u64,
        pts_ms: u64,
        rgba: Vec<u8>,
        width: u32,
        height: u32,
    },
}

thread_local! {
    /// The UI thread's handler for [`Inbound`] messages; set by [`run`].
    static INBOX: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Runs the kiosk until its window is closed.
pub fn run(options: KioskOptions) -> anyhow::Result<()> {
    let window = AppWindow::new()?;
    let started = Instant::now();
    let kiosk = Rc::new(RefCell::new(
        Kiosk::new(options.settings, Timestamp::now(), 0).with_id_prefix(&options.id_prefix),
    ));
    let (out_tx, out_rx) = mpsc::unbounded_channel::<NetCommand>();
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Inbound>();

    let flush = {
        let kiosk = kiosk.clone();
        let window = window.as_weak();
        let out_tx = out_tx.clone();
        let videograms = RefCell::new(VideoGramPlayer::default());
        let videogram_reports = in_tx.clone();
        Rc::new(move || {
            let requests = kiosk.borrow_mut().take_outgoing().into_iter().map(NetCommand::Request);
            let media = kiosk.borrow_mut().take_media_commands();
            if media.iter().any(|command| *command != MediaCommand::ContactJoined) {
                // A new or ended leg: no picture of an earlier call may stay on screen.
                if let Some(window) = window.upgrade() {
                    super::clear_call_pictures(&window);
                }
            }
            let videogram = kiosk.borrow_mut().take_videogram_commands();
            for command in videogram {
                if matches!(command, VideoGramCommand::Play { .. } | VideoGramCommand::Stop) {
                    if let Some(window) = window.upgrade() {
                        super::clear_videogram_picture(&window);
                    }
                }
                videograms.borrow_mut().apply(command, &kiosk.borrow(), &videogram_reports);
            }
            for command in requests.chain(media.into_iter().map(NetCommand::Media)) {
                if out_tx.send(command).is_err() {
                    tracing::error!("the edge connection thread has stopped");
                }
            }
            if let Some(window) = window.upgrade() {
                render(&kiosk.borrow(), &window);
            }
        })
    };
    {
        let kiosk_for_sink = kiosk.clone();
        let flush = flush.clone();
        wire(
            &window,
            &kiosk,
            Rc::new(move |event: UiEvent| {
                kiosk_for_sink.borrow_mut().ui(event);
                flush();
            }),
        );
    }
    {
        let kiosk = kiosk.clone();
        let flush = flush.clone();
        let window = window.as_weak();
        INBOX.with(|inbox| {
            *inbox.borrow_mut() = Some(Box::new(move || {
                for inbound in in_rx.try_iter() {
                    match inbound {
                        Inbound::Reply(id, reply) => kiosk.borrow_mut().reply(id, reply),
                        Inbound::Event(event) => kiosk.borrow_mut().event(event),
                        Inbound::VideoGram(event) => kiosk.borrow_mut().videogram(event),
                        Inbound::VideoGramPicture { play, pts_ms, rgba, width, height } => {
                            kiosk.borrow_mut().videogram(VideoGramEvent::Position { play, ms: pts_ms });
                            if let Some(window) = window.upgrade() {
                                super::show_videogram_picture(
                                    &kiosk.borrow(),
                                    &window,
                                    play,
                                    &rgba,
                                    width,
                                    height,
                                );
                            }
                        }
                        Inbound::Picture(picture, rgba, width, height) => {
                            if let Some(window) = window.upgrade() {
                                super::show_call_picture(
                                    &kiosk.borrow(),
                                    &window,
                                    picture,
                                    &rgba,
                                    width,
                                    height,
                                );
                            }
                        }
                    }
                }
                flush();
            }));
        });
    }

    let network = std::thread::Builder::new().name("edge-link".into()).spawn(move || {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(edge_link(options, out_rx, in_tx)),
            Err(e) => tracing::error!(error = %e, "cannot start the edge connection thread"),
        }
    })?;

    let ticker = slint::Timer::default();
    {
        let kiosk = kiosk.clone();
        let flush = flush.clone();
        let mut watchdog_usec = 0;
        let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
        let mut ready_sent = false;
        ticker.start(slint::TimerMode::Repeated, TICK, move || {
            let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            kiosk.borrow_mut().tick(Timestamp::now(), now_ms);
            flush();
            if !ready_sent {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
                ready_sent = true;
            }
            if watchdog {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
    flush();
    let stdin = std::io::stdin();
    let _console = match super::console::ConsoleLock::acquire(std::os::fd::AsFd::as_fd(&stdin)) {
        Ok(lock) => {
            tracing::info!("the virtual terminal's keyboard is off: no VT switching");
            Some(lock)
        }
        Err(super::console::ConsoleError::NotAVirtualTerminal) => None,
        Err(error) => {
            tracing::warn!(error = %error, "cannot turn the virtual terminal's keyboard off");
            None
        }
    };
    window.run()?;
    drop(out_tx);
    drop(flush);
    if network.join().is_err() {
        tracing::error!("the edge connection thread panicked");
    }
    Ok(())
}

fn deliver(in_tx: &std::sync::mpsc::Sender<Inbound>, inbound: Inbound) {
    if in_tx.send(inbound).is_ok() {
        let posted = slint::invoke_from_event_loop(|| {
            INBOX.with(|inbox| {
                if let Some(handler) = inbox.borrow().as_ref() {
                    handler();
                }
            })
        });
        if let Err(e) = posted {
            tracing::debug!(error = %e, "the UI has stopped");
        }
    }
}

/// Keeps a connection to the edge, sends the kiosk's requests on it and
/// hands back answers and pushed events. Requests made while the edge is
/// unreachable are answered `Unreachable` at once, so no screen waits.
async fn edge_link(
    options: KioskOptions,
    mut requests: mpsc::UnboundedReceiver<NetCommand>,
    in_tx: std::sync::mpsc::Sender<Inbound>,
) {
    let mut media = MediaLegs::default();
    loop {
        let client = match EdgeClient::connect(options.edge, &options.bundle, &options.server_name).await {
            Ok(client) => Arc::new(client),
            Err(error) => {
                tracing::warn!(%error, edge = %options.edge, "cannot reach the edge; retrying");
                let deadline = tokio::time::sleep(RECONNECT);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = &mut deadline => break,
                        request = requests.recv() => match request {
                            Some(NetCommand::Request(out)) => deliver(&in_tx, Inbound::Reply(out.id, EdgeReply::Unreachable)),
                            Some(NetCommand::Media(command)) => media.apply(command, &options, &in_tx),
                            None => return,
                        },
                    }
                }
                continue;
            }
        };
        tracing::info!(edge = %options.edge, "connected to the edge");
        let events = {
            let client = client.clone();
            let in_tx = in_tx.clone();
            tokio::spawn(async move {
                while let Ok(event) = client.next_event().await {
                    deliver(&in_tx, Inbound::Event(event));
                }
            })
        };
        loop {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(NetCommand::Media(command)) => media.apply(command, &options, &in_tx),
                    Some(NetCommand::Request(out)) => {
                        let client = client.clone();
                        let in_tx = in_tx.clone();
                        tokio::spawn(async move {
                            let reply = client.request(&out.request).await.into();
                            deliver(&in_tx, Inbound::Reply(out.id, reply));
                        });
                    }
                    None => {
                        // The window closed: say goodbye so the edge ends the session now.
                        media.apply(MediaCommand::Stop, &options, &in_tx);
                        let _ = client.request(&TabletRequest::Logout).await;
                        events.abort();
                        return;
                    }
                },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if client.is_closed() {
                        tracing::warn!("lost the connection to the edge; reconnecting");
                        deliver(&in_tx, Inbound::Event(ServerEvent::SessionEnded {
                            reason: proto::tablet::SessionEndReason::DeviceDisconnected,
                        }));
                        break;
                    }
                }
            }
        }
        events.abort();
    }
}

/// The call's media leg, run beside the kiosk on the network thread.
#[derive(Default)]
struct MediaLegs {
    #[cfg(feature = "media")]
    live: Option<crate::media_call::MediaLeg>,
}

impl MediaLegs {
    #[cfg(feature = "media")]
    fn apply(
        &mut self,
        command: MediaCommand,
        options: &KioskOptions,
        in_tx: &std::sync::mpsc::Sender<Inbound>,
    ) {
        use crate::media_call::{MediaLeg, MediaOptions};
        if command == MediaCommand::ContactJoined {
            if let Some(leg) = &self.live {
                leg.contact_joined();
            }
            return;
        }
        if let Some(leg) = self.live.take() {
            tokio::spawn(async move {
                let report = leg.finish().await;
                tracing::info!(?report, "call media stopped");
            });
        }
        let MediaCommand::Start { media, kind } = command else { return };
        use super::CallPicture;
        let to_screen = |picture: CallPicture| -> crate::media_call::OnVideo {
            let pictures = in_tx.clone();
            Arc::new(move |frame: facility_media::DecodedVideoFrame| {
                let (width, height) = (frame.width, frame.height);
                deliver(&pictures, Inbound::Picture(picture, packed_rgba(frame), width, height));
            })
        };
        let video_device = std::env::var("KIOSK_CAMERA").unwrap_or_else(|_| "/dev/video0".into());
        let leg_options = MediaOptions {
            edge: options.edge,
            server_name: options.server_name.clone(),
            identity: options.bundle.clone(),
            sources: facility_media::Sources::Devices { video_device },
            on_video: Some(to_screen(CallPicture::Remote)),
            on_self_view: (kind == proto::domain::CallKind::Video).then(|| to_screen(CallPicture::SelfView)),
            audio_output: facility_media::AudioOutput::Device,
        };
        self.live = Some(MediaLeg::start(leg_options, media, kind));
    }

    #[cfg(not(feature = "media"))]
    fn apply(
        &mut self,
        command: MediaCommand,
        _options: &KioskOptions,
        _in_tx: &std::sync::mpsc::Sender<Inbound>,
    ) {
        if matches!(command, MediaCommand::Start { .. }) {
            tracing::warn!(
                "this build has no call media (feature `media`); the call runs without pictures or sound"
            );
        }
    }
}

/// `frame`'s pixels without the row padding GStreamer may add, as Slint's
/// pixel buffers want them.
#[cfg(feature = "media")]
fn packed_rgba(frame: facility_media::DecodedVideoFrame) -> Vec<u8> {
    let row = frame.width as usize * 4;
    if frame.stride == row {
        frame.rgba
    } else {
        frame.rgba.chunks(frame.stride.max(1)).flat_map(|r| r.iter().take(row).copied()).collect()
    }
}

/// The open message's VideoGram player, run on the UI thread beside the
/// kiosk (GStreamer plays on its own threads; starting, pausing and
/// stopping are quick state changes). Its reports go through the inbox
/// like the edge's answers.
#[derive(Default)]
struct VideoGramPlayer {
    #[cfg(feature = "media")]
    live: Option<facility_media::FilePlayer>,
}

impl VideoGramPlayer {
    #[cfg(feature = "media")]
    fn apply(
        &mut self,
        command: VideoGramCommand,
        kiosk: &Kiosk,
        reports: &std::sync::mpsc::Sender<Inbound>,
    ) {
        use facility_media::{AudioOutput, FilePlayer, FilePlayerConfig, PlayerEvent};
        match command {
            VideoGramCommand::Play { play, media } => {
                // One VideoGram at a time: a new run replaces the old one.
                if let Some(old) = self.live.take() {
                    old.stop();
                }
                let Some(file) = kiosk.media_file(media) else {
                    deliver(reports, Inbound::VideoGram(VideoGramEvent::Failed { play }));
                    return;
                };
                let to_ui = reports.clone();
                let config =
                    FilePlayerConfig { audio_output: AudioOutput::Device, ..FilePlayerConfig::default() };
                let started = FilePlayer::start(file.bytes.clone(), &config, move |event| match event {
                    PlayerEvent::Frame(frame) => {
                        let (width, height, pts_ms) = (frame.width, frame.height, frame.pts_us / 1000);
                        let rgba = packed_rgba(frame);
                        deliver(&to_ui, Inbound::VideoGramPicture { play, pts_ms, rgba, width, height });
                    }
                    PlayerEvent::Ended => deliver(&to_ui, Inbound::VideoGram(VideoGramEvent::Ended { play })),
                    PlayerEvent::Error(error) => {
                        tracing::warn!(%error, "VideoGram playback failed");
                        deliver(&to_ui, Inbound::VideoGram(VideoGramEvent::Failed { play }));
                    }
                });
                match started {
                    Ok(player) => self.live = Some(player),
                    Err(error) => {
                        tracing::warn!(%error, "cannot play the VideoGram");
                        deliver(reports, Inbound::VideoGram(VideoGramEvent::Failed { play }));
                    }
                }
            }
            VideoGramCommand::Pause => {
                if let Some(Err(error)) = self.live.as_ref().map(|p| p.pause()) {
                    tracing::warn!(%error, "cannot pause the VideoGram");
                }
            }
            VideoGramCommand::Resume => {
                if let Some(Err(error)) = self.live.as_ref().map(|p| p.resume()) {
                    tracing::warn!(%error, "cannot resume the VideoGram");
                }
            }
            VideoGramCommand::Stop => {
                if let Some(player) = self.live.take() {
                    player.stop();
                }
            }
        }
    }

    /// Without GStreamer nothing can play: the kiosk is told so at once and
    /// shows the VideoGram as one that cannot be shown.
    #[cfg(not(feature = "media"))]
    fn apply(
        &mut self,
        command: VideoGramCommand,
        _kiosk: &Kiosk,
        reports: &std::sync::mpsc::Sender<Inbound>,
    ) {
        if let VideoGramCommand::Play { play, .. } = command {
            tracing::warn!("this build has no media (feature `media`); VideoGrams cannot play");
            deliver(reports, Inbound::VideoGram(VideoGramEvent::Failed { play }));
        }
    }
}
