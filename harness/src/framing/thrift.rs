//! Apache Thrift's framed transport: a 4-byte big-endian signed length, then the payload.

use super::{Codec, Endian, FrameError, LengthPrefixed};
use bytes::{Bytes, BytesMut};

/// Thrift framed transport. A negative length is an error; Thrift's default limit is
/// 16,384,000 bytes, used by [`ThriftFramed::default`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThriftFramed {
    inner: LengthPrefixed,
}

impl Default for ThriftFramed {
    fn default() -> Self {
        Self::new(16_384_000)
    }
}

impl ThriftFramed {
    /// Frames up to `max_frame` bytes (at most `i32::MAX`).
    pub fn new(max_frame: usize) -> Self {
        let max = max_frame.min(i32::MAX as usize);
        ThriftFramed { inner: LengthPrefixed::be32().endian(Endian::Big).max_frame(max) }
    }
}

impl Codec for ThriftFramed {
    type Frame = Bytes;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() >= 4 && buf[0] & 0x80 != 0 {
            let field = u64::from(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
            return Err(FrameError::BadLength { field, adjustment: 0 });
        }
        self.inner.decode(buf)
    }

    fn encode(&self, frame: &Bytes, out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.inner.encode(frame, out)
    }

    fn max_frame(&self) -> usize {
        Codec::max_frame(&self.inner)
    }

    fn max_header(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode_all;
    use super::*;

    #[test]
    fn negative_lengths_are_refused() {
        let (frames, err) = decode_all(ThriftFramed::default(), &[0, 0, 0, 1, 7, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(frames, vec![Bytes::from_static(&[7])]);
        assert_eq!(err, Some(FrameError::BadLength { field: 0xffff_ffff, adjustment: 0 }));
    }
}
