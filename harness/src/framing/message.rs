//! Message-mode pipes: one pipe message is one frame. A read into a short buffer returns part
//! of the message and `ERROR_MORE_DATA`; the parts are joined here.

use super::FrameError;
use bytes::{Bytes, BytesMut};

/// Joins the parts of one pipe message (each read's bytes plus its more-data flag).
#[derive(Debug)]
pub struct MessageAssembler {
    max_frame: usize,
    buf: BytesMut,
}

impl MessageAssembler {
    /// Messages up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        MessageAssembler { max_frame, buf: BytesMut::new() }
    }

    /// Adds one read's bytes; `more_data` is true when the read ended with `ERROR_MORE_DATA`.
    /// Returns the whole message once its last part is in. A message over the limit is refused
    /// as soon as it passes it.
    pub fn push_part(&mut self, part: &[u8], more_data: bool) -> Result<Option<Bytes>, FrameError> {
        let total = self.buf.len() + part.len();
        if total > self.max_frame {
            self.buf.clear();
            return Err(FrameError::TooLarge { declared: total as u64, max: self.max_frame });
        }
        self.buf.extend_from_slice(part);
        Ok(if more_data { None } else { Some(self.buf.split().freeze()) })
    }

    /// True when part of a message is held (the pipe closed mid-message if it ends now).
    pub fn in_message(&self) -> bool {
        !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_join_and_the_limit_holds() {
        let mut m = MessageAssembler::new(8);
        assert_eq!(m.push_part(b"abc", true), Ok(None));
        assert!(m.in_message());
        assert_eq!(m.push_part(b"de", false), Ok(Some(Bytes::from_static(b"abcde"))));
        assert_eq!(m.push_part(b"", false), Ok(Some(Bytes::new())));
        assert_eq!(m.push_part(b"12345", true), Ok(None));
        assert_eq!(m.push_part(b"6789", false), Err(FrameError::TooLarge { declared: 9, max: 8 }));
        assert!(!m.in_message());
    }
}
