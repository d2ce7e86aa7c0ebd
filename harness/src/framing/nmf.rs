//! .NET Message Framing ([MC-NMF]) records, as WCF's `net.pipe` and `net.tcp` bindings send
//! them: a one-byte record type, then the record's fields. Strings and sizes use MC-NMF's
//! variable-length size (1 to 5 bytes of 7 bits, low group first; at most 2^31 - 1, as WCF's
//! own decoder enforces).

use super::{read_varint, write_varint, Codec, FrameError};
use bytes::{Buf, Bytes, BytesMut};

/// One MC-NMF record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NmfRecord {
    /// 0x00: protocol version (1.0 in practice).
    Version {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// 0x01: communication mode (1 singleton-unsized, 2 duplex, 3 simplex, 4 singleton-sized).
    Mode(u8),
    /// 0x02: the target URI (`net.pipe://localhost/service`).
    Via(String),
    /// 0x03: a known envelope encoding (e.g. 0x08 binary session).
    KnownEncoding(u8),
    /// 0x04: an encoding given by content type.
    ExtensibleEncoding(String),
    /// 0x05: an envelope sent as data chunks, ended by a zero-size chunk.
    UnsizedEnvelope(Vec<Bytes>),
    /// 0x06: an envelope with its size.
    SizedEnvelope(Bytes),
    /// 0x07: end of the session.
    End,
    /// 0x08: a fault, as a string.
    Fault(String),
    /// 0x09: a request to upgrade the stream (e.g. `application/negotiate`).
    UpgradeRequest(String),
    /// 0x0A: the upgrade was accepted.
    UpgradeResponse,
    /// 0x0B: the preamble was accepted.
    PreambleAck,
    /// 0x0C: end of the preamble.
    PreambleEnd,
}

impl NmfRecord {
    /// The record type byte.
    pub fn record_type(&self) -> u8 {
        match self {
            NmfRecord::Version { .. } => 0x00,
            NmfRecord::Mode(_) => 0x01,
            NmfRecord::Via(_) => 0x02,
            NmfRecord::KnownEncoding(_) => 0x03,
            NmfRecord::ExtensibleEncoding(_) => 0x04,
            NmfRecord::UnsizedEnvelope(_) => 0x05,
            NmfRecord::SizedEnvelope(_) => 0x06,
            NmfRecord::End => 0x07,
            NmfRecord::Fault(_) => 0x08,
            NmfRecord::UpgradeRequest(_) => 0x09,
            NmfRecord::UpgradeResponse => 0x0A,
            NmfRecord::PreambleAck => 0x0B,
            NmfRecord::PreambleEnd => 0x0C,
        }
    }
}

/// The MC-NMF record codec. `max_frame` bounds every string, envelope and the sum of an
/// unsized envelope's chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nmf {
    max_frame: usize,
}

impl Nmf {
    /// Records whose payloads are at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Nmf { max_frame }
    }

    /// Reads a size at `at`; `Ok(None)` when more bytes are needed.
    fn size(&self, buf: &[u8], at: usize) -> Result<Option<(usize, usize)>, FrameError> {
        match read_varint(buf, at, 5, 31)? {
            None => Ok(None),
            Some((n, used)) if n > self.max_frame as u64 => {
                let _ = used;
                Err(FrameError::TooLarge { declared: n, max: self.max_frame })
            }
            Some((n, used)) => Ok(Some((n as usize, used))),
        }
    }

    /// A size-prefixed field at `at`: `(start, len)` of its bytes, or `None` if incomplete.
    fn sized(&self, buf: &[u8], at: usize) -> Result<Option<(usize, usize)>, FrameError> {
        let Some((len, used)) = self.size(buf, at)? else { return Ok(None) };
        let start = at + used;
        Ok((buf.len() >= start + len).then_some((start, len)))
    }
}

fn utf8(b: Bytes, what: &str) -> Result<String, FrameError> {
    String::from_utf8(b.to_vec()).map_err(|_| FrameError::BadHeader(format!("{what} is not UTF-8")))
}

impl Codec for Nmf {
    type Frame = NmfRecord;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<NmfRecord>, FrameError> {
        let Some(&kind) = buf.first() else { return Ok(None) };
        let fixed =
            |n: usize, buf: &mut BytesMut| -> Option<Bytes> { (buf.len() >= n).then(|| buf.split_to(n).freeze()) };
        let record = match kind {
            0x00 => fixed(3, buf).map(|b| NmfRecord::Version { major: b[1], minor: b[2] }),
            0x01 => fixed(2, buf).map(|b| NmfRecord::Mode(b[1])),
            0x03 => fixed(2, buf).map(|b| NmfRecord::KnownEncoding(b[1])),
            0x07 => fixed(1, buf).map(|_| NmfRecord::End),
            0x0A => fixed(1, buf).map(|_| NmfRecord::UpgradeResponse),
            0x0B => fixed(1, buf).map(|_| NmfRecord::PreambleAck),
            0x0C => fixed(1, buf).map(|_| NmfRecord::PreambleEnd),
            0x02 | 0x04 | 0x06 | 0x08 | 0x09 => {
                let Some((start, len)) = self.sized(buf, 1)? else {
                    buf.reserve(16);
                    return Ok(None);
                };
                buf.advance(start);
                let body = buf.split_to(len).freeze();
                Some(match kind {
                    0x02 => NmfRecord::Via(utf8(body, "Via")?),
                    0x04 => NmfRecord::ExtensibleEncoding(utf8(body, "encoding content type")?),
                    0x06 => NmfRecord::SizedEnvelope(body),
                    0x08 => NmfRecord::Fault(utf8(body, "fault")?),
                    _ => NmfRecord::UpgradeRequest(utf8(body, "upgrade protocol")?),
                })
            }
            0x05 => {
                // Walk the chunks without consuming until the terminator is in.
                let mut at = 1;
                let mut spans = Vec::new();
                let mut total = 0usize;
                loop {
                    let Some((len, used)) = self.size(buf, at)? else { return Ok(None) };
                    if len == 0 {
                        at += used;
                        break;
                    }
                    total += len;
                    if total > self.max_frame {
                        return Err(FrameError::TooLarge { declared: total as u64, max: self.max_frame });
                    }
                    if buf.len() < at + used + len {
                        return Ok(None);
                    }
                    spans.push((at + used, len));
                    at += used + len;
                }
                let whole = buf.split_to(at).freeze();
                Some(NmfRecord::UnsizedEnvelope(spans.into_iter().map(|(s, l)| whole.slice(s..s + l)).collect()))
            }
            other => return Err(FrameError::UnknownRecord(other)),
        };
        Ok(record)
    }

