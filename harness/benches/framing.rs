//! Decode throughput of the length-prefix decoder, next to tokio-util's `LengthDelimitedCodec`
//! on the same bytes and next to a plain memcpy of them, printed as ratios.
//!
//!     cargo bench -p pipe-harness --bench framing
//!
//! Frames of 64 B, 4 KiB and 64 KiB (4-byte big-endian length), fed in 8 KiB chunks, as a pipe
//! read would return them. Each figure is the best of 21 interleaved rounds over 16 MiB of stream.
//! Goals: at least 1.0x tokio-util at every size, at least 0.5x memcpy at 64 KiB.

use bytes::BytesMut;
use pipe_harness_core::framing::{FrameDecoder, LengthPrefixed};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

const CHUNK: usize = 8 * 1024;
const STREAM: usize = 16 << 20;
const RUNS: usize = 21;

fn stream_of(frame: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity(STREAM + frame + 4);
    let mut i = 0u8;
    while s.len() < STREAM {
        s.extend_from_slice(&(frame as u32).to_be_bytes());
        s.extend(std::iter::repeat_n(i, frame));
        i = i.wrapping_add(1);
    }
    s
}

fn timed(f: &mut dyn FnMut() -> usize) -> (Duration, usize) {
    let t = Instant::now();
    let n = black_box(f());
    (t.elapsed(), n)
}

/// Best time of each contender over `RUNS` rounds, the contenders interleaved within each
/// round so that machine noise and frequency drift hit them alike.
fn best_interleaved(fs: &mut [&mut dyn FnMut() -> usize]) -> Vec<(Duration, usize)> {
    let mut best = vec![(Duration::MAX, 0); fs.len()];
    for _ in 0..RUNS {
        for (f, b) in fs.iter_mut().zip(best.iter_mut()) {
            let (t, n) = timed(*f);
            *b = (b.0.min(t), n);
        }
    }
    best
}

fn ours(stream: &[u8]) -> usize {
    let codec = LengthPrefixed::new(4).expect("width 4").max_frame(1 << 20);
    let mut d = FrameDecoder::new(codec);
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        d.push(chunk);
        while let Some(f) = d.next_frame().expect("valid stream") {
            black_box(&f);
            n += 1;
        }
    }
    n
}

fn tokio(stream: &[u8]) -> usize {
    let mut codec = LengthDelimitedCodec::builder().length_field_length(4).max_frame_length(1 << 20).new_codec();
    let mut buf = BytesMut::new();
    let mut n = 0;
    for chunk in stream.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(f) = codec.decode(&mut buf).expect("valid stream") {
            black_box(&f);
            n += 1;
        }
    }
    n
}

/// The one copy a decoder cannot avoid: each chunk into a buffer the size of the decoder's
/// working set (one frame plus one chunk), reused, so it stays as cache-resident as the
/// decoder's own buffer.
fn memcpy(stream: &[u8], dst: &mut [u8]) -> usize {
    let slots = dst.len() / CHUNK;
    for (i, s) in stream.chunks(CHUNK).enumerate() {
        let at = (i % slots) * CHUNK;
        dst[at..at + s.len()].copy_from_slice(s);
        black_box(&dst[at]);
    }
    stream.len()
}

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn main() {
    println!("length-prefix decode, 8 KiB chunks, best of {RUNS} over {} MiB", STREAM >> 20);
    println!(
        "{:>8}  {:>12}  {:>12}  {:>12}  {:>10}  {:>10}",
        "frame", "ours MiB/s", "tokio MiB/s", "memcpy MiB/s", "vs tokio", "vs memcpy"
    );
    for frame in [64usize, 4096, 65536] {
        let s = stream_of(frame);
        let mut dst = vec![1u8; (frame + 4).div_ceil(CHUNK) * CHUNK + CHUNK];
        let r = best_interleaved(&mut [&mut || ours(&s), &mut || tokio(&s), &mut || memcpy(&s, &mut dst)]);
        let ((t_ours, n_ours), (t_tokio, n_tokio), (t_copy, _)) = (r[0], r[1], r[2]);
        assert_eq!(n_ours, n_tokio, "both decoders see every frame");
        let (a, b, c) = (mib_per_s(s.len(), t_ours), mib_per_s(s.len(), t_tokio), mib_per_s(s.len(), t_copy));
        println!("{frame:>8}  {a:>12.0}  {b:>12.0}  {c:>12.0}  {:>9.2}x  {:>9.2}x", a / b, a / c);
    }
}
