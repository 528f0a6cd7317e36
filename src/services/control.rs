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
pub enum Request {
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
pub struct Reply {
    /// Accepted.
    pub ok: bool,
    /// Why not, or a note.
    pub message: Option<String>,
}

/// Sends a request and waits for the reply.
pub fn send(socket: &Path, request: &Request) -> Result<Reply> {
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
pub fn serve(listener: &UnixListener, requests: &Sender<(Request, Sender<Reply>)>) {
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
                        return;
                    }
                    rx.recv_timeout(Duration::from_secs(10))
                        .unwrap_or(Reply { ok: false, message: Some("the supervisor is busy".into()) })
                }
                Err(e) => Reply { ok: false, message: Some(format!("bad request: {e}")) },
            };
            if let Ok(mut json) = serde_json::to_vec(&reply) {
                json.push(b'\n');
                let _ = (&stream).write_all(&json);
            }
        });
    }
}
