//! Length-prefixed frames: a 1, 2, 4 or 8-byte length field, either endian, optionally after
//! some leading bytes, counting or not counting the header.
//!
//! The settings mean what tokio-util's `LengthDelimitedCodec` builder means by the same names,
//! so a product's framing can be described once and a differential fuzz target can compare the
//! two: the raw field is checked against `max_frame`; the adjustment is added; `num_skip` bytes
//! (by default the offset plus the field) are dropped; the next `field + adjustment` bytes are
//! the frame.

use super::{Codec, FrameError};
use bytes::{Buf, Bytes, BytesMut};

/// Byte order of the length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    /// Most significant byte first (network order; Thrift).
    Big,
    /// Least significant byte first.
    Little,
}

/// A length-prefix codec; see the module docs for the meaning of each setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LengthPrefixed {
    width: usize,
    endian: Endian,
    offset: usize,
    adjustment: i64,
    num_skip: Option<usize>,
    max_frame: usize,
    /// Length of the frame whose header was read but whose body is still incomplete, so each
    /// further partial read does not parse the header again.
    pending: Option<usize>,
}

impl LengthPrefixed {
    /// A `width`-byte (1, 2, 4 or 8) big-endian length that counts the payload only, at the
    /// start of the frame, with an 8 MiB maximum.
    pub fn new(width: usize) -> Result<Self, FrameError> {
        if !matches!(width, 1 | 2 | 4 | 8) {
            return Err(FrameError::Unencodable(format!("length field width {width} (must be 1, 2, 4 or 8)")));
        }
        Ok(Self::with_width(width))
    }

    /// The defaults of [`LengthPrefixed::new`] for a width already known to be valid.
    fn with_width(width: usize) -> Self {
        LengthPrefixed {
            width,
            endian: Endian::Big,
            offset: 0,
            adjustment: 0,
            num_skip: None,
            max_frame: 8 << 20,
            pending: None,
        }
    }

    /// A 4-byte big-endian length (infallible form of `new(4)`).
    pub(crate) fn be32() -> Self {
        Self::with_width(4)
    }

    /// Byte order of the field.
    pub fn endian(mut self, e: Endian) -> Self {
        self.endian = e;
        self
    }

    /// Bytes before the length field (kept in the header; written as zeros by the encoder).
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = n;
        self
    }

    /// Added to the field to get the frame length (tokio-util's `length_adjustment`).
    pub fn adjustment(mut self, n: i64) -> Self {
        self.adjustment = n;
        self
    }

    /// The field counts the whole header (offset and field) as well as the payload.
    pub fn length_includes_header(self, yes: bool) -> Self {
        let head = (self.offset + self.width) as i64;
        self.adjustment(if yes { -head } else { 0 })
    }

    /// Bytes dropped from the front of each frame (default: offset plus field width).
    pub fn num_skip(mut self, n: usize) -> Self {
        self.num_skip = Some(n);
        self
    }

    /// The largest length field accepted.
    pub fn max_frame(mut self, n: usize) -> Self {
        self.max_frame = n;
        self
    }

    /// The field width in bytes.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The byte order.
    pub fn byte_order(&self) -> Endian {
        self.endian
    }

    /// The offset of the field.
    pub fn field_offset(&self) -> usize {
        self.offset
    }

    /// The adjustment.
    pub fn length_adjustment(&self) -> i64 {
        self.adjustment
    }

    /// Bytes skipped per frame.
    pub fn skip(&self) -> usize {
        self.num_skip.unwrap_or(self.offset + self.width)
    }

    fn head(&self) -> usize {
        self.offset + self.width
    }

    fn read_field(&self, b: &[u8]) -> u64 {
        let f = &b[self.offset..self.offset + self.width];
        let mut v = 0u64;
        match self.endian {
            Endian::Big => f.iter().for_each(|&x| v = (v << 8) | u64::from(x)),
            Endian::Little => f.iter().rev().for_each(|&x| v = (v << 8) | u64::from(x)),
        }
        v
    }
}

