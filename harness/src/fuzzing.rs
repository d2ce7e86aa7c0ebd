//! The logic of the cargo-fuzz targets in `fuzz/`, kept here so it is linted, unit tested, run
//! as proptest properties and replayed over the committed corpora by `cargo test`. Each fuzz
//! target is one line that calls one function of [`TARGETS`].
//!
//! The properties, for every codec:
//! - **decode**: arbitrary bytes, fed in chunks, never panic, and the decoder never holds more
//!   than one frame's worth (`max_frame + max_header`) plus the chunk being fed;
//! - **round trip**: an arbitrary frame sequence encodes and decodes back to itself;
//! - **chunking**: the same bytes cut at arbitrary points give the same frames and the same
//!   kind of error as the bytes fed at once;
//! - **differential** (feature `tokio-differential`): the length-prefix decoder agrees with
//!   tokio-util's `LengthDelimitedCodec` on equivalent settings.

use crate::framing::{
    decode_all, decode_chunks, Codec, ContentLength, Delimited, Endian, FrameDecoder, LengthPrefixed, MessageAssembler,
    Nmf, NmfRecord, ThriftFramed, Varint,
};
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;

/// Plan parser target: any text gives a target and policy or an error that names the file
/// (and, where the text has one, the line and column); never a panic.
pub fn plan_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = std::path::Path::new("fuzz.toml");
    if let Err(e) = crate::engine::plan::parse(file, &text) {
        let msg = e.to_string();
        assert!(msg.contains("fuzz.toml"), "the error does not name the plan: {msg}");
    }
}

/// SDDL target: the text helpers (sections, the create-instance analysis of `list`) and the
/// Unix protection parser take any string without panicking, and a section is a part of the
/// string it came from.
pub fn sddl(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for tag in ['O', 'G', 'D', 'S'] {
        if let Some(sec) = crate::sddl::section(&text, tag) {
            assert!(text.contains(sec), "section {tag} {sec:?} is not part of {text:?}");
        }
    }
    let _ = crate::inventory::who_may_create_instances(&text);
    let dirs: Vec<u32> = data.iter().take(8).map(|b| u32::from(*b) << 3).collect();
    let _ = crate::inventory::unix_flags(&text, data.first().map(|b| u32::from(*b) << 3), &dirs);
}

/// Bytes fed to a decoder per push in the decode targets.
pub const CHUNK: usize = 4096;

