//! Bounds checks for self-relative security descriptors given as raw bytes.
//!
//! Win32's `IsValidSecurityDescriptor` takes no length: handed a descriptor whose offsets point
//! past the buffer, it reads past it. So raw bytes from a user or a plan are first checked here,
//! in plain Rust, so every offset and size stays inside the buffer; only then does the OS
//! validate the contents.

use crate::error::{Error, Result};

/// `SE_SELF_RELATIVE` in the descriptor's control word.
const SE_SELF_RELATIVE: u16 = 0x8000;
/// `SECURITY_DESCRIPTOR_RELATIVE` header: revision, sbz1, control, four u32 offsets.
const HEADER_LEN: usize = 20;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn bad(why: String) -> Error {
    Error::invalid("security descriptor bytes", why)
}

/// Length of the SID at `at`, checked to lie inside `b`.
fn sid_len(b: &[u8], at: usize, what: &str) -> Result<usize> {
    let revision =
        *b.get(at).ok_or_else(|| bad(format!("{what} SID offset {at} is past the end ({} bytes)", b.len())))?;
    let count = *b.get(at + 1).ok_or_else(|| bad(format!("{what} SID at {at} is truncated")))?;
    if revision != 1 {
        return Err(bad(format!("{what} SID at {at} has revision {revision}, expected 1")));
    }
    if count > 15 {
        return Err(bad(format!("{what} SID at {at} claims {count} sub-authorities (at most 15)")));
    }
    let len = 8 + 4 * usize::from(count);
    if at + len > b.len() {
        return Err(bad(format!("{what} SID at {at} needs {len} bytes, only {} remain", b.len() - at)));
    }
    Ok(len)
}

/// Checks an ACL header and every ACE header lie inside `b` and inside the ACL's own size.
fn check_acl(b: &[u8], at: usize, what: &str) -> Result<()> {
    let size = usize::from(u16_at(b, at + 2).ok_or_else(|| bad(format!("{what} ACL offset {at} is past the end")))?);
    let count = u16_at(b, at + 4).ok_or_else(|| bad(format!("{what} ACL at {at} is truncated")))?;
    if size < 8 || at + size > b.len() {
        return Err(bad(format!("{what} ACL at {at} claims {size} bytes, {} remain", b.len().saturating_sub(at))));
    }
    let mut ace = at + 8;
    for i in 0..count {
        let ace_size = usize::from(
            u16_at(b, ace + 2)
                .filter(|_| ace + 4 <= at + size)
                .ok_or_else(|| bad(format!("{what} ACE {i} header at {ace} is outside the ACL")))?,
        );
        if ace_size < 4 || ace + ace_size > at + size {
            return Err(bad(format!("{what} ACE {i} at {ace} claims {ace_size} bytes, outside the ACL")));
        }
        ace += ace_size;
    }
    Ok(())
}

/// Checks that `b` is a self-relative security descriptor whose owner, group, SACL and DACL all
/// lie inside `b`. Returns the shortest length that holds them all.
pub fn check_self_relative(b: &[u8]) -> Result<usize> {
    if b.len() < HEADER_LEN {
        return Err(bad(format!("{} bytes is shorter than the {HEADER_LEN}-byte header", b.len())));
    }
    if b[0] != 1 {
        return Err(bad(format!("revision {} (expected 1)", b[0])));
    }
    let control = u16_at(b, 2).unwrap_or(0);
    if control & SE_SELF_RELATIVE == 0 {
        return Err(bad("not self-relative (SE_SELF_RELATIVE is clear)".into()));
    }
    let mut end = HEADER_LEN;
    for (slot, what) in [(4, "owner"), (8, "group")] {
        let off = u32_at(b, slot).unwrap_or(0) as usize;
        if off != 0 {
            end = end.max(off + sid_len(b, off, what)?);
        }
    }
    for (slot, what) in [(12, "SACL"), (16, "DACL")] {
        let off = u32_at(b, slot).unwrap_or(0) as usize;
        if off != 0 {
            check_acl(b, off, what)?;
            end = end.max(off + usize::from(u16_at(b, off + 2).unwrap_or(0)));
        }
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `O:WD` with an empty DACL, laid out by hand: header, DACL (8 bytes), owner SID S-1-1-0.
    fn sample() -> Vec<u8> {
        let mut b = vec![1, 0, 0x04, 0x80]; // revision 1, control = SE_SELF_RELATIVE | SE_DACL_PRESENT
        b.extend_from_slice(&28u32.to_le_bytes()); // owner at 28
        b.extend_from_slice(&0u32.to_le_bytes()); // no group
        b.extend_from_slice(&0u32.to_le_bytes()); // no SACL
        b.extend_from_slice(&20u32.to_le_bytes()); // DACL at 20
        b.extend_from_slice(&[2, 0, 8, 0, 0, 0, 0, 0]); // ACL rev 2, size 8, 0 ACEs
        b.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]); // S-1-1-0
        b
    }

    #[test]
    fn accepts_a_well_formed_descriptor() {
        let b = sample();
        assert_eq!(check_self_relative(&b).ok(), Some(b.len()));
    }

    #[test]
    fn rejects_every_truncation_without_reading_past_the_end() {
        let b = sample();
        for len in 0..b.len() {
            assert!(check_self_relative(&b[..len]).is_err(), "truncated to {len} was accepted");
        }
    }

    #[test]
    fn rejects_offsets_and_sizes_that_point_outside() {
        let mut b = sample();
        b[4..8].copy_from_slice(&4000u32.to_le_bytes());
        let err = check_self_relative(&b).expect_err("owner past the end").to_string();
        assert!(err.contains("owner SID offset 4000 is past the end"), "{err}");
        let mut b = sample();
        b[22] = 200; // DACL size
        assert!(check_self_relative(&b).is_err());
        let mut b = sample();
        b[2] = 0;
        b[3] = 0; // absolute, not self-relative
        assert!(check_self_relative(&b).is_err());
    }
}