impl Codec for LengthPrefixed {
    type Frame = Bytes;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let skip = self.skip();
        if let Some(len) = self.pending {
            if buf.len() < skip + len {
                return Ok(None);
            }
            self.pending = None;
            buf.advance(skip);
            return Ok(Some(buf.split_to(len).freeze()));
        }
        let head = self.head();
        if buf.len() < head.max(skip) {
            return Ok(None);
        }
        let field = self.read_field(buf);
        if field > self.max_frame as u64 {
            return Err(FrameError::TooLarge { declared: field, max: self.max_frame });
        }
        let len = i128::from(field) + i128::from(self.adjustment);
        let len = usize::try_from(len).map_err(|_| FrameError::BadLength { field, adjustment: self.adjustment })?;
        let total = skip.checked_add(len).ok_or(FrameError::BadLength { field, adjustment: self.adjustment })?;
        if total == 0 {
            // With num_skip 0, a zero-length frame would consume nothing and repeat forever.
            return Err(FrameError::BadLength { field, adjustment: self.adjustment });
        }
        if buf.len() < total {
            buf.reserve(total - buf.len());
            self.pending = Some(len);
            return Ok(None);
        }
        buf.advance(skip);
        Ok(Some(buf.split_to(len).freeze()))
    }

    fn encode(&self, frame: &Bytes, out: &mut Vec<u8>) -> Result<(), FrameError> {
        if self.skip() != self.head() {
            return Err(FrameError::Unencodable(
                "the encoder writes the header; num_skip must be offset + width".into(),
            ));
        }
        let field = i128::try_from(frame.len()).unwrap_or(i128::MAX) - i128::from(self.adjustment);
        let limit = if self.width == 8 { u64::MAX } else { (1u64 << (8 * self.width)) - 1 };
        let field =
            u64::try_from(field).ok().filter(|&f| f <= limit && f <= self.max_frame as u64).ok_or_else(|| {
                FrameError::Unencodable(format!("a {}-byte payload does not fit the length field", frame.len()))
            })?;
        out.extend(std::iter::repeat_n(0u8, self.offset));
        let bytes = field.to_be_bytes();
        let field_bytes = &bytes[8 - self.width..];
        match self.endian {
            Endian::Big => out.extend_from_slice(field_bytes),
            Endian::Little => out.extend(field_bytes.iter().rev()),
        }
        out.extend_from_slice(frame);
        Ok(())
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn max_header(&self) -> usize {
        // A positive adjustment lets a frame run past the field's maximum by that much.
        self.head().max(self.skip()) + usize::try_from(self.adjustment.max(0)).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_all, encode_all};
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(LengthPrefixed::new(1).unwrap(), &[3, b'a', b'b', b'c'][..])]
    #[case(LengthPrefixed::new(2).unwrap().endian(Endian::Little), &[3, 0, b'a', b'b', b'c'][..])]
    #[case(LengthPrefixed::new(4).unwrap().length_includes_header(true), &[0, 0, 0, 7, b'a', b'b', b'c'][..])]
    #[case(LengthPrefixed::new(2).unwrap().offset(1), &[0xAA, 0, 3, b'a', b'b', b'c'][..])]
    fn decodes_the_documented_layouts(#[case] codec: LengthPrefixed, #[case] wire: &[u8]) {
        let (frames, err) = decode_all(codec.clone(), wire);
        assert_eq!(err, None);
        assert_eq!(frames, vec![Bytes::from_static(b"abc")]);
        if codec.field_offset() == 0 {
            assert_eq!(encode_all(&codec, &frames).unwrap(), wire);
        }
    }

    #[test]
    fn a_4_gib_length_is_refused_before_any_allocation() {
        let codec = LengthPrefixed::new(8).unwrap().max_frame(1 << 20);
        let mut buf = BytesMut::from(&[0, 0, 0, 1, 0, 0, 0, 0, 1, 2][..]);
        let cap_before = buf.capacity();
        let err = codec.clone().decode(&mut buf).unwrap_err();
        assert_eq!(err, FrameError::TooLarge { declared: 1 << 32, max: 1 << 20 });
        assert_eq!(buf.capacity(), cap_before);
    }

    #[test]
    fn header_counting_length_shorter_than_the_header_is_an_error() {
        let codec = LengthPrefixed::new(4).unwrap().length_includes_header(true);
        let (_, err) = decode_all(codec, &[0, 0, 0, 2]);
        assert_eq!(err, Some(FrameError::BadLength { field: 2, adjustment: -4 }));
    }

    #[test]
    fn a_frame_that_consumes_no_input_is_an_error_not_an_endless_stream() {
        // Found by the differential fuzz target: tokio-util returns empty frames forever here.
        let codec = LengthPrefixed::new(2).unwrap().num_skip(0).adjustment(-2);
        let (frames, err) = decode_all(codec, &[0, 2, 0, 2]);
        assert!(frames.is_empty());
        assert_eq!(err, Some(FrameError::BadLength { field: 2, adjustment: -2 }));
    }

    #[test]
    fn partial_frames_wait_and_truncation_is_reported() {
        let codec = LengthPrefixed::new(2).unwrap();
        let (frames, err) = decode_all(codec, &[0, 5, 1, 2]);
        assert!(frames.is_empty());
        assert_eq!(err, Some(FrameError::Truncated { buffered: 4 }));
        assert!(LengthPrefixed::new(3).is_err());
        let small = LengthPrefixed::new(1).unwrap();
        assert!(small.encode(&Bytes::from(vec![0u8; 256]), &mut Vec::new()).is_err());
    }
}
