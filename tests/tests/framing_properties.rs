//! The fuzz targets' properties as proptest tests: random inputs through the same library
//! functions the cargo-fuzz targets call, plus structured strategies that build valid streams
//! (which random bytes rarely are) and then cut or corrupt them.

use bytes::Bytes;
use pipe_harness::framing::{
    decode_all, encode_all, ContentLength, Delimited, FrameError, LengthPrefixed, Nmf, NmfRecord, ThriftFramed, Varint,
};
use pipe_harness::fuzzing::{self, check_chunking, check_round_trip, LengthSpec, TARGETS};
use proptest::collection::vec;
use proptest::prelude::*;

fn length_spec() -> impl Strategy<Value = LengthSpec> {
    (any::<u8>(), any::<bool>(), any::<u8>(), any::<i8>(), any::<bool>(), 0u16..2048).prop_map(
        |(width, little, offset, adjustment, includes_header, max)| LengthSpec {
            width,
            little,
            offset,
            adjustment,
            includes_header,
            max,
        },
    )
}

fn frames() -> impl Strategy<Value = Vec<Bytes>> {
    vec(vec(any::<u8>(), 0..300).prop_map(Bytes::from), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_fuzz_target_holds_on_random_input(data in vec(any::<u8>(), 0..1024)) {
        for (_, target) in TARGETS {
            target(&data);
        }
    }

    #[test]
    fn length_prefixed_round_trips(spec in length_spec(), frames in frames()) {
        check_round_trip(spec.codec(), frames);
    }

    #[test]
    fn byte_codecs_round_trip(frames in frames(), max in 0usize..400) {
        check_round_trip(Varint::new(max), frames.clone());
        check_round_trip(Delimited::lines(max), frames.clone());
        check_round_trip(Delimited::new(b"\r\n", max).expect("delimiter"), frames.clone());
        check_round_trip(ContentLength::new(max), frames.clone());
        check_round_trip(ThriftFramed::new(max), frames);
    }

    #[test]
    fn valid_streams_decode_the_same_however_they_are_cut(spec in length_spec(), frames in frames(), cuts in vec(any::<usize>(), 0..16)) {
        let codec = spec.codec();
        let kept: Vec<Bytes> = frames.into_iter().filter(|f| encode_all(&codec, std::slice::from_ref(f)).is_ok()).collect();
        let wire = encode_all(&codec, &kept).expect("kept frames encode");
        check_chunking(codec, &wire, &cuts);
        let lines = Delimited::lines(200);
        let kept: Vec<Bytes> = kept.into_iter().filter(|f| encode_all(&lines, std::slice::from_ref(f)).is_ok()).collect();
        check_chunking(lines.clone(), &encode_all(&lines, &kept).expect("encode"), &cuts);
        check_chunking(ContentLength::new(400), &encode_all(&ContentLength::new(400), &kept).expect("encode"), &cuts);
    }

    #[test]
    fn corrupted_streams_cut_anywhere_agree_with_the_whole(frames in frames(), flips in vec((any::<usize>(), any::<u8>()), 1..4), cuts in vec(any::<usize>(), 0..16)) {
        let nmf = Nmf::new(300);
        let records: Vec<NmfRecord> = frames.iter().cloned().map(NmfRecord::SizedEnvelope).chain([NmfRecord::End]).collect();
        let mut wire = encode_all(&nmf, &records.into_iter().filter(|r| encode_all(&nmf, std::slice::from_ref(r)).is_ok()).collect::<Vec<_>>()).expect("encode");
        for (at, x) in flips {
            if !wire.is_empty() {
                let i = at % wire.len();
                wire[i] ^= x;
            }
        }
        check_chunking(nmf, &wire, &cuts);
        check_chunking(Varint::new(300), &wire, &cuts);
        check_chunking(ThriftFramed::new(300), &wire, &cuts);
    }

    #[test]
    fn declared_lengths_beyond_the_maximum_never_buffer(width_sel in 0usize..4, declared in any::<u64>(), max in 0usize..4096) {
        let width = [1, 2, 4, 8][width_sel];
        let codec = LengthPrefixed::new(width).expect("width").max_frame(max);
        let mut wire = declared.to_be_bytes()[8 - width..].to_vec();
        wire.extend_from_slice(&[0u8; 16]);
        let field = u64::from_be_bytes({ let mut b = [0u8; 8]; b[8 - width..].copy_from_slice(&wire[..width]); b });
        let (frames, err) = decode_all(codec, &wire);
        if field > max as u64 {
            prop_assert!(frames.is_empty());
            let too_large = matches!(err, Some(FrameError::TooLarge { .. }));
            prop_assert!(too_large, "{:?}", err);
        }
        fuzzing::decode_length_prefixed(&wire);
    }
}