/// A fuzz target: its name under `fuzz/fuzz_targets/` and the function it calls.
pub type Target = (&'static str, fn(&[u8]));

/// Every fuzz target, by name.
pub const TARGETS: &[Target] = &[
    ("decode_length_prefixed", decode_length_prefixed),
    ("decode_varint", decode_varint),
    ("decode_delimited", decode_delimited),
    ("decode_content_length", decode_content_length),
    ("decode_thrift", decode_thrift),
    ("decode_nmf", decode_nmf),
    ("decode_message", decode_message),
    ("round_trip", round_trip),
    ("chunking", chunking),
    ("plan_parse", plan_parse),
    ("sddl", sddl),
    #[cfg(feature = "tokio-differential")]
    ("differential_length_delimited", differential_length_delimited),
];

/// Settings for any codec, chosen by the fuzzer. Maxima are small so that length bombs are
/// reached quickly and memory stays bounded.
#[derive(Arbitrary, Clone, Debug)]
pub enum CodecSpec {
    /// [`LengthPrefixed`].
    Length(LengthSpec),
    /// [`Varint`].
    Varint(u16),
    /// [`Delimited::lines`].
    Lines(u16),
    /// [`Delimited::new`] with a 1 to 3-byte delimiter.
    Delimiter(u8, Option<u8>, Option<u8>, u16),
    /// [`ContentLength`].
    ContentLength(u16),
    /// [`ThriftFramed`].
    Thrift(u16),
    /// [`Nmf`].
    Nmf(u16),
}

/// Settings for [`LengthPrefixed`].
#[derive(Arbitrary, Clone, Debug)]
pub struct LengthSpec {
    /// 0..=3 selects width 1, 2, 4, 8.
    pub width: u8,
    /// Little endian when true.
    pub little: bool,
    /// Bytes before the field, taken mod 4.
    pub offset: u8,
    /// Adjustment, -16..=15.
    pub adjustment: i8,
    /// Whether the field counts the header (overrides the adjustment).
    pub includes_header: bool,
    /// Maximum frame.
    pub max: u16,
}

impl LengthSpec {
    /// The codec these settings describe (num_skip left at its default).
    pub fn codec(&self) -> LengthPrefixed {
        let width = [1, 2, 4, 8][usize::from(self.width % 4)];
        let c = LengthPrefixed::new(width)
            .unwrap_or_else(|_| unreachable!("1, 2, 4 and 8 are valid widths"))
            .endian(if self.little { Endian::Little } else { Endian::Big })
            .offset(usize::from(self.offset % 4))
            .max_frame(usize::from(self.max));
        if self.includes_header {
            c.length_includes_header(true)
        } else {
            c.adjustment(i64::from(self.adjustment % 16))
        }
    }
}

/// Evaluates `$bytes` with `$c` bound to the codec `spec` describes when its frames are payload
/// bytes, or `$nmf` with `$n` bound to the [`Nmf`] codec.
macro_rules! with_codec {
    ($spec:expr, |$c:ident| $bytes:expr, nmf |$n:ident| $nmf:expr) => {
        match $spec {
            CodecSpec::Length(l) => {
                let $c = l.codec();
                $bytes
            }
            CodecSpec::Varint(m) => {
                let $c = Varint::new(usize::from(*m));
                $bytes
            }
            CodecSpec::Lines(m) => {
                let $c = Delimited::lines(usize::from(*m));
                $bytes
            }
            CodecSpec::Delimiter(a, b, c2, m) => {
                let d: Vec<u8> = std::iter::once(*a).chain(*b).chain(*c2).collect();
                let $c = Delimited::new(&d, usize::from(*m)).unwrap_or_else(|_| unreachable!("non-empty"));
                $bytes
            }
            CodecSpec::ContentLength(m) => {
                let $c = ContentLength::new(usize::from(*m));
                $bytes
            }
            CodecSpec::Thrift(m) => {
                let $c = ThriftFramed::new(usize::from(*m));
                $bytes
            }
            CodecSpec::Nmf(m) => {
                let $n = Nmf::new(usize::from(*m));
                $nmf
            }
        }
    };
}

/// Feeds `data` in [`CHUNK`]-byte pushes, draining frames after each, and checks the decoder
/// never buffers more than one frame's worth plus one chunk.
pub fn decode_bounded<C: Codec>(codec: C, data: &[u8]) {
    let bound = codec.max_frame() + codec.max_header() + CHUNK;
    let mut d = FrameDecoder::new(codec);
    for chunk in data.chunks(CHUNK) {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(d.buffered() <= bound, "decoder holds {} bytes, bound {bound}", d.buffered());
    }
    let _ = d.finish();
}

fn small_max(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (usize::from(b) * 64, rest),
        None => (0, data),
    }
}

/// Decode target for [`LengthPrefixed`]: the first two bytes pick the settings.
pub fn decode_length_prefixed(data: &[u8]) {
    let mut u = Unstructured::new(data.get(..8).unwrap_or(data));
    let Ok(spec) = LengthSpec::arbitrary(&mut u) else { return };
    decode_bounded(spec.codec(), data.get(8..).unwrap_or_default());
}

/// Decode target for [`Varint`]; the first byte sets the maximum (x64).
pub fn decode_varint(data: &[u8]) {
    let (max, rest) = small_max(data);
    decode_bounded(Varint::new(max), rest);
}

/// Decode target for [`Delimited`] (lines); the first byte sets the maximum (x64).
pub fn decode_delimited(data: &[u8]) {
    let (max, rest) = small_max(data);
    decode_bounded(Delimited::lines(max), rest);
}

/// Decode target for [`ContentLength`]; the first byte sets the maximum (x64).
pub fn decode_content_length(data: &[u8]) {
    let (max, rest) = small_max(data);
    decode_bounded(ContentLength::new(max), rest);
}

/// Decode target for [`ThriftFramed`]; the first byte sets the maximum (x64).
pub fn decode_thrift(data: &[u8]) {
    let (max, rest) = small_max(data);
    decode_bounded(ThriftFramed::new(max), rest);
}

/// Decode target for [`Nmf`]; the first byte sets the maximum (x64).
pub fn decode_nmf(data: &[u8]) {
    let (max, rest) = small_max(data);
    decode_bounded(Nmf::new(max), rest);
}

/// Decode target for [`MessageAssembler`]: the input is a sequence of parts, each a length
/// byte (top bit: more data follows) and that many bytes.
pub fn decode_message(data: &[u8]) {
    let (max, mut rest) = small_max(data);
    let mut m = MessageAssembler::new(max);
    while let Some((&head, tail)) = rest.split_first() {
        let n = usize::from(head & 0x7f).min(tail.len());
        let (part, after) = tail.split_at(n);
        rest = after;
        if let Ok(Some(msg)) = m.push_part(part, head & 0x80 != 0) {
            assert!(msg.len() <= max);
        }
    }
}

