//! Framing: the codecs pipe servers put on their byte streams, with streaming decoders and
//! encoders. Pure: bytes in, frames out, no I/O and no platform code.
//!
//! A pipe read can return any split of the stream, so every decoder takes bytes in arbitrary
//! chunks ([`FrameDecoder::push`]) and yields whole frames ([`FrameDecoder::next_frame`]) or a
//! typed [`FrameError`]. Every codec checks a frame's declared size against its maximum *before*
//! it buffers or allocates for it: a 4 GiB length field costs nothing. A frame's bytes are copied
//! once, from the caller's chunk into the decoder's buffer; the frame is then split off that
//! buffer without another copy.
//!
//! | codec | type | used by |
//! | --- | --- | --- |
//! | length prefix, 1/2/4/8 bytes, either endian, offset, adjustment | [`LengthPrefixed`] | most custom IPC |
//! | LEB128 varint length | [`Varint`] | protobuf-style streams |
//! | delimiter | [`Delimited`] | newline-delimited JSON |
//! | `Content-Length:` headers | [`ContentLength`] | JSON-RPC, language servers |
//! | Thrift framed transport | [`ThriftFramed`] | service/desktop-process IPC |
//! | .NET Message Framing records | [`Nmf`] | WCF `net.pipe` |
//! | one pipe message = one frame | [`MessageAssembler`] | message-mode pipes |
//!
//! ```
//! use pipe_harness_core::framing::{ContentLength, FrameDecoder};
//! let mut d = FrameDecoder::new(ContentLength::new(1 << 20));
//! d.push(b"Content-Length: 2\r\n\r"); // a pipe read can stop anywhere
//! assert_eq!(d.next_frame().unwrap(), None);
//! d.push(b"\n{}");
//! assert_eq!(d.next_frame().unwrap().as_deref(), Some(&b"{}"[..]));
//! ```

mod content_length;
mod delimited;
mod length;
mod message;
mod nmf;
mod thrift;
mod varint;

pub use content_length::ContentLength;
pub use delimited::Delimited;
pub use length::{Endian, LengthPrefixed};
pub use message::MessageAssembler;
pub use nmf::{Nmf, NmfRecord};
pub use thrift::ThriftFramed;
pub use varint::Varint;

use bytes::BytesMut;

/// Why a stream could not be decoded (or a frame not encoded).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame declares (or has grown to) more bytes than the codec's maximum.
    #[error("frame of {declared} bytes exceeds the {max}-byte maximum")]
    TooLarge {
        /// The size the stream declared (or reached without a delimiter).
        declared: u64,
        /// The codec's limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {buffered} bytes buffered, frame incomplete")]
    Truncated {
        /// Bytes left over.
        buffered: usize,
    },
    /// A length field, after the codec's adjustment, is negative or overflows.
    #[error("length field {field} is invalid after adjustment {adjustment}")]
    BadLength {
        /// The raw field value.
        field: u64,
        /// The codec's adjustment.
        adjustment: i64,
    },
    /// A varint is longer than its encoding allows, or overflows.
    #[error("malformed variable-length integer at byte {at}")]
    BadVarint {
        /// Offset of the varint's first byte in the buffered input.
        at: usize,
    },
    /// A header (Content-Length section, NMF record) is malformed.
    #[error("malformed header: {0}")]
    BadHeader(String),
    /// An NMF record type byte that [MC-NMF] does not define.
    #[error("unknown record type 0x{0:02x}")]
    UnknownRecord(u8),
    /// A frame cannot be encoded with this codec's settings.
    #[error("cannot encode: {0}")]
    Unencodable(String),
    /// The codec returned a frame without consuming any input (it would repeat forever).
    #[error("the codec returned a frame without consuming input")]
    NoProgress,
    /// A decoder is used again after it reported an error.
    #[error("decoder already failed: {0}")]
    Poisoned(Box<FrameError>),
}

/// One framing: how to cut frames off the front of a buffer, and how to write them.
///
/// `decode` looks at `buf`; when it holds a whole frame it splits the frame off the front and
/// returns it, otherwise it returns `Ok(None)` and leaves `buf` as it is (it may `reserve`).
/// It must reject a declared size above [`Codec::max_frame`] as soon as the header is read.
pub trait Codec {
    /// What one frame decodes to.
    type Frame;
    /// Cuts one frame off the front of `buf`, if a whole one is there.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Frame>, FrameError>;
    /// Appends the encoding of `frame` to `out`.
    fn encode(&self, frame: &Self::Frame, out: &mut Vec<u8>) -> Result<(), FrameError>;
    /// The largest frame payload this codec accepts.
    fn max_frame(&self) -> usize;
    /// The most bytes a header (prefix, header section, record type and sizes) can take. With
    /// [`Codec::max_frame`] this bounds what a decoder ever buffers for one frame.
    fn max_header(&self) -> usize;
}

