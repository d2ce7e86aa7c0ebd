//! A target's session opening on one connection: each step sent framed, its reply read and
//! checked, the bytes a step captures kept for the later steps and for every message's prefix.

use crate::backend::{exchange, Conn};
use crate::error::{Error, Result};
use crate::target::{substitute, Target};
use std::time::Duration;

/// Runs the first `steps` steps of the target's session on `conn`; the captured bytes (empty
/// when no step captures). A reply that does not start with its step's `expect` is an error
/// naming the step.
pub fn open<C: Conn + ?Sized>(conn: &mut C, target: &Target, steps: usize, timeout: Duration) -> Result<Vec<u8>> {
    let mut captured = Vec::new();
    for (i, step) in target.session.iter().take(steps).enumerate() {
        let reply = exchange(conn, &target.framing, &substitute(&step.send, &captured), timeout)?;
        if let Some(want) = &step.expect {
            if !reply.starts_with(want) {
                return Err(Error::Peer(format!(
                    "session step {}: the reply {:02x?} does not start with {:?}",
                    i + 1,
                    &reply[..reply.len().min(32)],
                    String::from_utf8_lossy(want)
                )));
            }
        }
        if let Some(c) = step.capture {
            captured = reply.get(c.offset..c.offset + c.len).map(<[u8]>::to_vec).ok_or_else(|| {
                Error::Peer(format!(
                    "session step {}: the reply has {} bytes, nothing to capture at {}..{}",
                    i + 1,
                    reply.len(),
                    c.offset,
                    c.offset + c.len
                ))
            })?;
        }
    }
    Ok(captured)
}
