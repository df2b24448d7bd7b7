//! Runs headless commands on one connection, remembering whether a resident
//! is logged in so the session can be closed politely.

use std::io::Write;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt};

use crate::client::{ClientError, EdgeClient};
use crate::command::{parse_session_line, Body, Command, ComposeArgs};
use crate::output::{ErrorBody, ErrorKind, ExitStatus, Line, Reply};
use proto::messaging::Compose;
use proto::tablet::{ApiError, ServerEvent};
use proto::MAX_TABLET_FRAME;

/// Most bytes read for a message body from a file or stdin: more could not
/// travel in one tablet frame anyway, and a wrong path (a disk image, say)
/// must not be read whole.
pub const MAX_BODY_BYTES: u64 = MAX_TABLET_FRAME as u64;

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
            Command::Mailbox(folder) => self.client.mailbox(folder).await.map(Reply::Mailbox),
            Command::ReadMessage(id) => self.client.read_message(id).await.map(Reply::Message),
            Command::SaveDraft { id, compose } => {
                let compose = match read_compose(compose).await {
                    Ok(compose) => compose,
                    Err(error) => return Line::Error(error),
                };
                self.client.save_draft(id, compose).await.map(|id| Reply::DraftSaved { id })
            }
            Command::SendMessage { draft, compose } => {
                let compose = match read_compose(compose).await {
                    Ok(compose) => compose,
                    Err(error) => return Line::Error(error),
                };
                self.client.send_message(draft, compose).await.map(Reply::MessageQueued)
            }
            Command::DeleteDraft(id) => {
                self.client.delete_draft(id).await.map(|id| Reply::DraftDeleted { id })
            }
            Command::HideSent(id) => self.client.hide_sent(id).await.map(|id| Reply::SentHidden { id }),
            Command::ECards => self.client.ecards().await.map(Reply::ECards),
            Command::StampPackages => self.client.stamp_packages().await.map(Reply::StampPackages),
            Command::BuyStamps { contact, package } => {
                self.client.buy_stamps(contact, package).await.map(Reply::StampsBought)
            }
            Command::StampBalance => self.client.stamp_balance().await.map(Reply::Stamps),
            Command::FetchMedia { media, out } => {
                let file = match self.client.fetch_media(media).await {
                    Ok(file) => file,
                    Err(error) => return Line::from(Err::<Reply, _>(error)),
                };
                if let Err(e) = tokio::fs::write(&out, &file.bytes).await {
                    return Line::Error(ErrorBody::new(
                        ErrorKind::Usage,
                        format!("cannot write {}: {e}", out.display()),
                    ));
                }
                use sha2::Digest;
                Ok(Reply::Media {
                    media,
                    content_type: file.content_type.mime().into(),
                    size: file.bytes.len() as u64,
                    sha256: hex::encode(sha2::Sha256::digest(&file.bytes)),
                    path: out.display().to_string(),
                })
            }
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

/// The compose to send, with its body read if it comes from a file or stdin.
async fn read_compose(compose: ComposeArgs) -> Result<Compose, ErrorBody> {
    let body = match &compose.body {
        Body::Text(text) => text.clone(),
        Body::File(path) => {
            let shown = path.display().to_string();
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| body_error(format!("cannot open body file {shown}: {e}")))?;
            read_body(file, &shown).await?
        }
        Body::Stdin => read_body(tokio::io::stdin(), "stdin").await?,
    };
    Ok(compose.into_compose(body))
}

/// Reads a UTF-8 body of at most [`MAX_BODY_BYTES`], without the line break
/// that ends the last line of a text file (it is not part of the message).
pub async fn read_body<R: AsyncRead + Unpin>(source: R, name: &str) -> Result<String, ErrorBody> {
    let mut bytes = Vec::new();
    source
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| body_error(format!("cannot read the body from {name}: {e}")))?;
    if bytes.len() as u64 > MAX_BODY_BYTES {
        return Err(body_error(format!("the body in {name} is longer than {MAX_BODY_BYTES} bytes")));
    }
    let mut text =
        String::from_utf8(bytes).map_err(|e| body_error(format!("the body in {name} is not UTF-8: {e}")))?;
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

fn body_error(message: String) -> ErrorBody {
    ErrorBody::new(ErrorKind::Usage, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_keeps_its_text_but_not_the_final_line_break() {
        let read = |bytes: &'static [u8]| read_body(bytes, "test");
        assert_eq!(read(b"Hi\n\nLove, Ada\n").await.unwrap(), "Hi\n\nLove, Ada");
        assert_eq!(read(b"two breaks\n\n").await.unwrap(), "two breaks\n");
        assert_eq!(read(b"windows\r\n").await.unwrap(), "windows");
        assert_eq!(read(b"no break").await.unwrap(), "no break");
        assert_eq!(read("é😀\n".as_bytes()).await.unwrap(), "é😀");
        assert_eq!(read(b"").await.unwrap(), "");
    }

    #[tokio::test]
    async fn body_refuses_non_utf8_and_oversized_input() {
        let e = read_body(&[0x66, 0xff, 0x0a][..], "x.txt").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Usage);
        assert!(e.message.contains("not UTF-8"), "{}", e.message);

        let exactly = vec![b'a'; MAX_BODY_BYTES as usize];
        assert_eq!(read_body(&exactly[..], "big").await.unwrap().len(), MAX_BODY_BYTES as usize);
        let over = vec![b'a'; MAX_BODY_BYTES as usize + 1];
        let e = read_body(&over[..], "big").await.unwrap_err();
        assert!(e.message.contains("longer than"), "{}", e.message);
    }

    #[tokio::test]
    async fn compose_reads_its_body_file_and_names_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("tablet-shell-body-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("body.txt");
        std::fs::write(&path, "line one\nline two\n").unwrap();
        let args = ComposeArgs {
            contact: proto::domain::ContactId(3),
            subject: "Hello".into(),
            body: Body::File(path.clone()),
            ecards: vec![proto::messaging::ECardId(7)],
        };
        let compose = read_compose(args.clone()).await.unwrap();
        assert_eq!(compose.body, "line one\nline two");
        assert_eq!(
            compose.attachments,
            vec![proto::messaging::Attachment::ECard(proto::messaging::ECardId(7))]
        );

        std::fs::remove_file(&path).unwrap();
        let e = read_compose(args).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Usage);
        assert!(e.message.contains("body.txt"), "{}", e.message);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
