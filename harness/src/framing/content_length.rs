//! `Content-Length:` framing (JSON-RPC over stdio or pipes, the Language Server Protocol):
//! a header section of `Name: value\r\n` lines ended by an empty line, then exactly
//! `Content-Length` bytes of payload.

use super::{Codec, FrameError};
use bytes::{Buf, Bytes, BytesMut};

/// The longest header section accepted (the LSP sends two short headers).
pub const MAX_HEADER_SECTION: usize = 8192;

/// A `Content-Length` codec. Frames are the payloads; other headers are checked for form and
/// dropped. A missing, repeated, signed or non-decimal `Content-Length` is an error: two
/// readers must never disagree on where a frame ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentLength {
    max_frame: usize,
    /// Bytes of the header section already searched for its end.
    scanned: usize,
}

impl ContentLength {
    /// A codec accepting payloads up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        ContentLength { max_frame, scanned: 0 }
    }

    fn parse_headers(&self, section: &[u8]) -> Result<u64, FrameError> {
        let bad = |why: String| FrameError::BadHeader(why);
        let text = std::str::from_utf8(section).map_err(|_| bad("header section is not UTF-8".into()))?;
        let mut length = None;
        for line in text.split("\r\n") {
            let (name, value) = line.split_once(':').ok_or_else(|| bad(format!("header line {line:?} has no ':'")))?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(bad(format!("header name {name:?} is not a token")));
            }
            if name.eq_ignore_ascii_case("content-length") {
                let v = value.trim_matches([' ', '\t']);
                if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(format!("Content-Length {v:?} is not a decimal number")));
                }
                let n: u64 = v.parse().map_err(|_| bad(format!("Content-Length {v:?} overflows")))?;
                if length.replace(n).is_some() {
                    return Err(bad("Content-Length appears twice".into()));
                }
            }
        }
        length.ok_or_else(|| bad("no Content-Length header".into()))
    }
}

impl Codec for ContentLength {
    type Frame = Bytes;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let from = self.scanned.saturating_sub(3);
        let Some(i) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") else {
            self.scanned = buf.len();
            if buf.len() > MAX_HEADER_SECTION + 3 {
                return Err(FrameError::BadHeader(format!("no end of headers within {MAX_HEADER_SECTION} bytes")));
            }
            return Ok(None);
        };
        let end = from + i;
        if end > MAX_HEADER_SECTION {
            return Err(FrameError::BadHeader(format!("no end of headers within {MAX_HEADER_SECTION} bytes")));
        }
        let len = self.parse_headers(&buf[..end])?;
        if len > self.max_frame as u64 {
            return Err(FrameError::TooLarge { declared: len, max: self.max_frame });
        }
        let total = end + 4 + len as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        self.scanned = 0;
        buf.advance(end + 4);
        Ok(Some(buf.split_to(len as usize).freeze()))
    }

    fn encode(&self, frame: &Bytes, out: &mut Vec<u8>) -> Result<(), FrameError> {
        if frame.len() > self.max_frame {
            return Err(FrameError::TooLarge { declared: frame.len() as u64, max: self.max_frame });
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", frame.len()).as_bytes());
        out.extend_from_slice(frame);
        Ok(())
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn max_header(&self) -> usize {
        MAX_HEADER_SECTION + 4
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode_all;
    use super::*;
    use rstest::rstest;

    #[test]
    fn decodes_lsp_messages_with_extra_headers() {
        let wire = b"Content-Length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}content-length:0\r\n\r\n";
        let (frames, err) = decode_all(ContentLength::new(100), wire);
        assert_eq!(err, None);
        assert_eq!(frames, vec![Bytes::from_static(b"{}"), Bytes::new()]);
    }

    #[rstest]
    #[case(&b"Content-Length: -1\r\n\r\n"[..], "not a decimal")]
    #[case(&b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"[..], "appears twice")]
    #[case(&b"Content-Type: x\r\n\r\n"[..], "no Content-Length")]
    #[case(&b"Content-Length 1\r\n\r\nx"[..], "has no ':'")]
    #[case(&b"Content-Length: 99999999999999999999\r\n\r\n"[..], "overflows")]
    fn ambiguous_or_malformed_headers_are_refused(#[case] wire: &[u8], #[case] why: &str) {
        let (_, err) = decode_all(ContentLength::new(100), wire);
        assert!(matches!(&err, Some(FrameError::BadHeader(m)) if m.contains(why)), "{err:?}");
    }

    #[test]
    fn huge_lengths_and_endless_headers_are_refused() {
        let (_, err) = decode_all(ContentLength::new(100), b"Content-Length: 4294967296\r\n\r\n");
        assert_eq!(err, Some(FrameError::TooLarge { declared: 1 << 32, max: 100 }));
        let endless = vec![b'a'; MAX_HEADER_SECTION + 10];
        assert!(matches!(decode_all(ContentLength::new(100), &endless).1, Some(FrameError::BadHeader(_))));
    }
}