    fn encode(&self, record: &NmfRecord, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let check = |n: usize| {
            if n > self.max_frame || n > i32::MAX as usize {
                Err(FrameError::Unencodable(format!("a {n}-byte field exceeds the {}-byte maximum", self.max_frame)))
            } else {
                Ok(())
            }
        };
        let sized = |out: &mut Vec<u8>, b: &[u8]| -> Result<(), FrameError> {
            check(b.len())?;
            write_varint(b.len() as u64, out);
            out.extend_from_slice(b);
            Ok(())
        };
        out.push(record.record_type());
        match record {
            NmfRecord::Version { major, minor } => out.extend_from_slice(&[*major, *minor]),
            NmfRecord::Mode(m) | NmfRecord::KnownEncoding(m) => out.push(*m),
            NmfRecord::Via(s)
            | NmfRecord::ExtensibleEncoding(s)
            | NmfRecord::Fault(s)
            | NmfRecord::UpgradeRequest(s) => sized(out, s.as_bytes())?,
            NmfRecord::SizedEnvelope(b) => sized(out, b)?,
            NmfRecord::UnsizedEnvelope(chunks) => {
                check(chunks.iter().map(Bytes::len).sum())?;
                for c in chunks {
                    if c.is_empty() {
                        return Err(FrameError::Unencodable("an empty data chunk would end the envelope".into()));
                    }
                    sized(out, c)?;
                }
                out.push(0);
            }
            NmfRecord::End | NmfRecord::UpgradeResponse | NmfRecord::PreambleAck | NmfRecord::PreambleEnd => {}
        }
        Ok(())
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn max_header(&self) -> usize {
        // Record type, terminator, and a size of up to 5 bytes per data chunk; every chunk
        // carries at least one payload byte, so there are at most `max_frame` of them.
        2 + 5 * self.max_frame.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_all, encode_all};
    use super::*;

    /// The preamble a WCF net.pipe client sends, then one sized envelope and End.
    fn session() -> Vec<NmfRecord> {
        vec![
            NmfRecord::Version { major: 1, minor: 0 },
            NmfRecord::Mode(2),
            NmfRecord::Via("net.pipe://localhost/Service".into()),
            NmfRecord::KnownEncoding(0x08),
            NmfRecord::PreambleEnd,
            NmfRecord::SizedEnvelope(Bytes::from_static(&[0x56, 0x02, 0x0b])),
            NmfRecord::UnsizedEnvelope(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")]),
            NmfRecord::End,
        ]
    }

    #[test]
    fn a_wcf_session_round_trips_and_matches_the_wire_layout() {
        let codec = Nmf::new(1 << 16);
        let wire = encode_all(&codec, &session()).unwrap();
        assert_eq!(&wire[..5], &[0x00, 1, 0, 0x01, 2]);
        assert_eq!(wire[5], 0x02);
        assert_eq!(wire[6] as usize, "net.pipe://localhost/Service".len());
        assert_eq!(decode_all(codec, &wire), (session(), None));
    }

    #[test]
    fn unknown_records_huge_sizes_and_bad_strings_are_refused() {
        assert_eq!(decode_all(Nmf::new(100), &[0x0D]).1, Some(FrameError::UnknownRecord(0x0D)));
        // Size 2^31 - 1 declared for a Via, limit 100.
        let (_, err) = decode_all(Nmf::new(100), &[0x02, 0xff, 0xff, 0xff, 0xff, 0x07]);
        assert_eq!(err, Some(FrameError::TooLarge { declared: 0x7fff_ffff, max: 100 }));
        // A sixth size byte, or a fifth beyond 31 bits, is malformed.
        assert_eq!(
            decode_all(Nmf::new(100), &[0x06, 0x80, 0x80, 0x80, 0x80, 0x10]).1,
            Some(FrameError::BadVarint { at: 1 })
        );
        assert!(matches!(decode_all(Nmf::new(100), &[0x02, 1, 0xff]).1, Some(FrameError::BadHeader(_))));
        // Unsized envelope chunks add up against the limit.
        let (_, err) = decode_all(Nmf::new(4), &[0x05, 3, 1, 2, 3, 3, 1, 2, 3, 0]);
        assert_eq!(err, Some(FrameError::TooLarge { declared: 6, max: 4 }));
    }
}
