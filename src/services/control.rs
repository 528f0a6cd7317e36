//! The control socket: one JSON request per connection, one JSON reply.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::spec::Spec;

/// What a client asks of the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Request {
    /// Start these services (and keep them running); a changed spec restarts a running one.
    Start {
        /// The services, dependencies first.
        specs: Vec<Spec>,
    },
    /// Stop these services; all of them (and then the supervisor) when empty.
    Stop {
        /// Service names.
        names: Vec<String>,
    },
    /// Stop then start these services.
    Restart {
        /// The services.
        specs: Vec<Spec>,
    },
    /// Are you there?
    Ping,
}

/// The supervisor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reply {
    /// Accepted.
    pub(crate) ok: bool,
    /// Why not, or a note.
    pub(crate) message: Option<String>,
    /// What kind of refusal it is, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<ReplyError>,
}

/// Why the supervisor refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ReplyError {
    /// It cannot take requests now (stopping everything, or its loop did not answer).
    Busy,
    /// The request cannot be read or makes no sense.
    BadRequest,
    /// The request names a service it does not supervise.
    UnknownService,
}

impl Reply {
    /// Accepted.
    pub(crate) fn ok() -> Reply {
        Reply { ok: true, message: None, error: None }
    }

    fn refused(error: ReplyError, message: String) -> Reply {
        Reply { ok: false, message: Some(message), error: Some(error) }
    }

    /// Busy: try again later.
    pub(crate) fn busy(message: String) -> Reply {
        Reply::refused(ReplyError::Busy, message)
    }

    /// A request that cannot be carried out as sent.
    pub(crate) fn bad_request(message: &str) -> Reply {
        Reply::refused(ReplyError::BadRequest, format!("bad request: {message}"))
    }

    /// A request naming a service the supervisor does not know.
    pub(crate) fn unknown_service(message: String) -> Reply {
        Reply::refused(ReplyError::UnknownService, message)
    }
}

/// Sends a request and waits for the reply.
pub(crate) fn send(socket: &Path, request: &Request) -> Result<Reply> {
    let mut stream =
        UnixStream::connect(socket).with_context(|| format!("cannot reach the supervisor at {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    serde_json::from_str(&reply).context("the supervisor sent an unreadable reply")
}

/// Accepts connections forever, handing each request with a reply channel to the main loop.
pub(crate) fn serve(listener: &UnixListener, requests: &Sender<(Request, Sender<Reply>)>) {
    for stream in listener.incoming().flatten() {
        let requests = requests.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                return;
            }
            let reply = match serde_json::from_str::<Request>(&line) {
                Ok(req) => {
                    let (tx, rx) = mpsc::channel();
                    if requests.send((req, tx)).is_err() {
                        Reply::busy("the supervisor is exiting; run the command again".into())
                    } else {
                        rx.recv_timeout(Duration::from_secs(10))
                            .unwrap_or_else(|_| Reply::busy("the supervisor is busy (no answer within 10 s)".into()))
                    }
                }
                Err(e) => Reply::bad_request(&e.to_string()),
            };
            if let Ok(mut json) = serde_json::to_vec(&reply) {
                json.push(b'\n');
                let _ = (&stream).write_all(&json);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(socket: &Path, line: &str) -> Reply {
        let mut stream = UnixStream::connect(socket).unwrap();
        stream.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap()
    }

    #[test]
    fn the_socket_answers_bad_requests_and_an_exiting_loop() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || serve(&listener, &tx));
        let bad = raw(&socket, r#"{"op":"launch"}"#);
        assert_eq!((bad.ok, bad.error), (false, Some(ReplyError::BadRequest)));
        assert!(bad.message.unwrap().starts_with("bad request: unknown variant `launch`"));
        // The loop answers what it is sent.
        let answering = std::thread::spawn(move || {
            let (request, reply): (Request, Sender<Reply>) = rx.recv().unwrap();
            assert_eq!(request, Request::Ping);
            reply.send(Reply::busy("stopping".into())).unwrap();
            // From here the loop is gone.
        });
        assert_eq!(send(&socket, &Request::Ping).unwrap(), Reply::busy("stopping".into()));
        answering.join().unwrap();
        let exiting = send(&socket, &Request::Ping).unwrap();
        assert_eq!(exiting.error, Some(ReplyError::Busy));
        assert_eq!(exiting.message.as_deref(), Some("the supervisor is exiting; run the command again"));
    }
}