/// An arbitrary [`NmfRecord`] (the record type has no `Arbitrary` of its own: `Bytes`).
fn arbitrary_record(u: &mut Unstructured<'_>) -> arbitrary::Result<NmfRecord> {
    let bytes = |u: &mut Unstructured<'_>| -> arbitrary::Result<Bytes> { Ok(Bytes::from(Vec::<u8>::arbitrary(u)?)) };
    Ok(match u.int_in_range(0u8..=12)? {
        0 => NmfRecord::Version { major: u.arbitrary()?, minor: u.arbitrary()? },
        1 => NmfRecord::Mode(u.arbitrary()?),
        2 => NmfRecord::Via(u.arbitrary()?),
        3 => NmfRecord::KnownEncoding(u.arbitrary()?),
        4 => NmfRecord::ExtensibleEncoding(u.arbitrary()?),
        5 => {
            NmfRecord::UnsizedEnvelope((0..u.int_in_range(0..=4)?).map(|_| bytes(u)).collect::<arbitrary::Result<_>>()?)
        }
        6 => NmfRecord::SizedEnvelope(bytes(u)?),
        7 => NmfRecord::End,
        8 => NmfRecord::Fault(u.arbitrary()?),
        9 => NmfRecord::UpgradeRequest(u.arbitrary()?),
        10 => NmfRecord::UpgradeResponse,
        11 => NmfRecord::PreambleAck,
        _ => NmfRecord::PreambleEnd,
    })
}

/// Encodes each frame the codec can encode, decodes the whole, and checks it comes back.
pub fn check_round_trip<C: Codec>(codec: C, frames: Vec<C::Frame>)
where
    C::Frame: PartialEq + std::fmt::Debug,
{
    let mut wire = Vec::new();
    let mut kept = Vec::new();
    for f in frames {
        let mut one = Vec::new();
        if codec.encode(&f, &mut one).is_ok() {
            wire.extend_from_slice(&one);
            kept.push(f);
        }
    }
    let (back, err) = decode_all(codec, &wire);
    assert_eq!(err, None, "decoding our own encoding failed");
    assert_eq!(back, kept);
}

/// Round-trip target: codec settings and frames from the input.
pub fn round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(spec) = CodecSpec::arbitrary(&mut u) else { return };
    with_codec!(
        &spec,
        |c| {
            let frames = Vec::<Vec<u8>>::arbitrary(&mut u).unwrap_or_default();
            check_round_trip(c, frames.into_iter().map(Bytes::from).collect())
        },
        nmf | n | {
            let mut records = Vec::new();
            while records.len() < 32 && !u.is_empty() {
                match arbitrary_record(&mut u) {
                    Ok(r) => records.push(r),
                    Err(_) => break,
                }
            }
            check_round_trip(n, records)
        }
    )
}

/// Decodes `stream` whole and in the given pieces; the frames must match and the error must be
/// of the same kind.
pub fn check_chunking<C: Codec + Clone>(codec: C, stream: &[u8], cuts: &[usize])
where
    C::Frame: PartialEq + std::fmt::Debug,
{
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut last = 0;
    for p in points {
        pieces.push(&stream[last..p]);
        last = p;
    }
    pieces.push(&stream[last..]);
    let (whole, whole_err) = decode_all(codec.clone(), stream);
    let (cut, cut_err) = decode_chunks(codec, pieces.iter().copied());
    assert_eq!(whole, cut, "frames differ when the stream is cut at {cuts:?}");
    assert_eq!(
        whole_err.as_ref().map(std::mem::discriminant),
        cut_err.as_ref().map(std::mem::discriminant),
        "errors differ: whole {whole_err:?}, cut {cut_err:?}"
    );
}

/// Chunking target: codec settings, cut points and the stream from the input.
pub fn chunking(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(spec), Ok(cuts)) = (CodecSpec::arbitrary(&mut u), Vec::<u16>::arbitrary(&mut u)) else { return };
    let cuts: Vec<usize> = cuts.into_iter().take(64).map(usize::from).collect();
    let stream = u.take_rest();
    with_codec!(&spec, |c| check_chunking(c, stream, &cuts), nmf | n | check_chunking(n, stream, &cuts))
}

#[cfg(feature = "tokio-differential")]
pub use differential::differential_length_delimited;

#[cfg(feature = "tokio-differential")]
mod differential {
    use super::*;
    use tokio_util::codec::{Decoder, LengthDelimitedCodec};

