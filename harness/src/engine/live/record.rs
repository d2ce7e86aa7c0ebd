//! Capture: the harness stands between a real client and the real server, relays every byte
//! both ways, and keeps each connection as a [`Recording`]: the client's messages and the
//! server's replies, split by the target's framing. A recording becomes a [`Case`] (the
//! session's opening left to the plan, the captured token taken out of each message) that
//! `pipe-harness replay` sends to a fresh server and `pipe-harness fuzz --corpus` mutates.

use super::case::{Case, SessionUse};
use crate::backend::{Backend, Conn, ConnectSpec, Listener};
use crate::error::{Error, Result};
use crate::target::{substitute, Target};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One relayed connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    /// The target's name.
    pub target: String,
    /// Which connection of the recording run (1, 2, ...).
    pub connection: usize,
    /// What the client sent, message by message (payloads, without framing), as hex.
    pub messages: Vec<String>,
    /// What the server answered, message by message, as hex.
    pub replies: Vec<String>,
    /// Bytes of the client's stream that ended mid-frame (hex), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trailing: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    if s.len() % 2 != 0 {
        return Err(Error::invalid("recording", format!("{s:?} is not hex")));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| Error::invalid("recording", format!("{s:?} is not hex")))
        })
        .collect()
}

impl Recording {
    /// The client's messages.
    pub fn messages(&self) -> Result<Vec<Vec<u8>>> {
        self.messages.iter().map(|m| unhex(m)).collect()
    }

    /// The server's replies.
    pub fn replies(&self) -> Result<Vec<Vec<u8>>> {
        self.replies.iter().map(|m| unhex(m)).collect()
    }

    /// The case that sends this connection again. For a target with a session whose steps the
    /// recording opened with, the steps are left to the plan (a new connection gets a new
    /// token), and each later message loses the message prefix (with the token the recording
    /// captured) it starts with, to be given the new one; otherwise the messages go out framed,
    /// as recorded.
    pub fn case(&self, target: &Target) -> Result<Case> {
        let messages = self.messages()?;
        let replies = self.replies()?;
        let kind = format!("recorded connection {} of {}", self.connection, self.target);
        let steps = target.session.len();
        if steps > 0 && messages.len() >= steps {
            let mut captured = Vec::new();
            for (step, reply) in target.session.iter().zip(&replies) {
                if let Some(c) = step.capture {
                    captured = reply.get(c.offset..c.offset + c.len).map(<[u8]>::to_vec).unwrap_or_default();
                }
            }
            let prefix = substitute(&target.message_prefix, &captured);
            let rest = &messages[steps..];
            let stripped: Option<Vec<Vec<u8>>> =
                rest.iter().map(|m| m.strip_prefix(prefix.as_slice()).map(<[u8]>::to_vec)).collect();
            if let Some(writes) = stripped {
                return Ok(Case {
                    writes,
                    on: Vec::new(),
                    kind,
                    session: Some(SessionUse { steps, messages: true, prefix: true }),
                });
            }
        }
        let mut writes = Vec::new();
        for m in &messages {
            writes.push(target.framing.encode(m).map_err(|e| Error::invalid("recorded message", e.to_string()))?);
        }
        Ok(Case { writes, on: Vec::new(), kind, session: None })
    }
}

/// What `record` is asked for.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// Connections to relay before it stops.
    pub connections: usize,
    /// How long to wait for each client, and at most for the whole run.
    pub timeout: Duration,
}

/// Serves `listen` (where the real client connects), and relays each connection to the server
/// at `server` until both ends are done; one [`Recording`] per connection.
pub fn record<B: Backend>(
    backend: &B,
    target: &Target,
    listen: &str,
    server: &str,
    opts: &RecordOptions,
    mut each: impl FnMut(&Recording),
) -> Result<Vec<Recording>> {
    let deadline = Instant::now() + opts.timeout;
    let mut out = Vec::new();
    let mut listener: Option<B::Listener> = None;
    for n in 1..=opts.connections {
        // A named pipe's instance serves one client: a new one per connection. A Unix socket
        // accepts again.
        if listener.is_none() || backend.platform() == "windows" {
            drop(listener.take());
            listener = Some(backend.listen(listen, &crate::backend::ListenSpec::default())?);
        }
        let l = listener.as_mut().expect("a listener");
        l.accept(deadline.saturating_duration_since(Instant::now()))?;
        // As the legitimate client the fuzzer will be, so that what is recorded is served.
        let spec = ConnectSpec {
            timeout: Duration::from_secs(10),
            as_user: target.client_identity(),
            ..ConnectSpec::default()
        };
        let mut conn = backend.connect(server, &spec)?;
        let r = relay(target, l, &mut conn, n, deadline)?;
        each(&r);
        out.push(r);
    }
    Ok(out)
}

/// Relays one connection both ways, splitting each direction into frames.
fn relay<L: Listener, C: Conn>(
    target: &Target,
    client: &mut L,
    server: &mut C,
    n: usize,
    deadline: Instant,
) -> Result<Recording> {
    let step = Duration::from_millis(5);
    let decoder = || target.framing.decoder().map_err(|e| Error::invalid("framing", e.to_string()));
    let (mut up, mut down) = (decoder()?, decoder()?);
    let mut rec = Recording {
        target: target.name.clone(),
        connection: n,
        messages: Vec::new(),
        replies: Vec::new(),
        trailing: String::new(),
    };
    let mut pending_up = Vec::new();
    let (mut client_open, mut server_open) = (true, true);
    let mut buf = vec![0u8; 64 * 1024];
    while server_open && Instant::now() < deadline {
        if client_open {
            match client.recv(&mut buf, step) {
                Ok(0) => {
                    client_open = false;
                    let _ = server.end_of_stream();
                }
                Ok(k) => {
                    server.send(&buf[..k], Duration::from_secs(10))?;
                    pending_up.extend_from_slice(&buf[..k]);
                    up.push(&buf[..k]);
                    while let Some(m) =
                        up.next_reply().map_err(|e| Error::Peer(format!("the client's framing: {e}")))?
                    {
                        rec.messages.push(hex(&m));
                        pending_up.clear();
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => client_open = false,
            }
        }
        match server.recv(&mut buf, step) {
            Ok(0) => server_open = false,
            Ok(k) => {
                if client_open {
                    let _ = client.send(&buf[..k], Duration::from_secs(10));
                }
                down.push(&buf[..k]);
                while let Some(m) = down.next_reply().map_err(|e| Error::Peer(format!("the server's framing: {e}")))? {
                    rec.replies.push(hex(&m));
                }
            }
            Err(e) if e.is_timeout() => {}
            Err(_) => server_open = false,
        }
        if !client_open && !server_open {
            break;
        }
    }
    rec.trailing = hex(&pending_up);
    Ok(rec)
}
