//! Frames ended by a delimiter (newline-delimited JSON and the like).

use super::{Codec, FrameError};
use bytes::{Buf, Bytes, BytesMut};

/// A delimiter codec: each frame is the bytes before the next delimiter (which is dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delimited {
    delimiter: Vec<u8>,
    strip_cr: bool,
    max_frame: usize,
    /// How far the buffer has been searched already, so a long partial frame is scanned once.
    scanned: usize,
}

impl Delimited {
    /// Frames ended by `delimiter` (non-empty), at most `max_frame` bytes before it.
    pub fn new(delimiter: &[u8], max_frame: usize) -> Result<Self, FrameError> {
        if delimiter.is_empty() {
            return Err(FrameError::Unencodable("an empty delimiter".into()));
        }
        Ok(Delimited { delimiter: delimiter.to_vec(), strip_cr: false, max_frame, scanned: 0 })
    }

    /// Newline-delimited: `\n`, with a `\r` before it dropped too.
    pub fn lines(max_frame: usize) -> Self {
        Delimited { delimiter: b"\n".to_vec(), strip_cr: true, max_frame, scanned: 0 }
    }

    /// The delimiter.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }
}

impl Codec for Delimited {
    type Frame = Bytes;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let d = self.delimiter.len();
        let from = self.scanned.saturating_sub(d - 1);
        let found = if d == 1 {
            buf[from..].iter().position(|&b| b == self.delimiter[0])
        } else {
            buf[from..].windows(d).position(|w| w == self.delimiter.as_slice())
        };
        match found {
            Some(i) => {
                let end = from + i;
                self.scanned = 0;
                let mut frame = buf.split_to(end);
                buf.advance(d);
                if self.strip_cr && frame.last() == Some(&b'\r') {
                    frame.truncate(frame.len() - 1);
                }
                if frame.len() > self.max_frame {
                    return Err(FrameError::TooLarge { declared: frame.len() as u64, max: self.max_frame });
                }
                Ok(Some(frame.freeze()))
            }
            None => {
                self.scanned = buf.len();
                let allowed = self.max_frame + usize::from(self.strip_cr);
                if buf.len() > allowed + d - 1 {
                    return Err(FrameError::TooLarge { declared: buf.len() as u64, max: self.max_frame });
                }
                Ok(None)
            }
        }
    }

    fn encode(&self, frame: &Bytes, out: &mut Vec<u8>) -> Result<(), FrameError> {
        if frame.windows(self.delimiter.len()).any(|w| w == self.delimiter.as_slice()) {
            return Err(FrameError::Unencodable("the frame contains the delimiter".into()));
        }
        if self.strip_cr && frame.last() == Some(&b'\r') {
            return Err(FrameError::Unencodable("the frame ends with \\r, which the decoder strips".into()));
        }
        if frame.len() > self.max_frame {
            return Err(FrameError::TooLarge { declared: frame.len() as u64, max: self.max_frame });
        }
        // A frame that ends with a prefix of the delimiter would merge with it.
        let d = &self.delimiter;
        if (1..d.len()).any(|k| frame.ends_with(&d[..k]) && d[k..].starts_with(&d[..d.len() - k]) && frame.len() >= k) {
            return Err(FrameError::Unencodable("the frame ends with part of the delimiter".into()));
        }
        out.extend_from_slice(frame);
        out.extend_from_slice(&self.delimiter);
        Ok(())
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn max_header(&self) -> usize {
        self.delimiter.len() + usize::from(self.strip_cr)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_all, decode_chunks};
    use super::*;

    #[test]
    fn lines_split_and_strip_cr_even_when_cut_anywhere() {
        let wire = b"{\"a\":1}\r\n\n{\"b\":2}\n";
        let want = vec![Bytes::from_static(b"{\"a\":1}"), Bytes::new(), Bytes::from_static(b"{\"b\":2}")];
        assert_eq!(decode_all(Delimited::lines(64), wire), (want.clone(), None));
        for cut in 0..wire.len() {
            let (a, b) = wire.split_at(cut);
            assert_eq!(decode_chunks(Delimited::lines(64), [a, b]), (want.clone(), None), "cut at {cut}");
        }
    }

    #[test]
    fn a_line_without_end_is_refused_once_over_the_limit() {
        let (_, err) = decode_all(Delimited::lines(4), b"123456789");
        assert!(matches!(err, Some(FrameError::TooLarge { max: 4, .. })), "{err:?}");
        let (frames, err) = decode_all(Delimited::new(b"\r\n", 4).unwrap(), b"1234\r\n");
        assert_eq!((frames.len(), err), (1, None));
    }
}