    /// Differential target: [`LengthPrefixed`] against tokio-util's `LengthDelimitedCodec` with
    /// the same field width, order, offset, adjustment, skip and maximum, on the same bytes.
    pub fn differential_length_delimited(data: &[u8]) {
        let mut u = Unstructured::new(data);
        let (Ok(spec), Ok(skip_delta), Ok(width)) =
            (LengthSpec::arbitrary(&mut u), u.int_in_range(0u8..=3), u.int_in_range(1u8..=8))
        else {
            return;
        };
        let width = usize::from(width);
        let offset = usize::from(spec.offset % 4);
        let adjustment = i64::from(spec.adjustment % 16);
        // tokio advances by num_skip without checking it is buffered: keep it within the header.
        let num_skip = (offset + width).saturating_sub(usize::from(skip_delta));
        let max = usize::from(spec.max);
        // tokio-util lowers max_frame_length to the field's largest value plus the adjustment
        // when it builds the codec, and then compares the raw field against that: with a
        // negative adjustment it refuses fields that fit. Settings where that clamp changes the
        // limit are not equivalent settings, so they are not compared.
        let field_max = if width == 8 { u64::MAX } else { (1u64 << (8 * width)) - 1 };
        if i128::try_from(max).unwrap_or(i128::MAX) > i128::from(field_max) + i128::from(adjustment) {
            return;
        }
        let stream = u.take_rest();
        let Ok(ours) = LengthPrefixed::new(width) else { return }; // tokio also takes 3, 5, 6, 7
        let ours = ours
            .endian(if spec.little { Endian::Little } else { Endian::Big })
            .offset(offset)
            .adjustment(adjustment)
            .num_skip(num_skip)
            .max_frame(max);
        let mut b = LengthDelimitedCodec::builder();
        b.length_field_length(width)
            .length_field_offset(offset)
            .length_adjustment(adjustment as isize)
            .num_skip(num_skip)
            .max_frame_length(max);
        if spec.little {
            b.little_endian();
        }
        let mut theirs = b.new_codec();
        let mut buf = bytes::BytesMut::from(stream);
        let mut their_frames = Vec::new();
        let their_err = loop {
            let before = buf.len();
            match theirs.decode(&mut buf) {
                // tokio-util returns a frame that consumed nothing (num_skip 0, empty frame),
                // and would forever: ours refuses that frame, so stop at the same point.
                Ok(Some(_)) if buf.len() == before => break Some("frame consumed no input".to_string()),
                Ok(Some(f)) => their_frames.push(f.freeze()),
                Ok(None) => break theirs.decode_eof(&mut buf).err().map(|e| e.to_string()),
                Err(e) => break Some(e.to_string()),
            }
        };
        // tokio-util 0.7's decode_eof returns Ok(None) when the stream ends right after a whole
        // length header (it has already consumed the header, so its buffer is empty): the
        // truncated frame goes unreported. Ours reports Truncated; count that case as agreement.
        let their_err = match their_err {
            None if buf.is_empty()
                && !stream.is_empty()
                && decode_all(ours.clone(), stream)
                    .1
                    .is_some_and(|e| matches!(e, crate::framing::FrameError::Truncated { .. })) =>
            {
                Some("stream ended after a header (not reported by tokio-util)".to_string())
            }
            other => other,
        };
        let (our_frames, our_err) = decode_all(ours, stream);
        assert_eq!(
            our_frames, their_frames,
            "frames differ from tokio-util (ours then {our_err:?}, theirs then {their_err:?})"
        );
        assert_eq!(our_err.is_some(), their_err.is_some(), "ours: {our_err:?}, tokio-util: {their_err:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_survives_empty_and_small_inputs() {
        for (name, target) in TARGETS {
            for input in [&[][..], &[0], &[1, 2, 3], &[0xff; 64]] {
                let r = std::panic::catch_unwind(|| target(input));
                assert!(r.is_ok(), "{name} panicked on {input:?}");
            }
        }
    }

    #[test]
    fn the_chunking_check_catches_a_decoder_that_depends_on_chunk_boundaries() {
        /// A broken codec: takes whatever is buffered as one frame.
        #[derive(Clone)]
        struct Greedy;
        impl Codec for Greedy {
            type Frame = Bytes;
            fn decode(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<Bytes>, crate::framing::FrameError> {
                Ok((!buf.is_empty()).then(|| buf.split().freeze()))
            }
            fn encode(&self, f: &Bytes, out: &mut Vec<u8>) -> Result<(), crate::framing::FrameError> {
                out.extend_from_slice(f);
                Ok(())
            }
            fn max_frame(&self) -> usize {
                100
            }
            fn max_header(&self) -> usize {
                0
            }
        }
        let r = std::panic::catch_unwind(|| check_chunking(Greedy, b"abcdef", &[3]));
        assert!(r.is_err(), "a chunk-dependent decoder must fail the property");
    }
}