/// A streaming decoder: push bytes as they arrive, pull frames as they complete.
#[derive(Debug)]
pub struct FrameDecoder<C: Codec> {
    codec: C,
    buf: BytesMut,
    failed: Option<FrameError>,
}

impl<C: Codec> FrameDecoder<C> {
    /// A decoder with an empty buffer.
    pub fn new(codec: C) -> Self {
        FrameDecoder { codec, buf: BytesMut::new(), failed: None }
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed. After an error every call
    /// returns [`FrameError::Poisoned`]: a stream that failed to decode stays failed.
    pub fn next_frame(&mut self) -> Result<Option<C::Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(FrameError::Poisoned(Box::new(e.clone())));
        }
        let before = self.buf.len();
        let r = match self.codec.decode(&mut self.buf) {
            Ok(Some(_)) if self.buf.len() == before => Err(FrameError::NoProgress),
            other => other,
        };
        r.inspect_err(|e| self.failed = Some(e.clone()))
    }

    /// The stream has ended: an error when a partial frame is left over.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated { buffered: self.buf.len() })
        }
    }

    /// Pushes `bytes` and returns every frame that completed.
    pub fn decode_chunk(&mut self, bytes: &[u8]) -> Result<Vec<C::Frame>, FrameError> {
        self.push(bytes);
        let mut out = Vec::new();
        while let Some(f) = self.next_frame()? {
            out.push(f);
        }
        Ok(out)
    }
}

/// Decodes a whole stream: every frame, then the error that stopped it (a partial frame at the
/// end included), if any.
pub fn decode_all<C: Codec>(codec: C, stream: &[u8]) -> (Vec<C::Frame>, Option<FrameError>) {
    decode_chunks(codec, std::iter::once(stream))
}

/// Decodes a stream delivered in the given chunks: every frame, then the error, if any.
pub fn decode_chunks<'a, C: Codec>(
    codec: C,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<C::Frame>, Option<FrameError>) {
    let mut d = FrameDecoder::new(codec);
    let mut frames = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    let end = d.finish().err();
    (frames, end)
}

/// Encodes every frame, one after the other.
pub fn encode_all<C: Codec>(codec: &C, frames: &[C::Frame]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    for f in frames {
        codec.encode(f, &mut out)?;
    }
    Ok(out)
}

/// Reads an LEB128 varint (7 bits a byte, low group first) starting at `buf[at]`, at most
/// `max_bytes` long, whose value must fit in `max_bits` bits. `Ok(None)`: more bytes needed.
pub(crate) fn read_varint(
    buf: &[u8],
    at: usize,
    max_bytes: usize,
    max_bits: u32,
) -> Result<Option<(u64, usize)>, FrameError> {
    let mut value = 0u64;
    for (i, &b) in buf.get(at..).unwrap_or_default().iter().take(max_bytes).enumerate() {
        let group = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        let room = max_bits.saturating_sub(shift);
        if room == 0 || (room < 7 && group >> room != 0) {
            return Err(FrameError::BadVarint { at });
        }
        value |= group << shift;
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len().saturating_sub(at) >= max_bytes {
        Err(FrameError::BadVarint { at })
    } else {
        Ok(None)
    }
}

/// Appends `v` as an LEB128 varint.
pub(crate) fn write_varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overflow() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            write_varint(v, &mut out);
            assert_eq!(read_varint(&out, 0, 10, 64), Ok(Some((v, out.len()))), "{v}");
        }
        // 11 continuation bytes never end within 10.
        assert!(read_varint(&[0x80; 11], 0, 10, 64).is_err());
        // The 10th byte may only carry the top bit of a u64.
        assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 0, 10, 64).is_err());
        assert_eq!(read_varint(&[0x80, 0x80], 0, 10, 64), Ok(None));
        // 31-bit limit (as MC-NMF sizes): 0x7fffffff fits, 0x80000000 does not.
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x07], 0, 5, 31), Ok(Some((0x7fff_ffff, 5))));
        assert_eq!(read_varint(&[9, 0x80, 0x80, 0x80, 0x80, 0x08], 1, 5, 31), Err(FrameError::BadVarint { at: 1 }));
    }
}
