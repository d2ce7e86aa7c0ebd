//! Plain-text helpers for SDDL strings (no OS calls, so they run and are tested everywhere).

/// The text of one SDDL section (`'O'` owner, `'G'` group, `'D'` DACL, `'S'` SACL) without its
/// `X:` tag, or `None` when the string has no such section.
///
/// Sections start at a tag letter followed by `:` outside parentheses; SID strings (`S-1-5-18`)
/// and ACE bodies (`(A;;GA;;;SY)`) are never mistaken for tags.
pub fn section(sddl: &str, tag: char) -> Option<&str> {
    let bytes = sddl.as_bytes();
    let mut depth = 0usize;
    let mut starts = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'O' | b'G' | b'D' | b'S' if depth == 0 && bytes.get(i + 1) == Some(&b':') => starts.push((b as char, i)),
            _ => {}
        }
    }
    let pos = starts.iter().position(|&(t, _)| t == tag)?;
    let begin = starts[pos].1 + 2;
    let end = starts.get(pos + 1).map_or(sddl.len(), |&(_, i)| i);
    Some(&sddl[begin..end])
}

#[cfg(test)]
mod tests {
    use super::section;
    use rstest::rstest;

    #[rstest]
    #[case("O:S-1-5-21-1-2-3-500G:S-1-5-21-1-2-3-513D:P(A;;GA;;;SY)S:(ML;;NW;;;LW)", 'O', Some("S-1-5-21-1-2-3-500"))]
    #[case("O:S-1-5-21-1-2-3-500G:S-1-5-21-1-2-3-513D:P(A;;GA;;;SY)S:(ML;;NW;;;LW)", 'G', Some("S-1-5-21-1-2-3-513"))]
    #[case("O:S-1-5-21-1-2-3-500G:S-1-5-21-1-2-3-513D:P(A;;GA;;;SY)S:(ML;;NW;;;LW)", 'D', Some("P(A;;GA;;;SY)"))]
    #[case("O:BAD:(A;;GA;;;S-1-5-18)", 'D', Some("(A;;GA;;;S-1-5-18)"))]
    #[case("O:BAD:(A;;GA;;;S-1-5-18)", 'O', Some("BA"))]
    #[case("D:(A;;GA;;;WD)", 'S', None)]
    #[case("", 'D', None)]
    fn sections_are_found_by_tag(#[case] sddl: &str, #[case] tag: char, #[case] want: Option<&str>) {
        assert_eq!(section(sddl, tag), want);
    }
}
