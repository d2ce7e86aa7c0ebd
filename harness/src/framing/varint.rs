//! Frames prefixed by an LEB128 varint length (protobuf's length-delimited streams).

use super::{read_varint, write_varint, Codec, FrameError};
use bytes::{Buf, Bytes, BytesMut};

/// A varint-length codec: up to 10 bytes of LEB128, then that many payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Varint {
    max_frame: usize,
}

impl Varint {
    /// A codec accepting frames up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Varint { max_frame }
    }
}

impl Codec for Varint {
    type Frame = Bytes;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some((len, used)) = read_varint(buf, 0, 10, 64)? else { return Ok(None) };
        if len > self.max_frame as u64 {
            return Err(FrameError::TooLarge { declared: len, max: self.max_frame });
        }
        let len = len as usize;
        if buf.len() < used + len {
            buf.reserve(used + len - buf.len());
            return Ok(None);
        }
        buf.advance(used);
        Ok(Some(buf.split_to(len).freeze()))
    }

    fn encode(&self, frame: &Bytes, out: &mut Vec<u8>) -> Result<(), FrameError> {
        if frame.len() > self.max_frame {
            return Err(FrameError::TooLarge { declared: frame.len() as u64, max: self.max_frame });
        }
        write_varint(frame.len() as u64, out);
        out.extend_from_slice(frame);
        Ok(())
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn max_header(&self) -> usize {
        10
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode_all;
    use super::*;

    #[test]
    fn decodes_frames_and_refuses_huge_or_malformed_lengths() {
        let (frames, err) = decode_all(Varint::new(1000), &[3, b'a', b'b', b'c', 0, 0x80, 0x01, 0]);
        assert_eq!(err, Some(FrameError::Truncated { buffered: 3 }));
        assert_eq!(frames, vec![Bytes::from_static(b"abc"), Bytes::new()]);
        let (_, err) = decode_all(Varint::new(1000), &[0xe9, 0x07]); // 1001
        assert_eq!(err, Some(FrameError::TooLarge { declared: 1001, max: 1000 }));
        let (_, err) = decode_all(Varint::new(1000), &[0xff; 12]);
        assert_eq!(err, Some(FrameError::BadVarint { at: 0 }));
    }
}
