//! Runs headless commands on one connection, remembering whether a resident
//! is logged in so the session can be closed politely.

use std::io::Write;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::client::{ClientError, EdgeClient};
use crate::command::{parse_session_line, Command};
use crate::output::{ErrorBody, ErrorKind, ExitStatus, Line, Reply};
use proto::tablet::{ApiError, ServerEvent};

#[derive(Debug)]
pub struct Session {
    client: EdgeClient,
    /// PIN from `--pin` / `TABLET_PIN`, used by `login RESIDENT` lines.
    default_pin: Option<String>,
    logged_in: bool,
}

impl Session {
    pub fn new(client: EdgeClient, default_pin: Option<String>) -> Self {
        Self { client, default_pin, logged_in: false }
    }

    pub fn client(&self) -> &EdgeClient {
        &self.client
    }

    pub fn is_logged_in(&self) -> bool {
        self.logged_in
    }

    /// Runs one command and returns its output line. `Quit` is the caller's
    /// business and answers with a usage error here.
    pub async fn execute(&mut self, command: Command) -> Line {
        let result = match command {
            Command::Login { resident, pin } => {
                let Some(pin) = pin.or_else(|| self.default_pin.clone()) else {
                    return Line::Error(ErrorBody::new(
                        ErrorKind::Usage,
                        "login needs a PIN (on the line, with --pin, or in TABLET_PIN)",
                    ));
                };
                self.client.login(resident, pin).await.map(Reply::LoggedIn)
            }
            Command::Logout => self.client.logout().await.map(|()| Reply::LoggedOut),
            Command::Contacts => self.client.contacts().await.map(Reply::Contacts),
            Command::Hours => self.client.hours().await.map(Reply::Hours),
            Command::Call { contact, kind, number } => {
                self.client.place_call(contact, kind, number).await.map(Reply::Call)
            }
            Command::Balances => self.client.balances().await.map(Reply::Balances),
            Command::WaitEvent(wait) => match tokio::time::timeout(wait, self.client.next_event()).await {
                Ok(event) => event.map(Reply::Event),
                Err(_) => {
                    return Line::Error(ErrorBody::new(
                        ErrorKind::Timeout,
                        format!("no event from the edge within {:?}", wait),
                    ))
                }
            },
            Command::Quit => return Line::Error(ErrorBody::new(ErrorKind::Usage, "quit is not a request")),
        };
        self.track(&result);
        Line::from(result)
    }

    fn track(&mut self, result: &Result<Reply, ClientError>) {
        match result {
            Ok(Reply::LoggedIn(_)) => self.logged_in = true,
            Ok(Reply::LoggedOut)
            | Ok(Reply::Event(ServerEvent::SessionEnded { .. }))
            | Err(ClientError::Api(ApiError::SessionEnded { .. } | ApiError::NotLoggedIn)) => {
                self.logged_in = false
            }
            _ => {}
        }
    }

    /// Logs out if a resident is still logged in, then closes the connection.
    pub async fn finish(mut self) {
        if self.logged_in && !self.client.is_closed() {
            if let Err(e) = self.client.logout().await {
                tracing::debug!(error = %e, "logout at the end of the session failed");
            }
            self.logged_in = false;
        }
        self.client.close().await;
    }

    /// Reads commands line by line from `input` until `quit` or end of input,
    /// writing one JSON line per command to `out`. Stops early, with
    /// [`ExitStatus::Connection`], once the connection is gone.
    pub async fn run_script<R, W>(&mut self, input: R, out: &mut W) -> ExitStatus
    where
        R: AsyncBufRead + Unpin,
        W: Write,
    {
        let mut lines = input.lines();
        loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return ExitStatus::Success,
                Err(e) => {
                    let error = ErrorBody::new(ErrorKind::Usage, format!("cannot read stdin: {e}"));
                    emit(out, &Line::Error(error));
                    return ExitStatus::Usage;
                }
            };
            let output = match parse_session_line(&line) {
                Ok(None) => continue,
                Ok(Some(Command::Quit)) => return ExitStatus::Success,
                Ok(Some(command)) => self.execute(command).await,
                Err(e) => Line::Error(ErrorBody::new(ErrorKind::Usage, e.to_string())),
            };
            if !emit(out, &output) {
                // Nobody is reading any more.
                return ExitStatus::Success;
            }
            if self.client.is_closed() {
                return ExitStatus::Connection;
            }
        }
    }
}

/// Writes one line and flushes so a script driving the session sees it at
/// once. False when the reader is gone.
pub fn emit<W: Write>(out: &mut W, line: &Line) -> bool {
    writeln!(out, "{}", line.to_json()).and_then(|()| out.flush()).is_ok()
}
