//! A synchronous shell for tests, screenshots and the scripted demo: the
//! same window and kiosk as the tablet's, with each request sent and
//! answered before the next touch, and time passed in by the caller.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use proto::tablet::ServerEvent;

use slint::ComponentHandle;

use super::{render, wire, AppWindow};
use crate::kiosk::{EdgeReply, Kiosk, UiEvent, VideoGramCommand, VideoGramEvent};
use crate::vm::settings::Settings;
use crate::EdgeClient;

/// Where the kiosk's requests go.
pub trait Edge {
    fn request(&mut self, request: &proto::tablet::TabletRequest) -> EdgeReply;
    /// Events the edge pushed since the last call.
    fn events(&mut self) -> Vec<ServerEvent>;
}

/// A real edge over QUIC, driven from a private tokio runtime.
pub struct QuicEdge {
    runtime: tokio::runtime::Runtime,
    client: Arc<EdgeClient>,
    events: std::sync::mpsc::Receiver<ServerEvent>,
}

impl QuicEdge {
    pub fn connect(edge: SocketAddr, bundle: &net::Bundle, server_name: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let client = Arc::new(runtime.block_on(EdgeClient::connect(edge, bundle, server_name))?);
        let (tx, events) = std::sync::mpsc::channel();
        let listener = client.clone();
        runtime.spawn(async move {
            while let Ok(event) = listener.next_event().await {
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Ok(QuicEdge { runtime, client, events })
    }
}

impl Edge for QuicEdge {
    fn request(&mut self, request: &proto::tablet::TabletRequest) -> EdgeReply {
        self.runtime.block_on(self.client.request(request)).into()
    }

    fn events(&mut self) -> Vec<ServerEvent> {
        self.events.try_iter().collect()
    }
}

/// The window, the kiosk and an edge, stepped by the caller.
pub struct Driver<E: Edge> {
    pub kiosk: Rc<RefCell<Kiosk>>,
    pub window: AppWindow,
    pub edge: E,
    /// What the kiosk asked of the VideoGram player, in order (no player
    /// runs here: tests answer with [`Driver::videogram`]).
    pub videogram_commands: Vec<VideoGramCommand>,
    now: Timestamp,
    now_ms: u64,
}

impl<E: Edge> Driver<E> {
    /// Needs a Slint platform (the testing backend, or [`super::screenshot`]'s).
    pub fn new(edge: E, settings: Settings, now: Timestamp) -> Result<Self, slint::PlatformError> {
        let window = AppWindow::new()?;
        let kiosk = Rc::new(RefCell::new(Kiosk::new(settings, now, 0)));
        let sink_kiosk = kiosk.clone();
        let sink_window = window.as_weak();
        wire(
            &window,
            &kiosk,
            Rc::new(move |event: UiEvent| {
                sink_kiosk.borrow_mut().ui(event);
                if let Some(window) = sink_window.upgrade() {
                    render(&sink_kiosk.borrow(), &window);
                }
            }),
        );
        render(&kiosk.borrow(), &window);
        Ok(Driver { kiosk, window, edge, videogram_commands: Vec::new(), now, now_ms: 0 })
    }

    /// Starts over on the login screen with resident IDs beginning `prefix`
    /// (e.g. `R` for the demo facility's `R1001`).
    pub fn set_id_prefix(&mut self, prefix: &str) {
        let settings = self.kiosk.borrow().default_settings();
        *self.kiosk.borrow_mut() = Kiosk::new(settings, self.now, self.now_ms).with_id_prefix(prefix);
        render(&self.kiosk.borrow(), &self.window);
    }

    /// Types the ID digits and the PIN on the keypad and logs in.
    pub fn log_in_with_keypad(&mut self, id_digits: &[u8], pin: &[u8]) {
        self.ui(UiEvent::LoginSelectField(crate::vm::login::Field::ResidentId));
        for digit in id_digits {
            self.ui(UiEvent::LoginDigit(*digit));
        }
        self.ui(UiEvent::LoginSubmit);
        for digit in pin {
            self.ui(UiEvent::LoginDigit(*digit));
        }
        self.ui(UiEvent::LoginSubmit);
    }

    /// A touch, then every request it causes answered.
    pub fn ui(&mut self, event: UiEvent) {
        self.kiosk.borrow_mut().ui(event);
        self.pump();
    }

    /// Sends what the kiosk asked for and feeds back the answers and pushed
    /// events, until nothing is waiting; then redraws.
    pub fn pump(&mut self) {
        loop {
            let outgoing = self.kiosk.borrow_mut().take_outgoing();
            let videogram = self.kiosk.borrow_mut().take_videogram_commands();
            self.videogram_commands.extend(videogram);
            let events = self.edge.events();
            if outgoing.is_empty() && events.is_empty() {
                break;
            }
            for event in events {
                self.kiosk.borrow_mut().event(event);
            }
            for out in outgoing {
                let reply = self.edge.request(&out.request);
                self.kiosk.borrow_mut().reply(out.id, reply);
            }
        }
        render(&self.kiosk.borrow(), &self.window);
    }

    /// A report of the (absent) VideoGram player, as the runtime would hand it in.
    pub fn videogram(&mut self, event: VideoGramEvent) {
        self.kiosk.borrow_mut().videogram(event);
        self.pump();
    }

    /// Lets `by` pass on the kiosk's clocks, then handles what arrived.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.now_ms += u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.kiosk.borrow_mut().tick(self.now, self.now_ms);
        self.pump();
    }

    /// Waits (really) for pushed events, up to `timeout`, handling them.
    pub fn wait_events(&mut self, timeout: Duration, mut done: impl FnMut(&Kiosk) -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.pump();
            if done(&self.kiosk.borrow()) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }
}
