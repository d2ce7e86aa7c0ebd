//! What protects an endpoint, as a value: a Windows DACL (parsed from SDDL, with its rights as
//! access masks and its SIDs in `S-1-...` form) or a Unix socket's mode, owner and group.
//!
//! Parsed once, where it enters (a plan, a backend's reading of a live endpoint), and compared
//! as values: a policy of `D:P(A;;GA;;;SY)` and a pipe whose DACL the system stored as
//! `D:P(A;;FA;;;S-1-5-18)` are the same protection, because a pipe's generic rights map to the
//! file rights (`docs/windows-rules.md`, rule 4) and `SY` is `S-1-5-18`. No OS call: it runs,
//! and is tested, everywhere.
//!
//! ```
//! use pipe_harness_core::protection::Protection;
//!
//! let policy: Protection = "D:P(A;;GA;;;SY)(A;;GA;;;OW)".parse().unwrap();
//! let seen: Protection = "D:P(A;;FA;;;S-1-5-18)(A;;FA;;;S-1-3-4)".parse().unwrap();
//! assert_eq!(policy, seen);
//! let unix: Protection = "mode=0600 uid=61000".parse().unwrap();
//! assert_eq!(unix.to_string(), "mode=0600 uid=61000");
//! // A DACL that lets Everyone write lets Everyone create instances (FILE_APPEND_DATA).
//! let open: Protection = "D:(A;;GW;;;WD)".parse().unwrap();
//! let Protection::Dacl(dacl) = open else { unreachable!() };
//! assert!(dacl.aces[0].mask & pipe_harness_core::protection::FILE_CREATE_PIPE_INSTANCE != 0);
//! ```

use crate::error::{Error, Result};
use std::fmt;

/// `FILE_CREATE_PIPE_INSTANCE` (the same bit as `FILE_APPEND_DATA`): the right to add an
/// instance to a pipe name.
pub const FILE_CREATE_PIPE_INSTANCE: u32 = 0x0004;
/// `FILE_WRITE_DATA`.
pub const FILE_WRITE_DATA: u32 = 0x0002;
/// `FILE_ALL_ACCESS`, what `GENERIC_ALL` maps to on a pipe.
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
/// `FILE_GENERIC_READ`.
pub const FILE_GENERIC_READ: u32 = 0x0012_0089;
/// `FILE_GENERIC_WRITE`.
pub const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
/// `FILE_GENERIC_EXECUTE`.
pub const FILE_GENERIC_EXECUTE: u32 = 0x0012_00A0;

const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const GENERIC_EXECUTE: u32 = 0x2000_0000;
const GENERIC_ALL: u32 = 0x1000_0000;

/// The rights of SDDL's two-letter tokens (file, generic and standard rights).
const RIGHTS: &[(&str, u32)] = &[
    ("FA", FILE_ALL_ACCESS),
    ("FR", FILE_GENERIC_READ),
    ("FW", FILE_GENERIC_WRITE),
    ("FX", FILE_GENERIC_EXECUTE),
    ("GA", GENERIC_ALL),
    ("GR", GENERIC_READ),
    ("GW", GENERIC_WRITE),
    ("GX", GENERIC_EXECUTE),
    ("RC", 0x0002_0000),
    ("SD", 0x0001_0000),
    ("WD", 0x0004_0000),
    ("WO", 0x0008_0000),
    ("CC", 0x0001),
    ("DC", 0x0002),
    ("LC", 0x0004),
    ("SW", 0x0008),
    ("RP", 0x0010),
    ("WP", 0x0020),
    ("DT", 0x0040),
    ("LO", 0x0080),
    ("CR", 0x0100),
];

/// SDDL's SID aliases that do not depend on a domain.
const SIDS: &[(&str, &str)] = &[
    ("WD", "S-1-1-0"),
    ("CO", "S-1-3-0"),
    ("CG", "S-1-3-1"),
    ("OW", "S-1-3-4"),
    ("NU", "S-1-5-2"),
    ("IU", "S-1-5-4"),
    ("SU", "S-1-5-6"),
    ("AN", "S-1-5-7"),
    ("ED", "S-1-5-9"),
    ("PS", "S-1-5-10"),
    ("AU", "S-1-5-11"),
    ("RC", "S-1-5-12"),
    ("SY", "S-1-5-18"),
    ("LS", "S-1-5-19"),
    ("NS", "S-1-5-20"),
    ("WR", "S-1-5-33"),
    ("BA", "S-1-5-32-544"),
    ("BU", "S-1-5-32-545"),
    ("BG", "S-1-5-32-546"),
    ("PU", "S-1-5-32-547"),
    ("AO", "S-1-5-32-548"),
    ("SO", "S-1-5-32-549"),
    ("BO", "S-1-5-32-551"),
    ("RD", "S-1-5-32-555"),
    ("NO", "S-1-5-32-556"),
    ("IS", "S-1-5-32-568"),
    ("ER", "S-1-5-32-573"),
    ("AC", "S-1-15-2-1"),
    ("LW", "S-1-16-4096"),
    ("ME", "S-1-16-8192"),
    ("HI", "S-1-16-12288"),
    ("SI", "S-1-16-16384"),
];

/// ACE flags and their SDDL tokens.
const ACE_FLAGS: &[(&str, u8)] =
    &[("OI", 0x01), ("CI", 0x02), ("NP", 0x04), ("IO", 0x08), ("ID", 0x10), ("SA", 0x40), ("FA", 0x80)];

/// What protects an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protection {
    /// A Windows discretionary ACL.
    Dacl(Dacl),
    /// A NULL DACL: everyone may do anything (Windows).
    NullDacl,
    /// A Unix socket file's permission bits and owner.
    Mode(UnixMode),
    /// A Linux abstract socket: no file, no permissions at all.
    Abstract,
}

/// A DACL: its control flags and its ACEs, in order (order matters to an access check).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dacl {
    /// `P`: protected from inheritance.
    pub protected: bool,
    /// `AI`: inherited ACEs were propagated automatically.
    pub auto_inherited: bool,
    /// The ACEs.
    pub aces: Vec<Ace>,
}

/// One access-control entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ace {
    /// What it does.
    pub kind: AceKind,
    /// Inheritance flags (`OI` 0x01, `CI` 0x02, `NP` 0x04, `IO` 0x08, `ID` 0x10, ...).
    pub flags: u8,
    /// The rights, generic rights mapped as a pipe maps them (`GA` is `FILE_ALL_ACCESS`).
    pub mask: u32,
    /// Whom it is for, in `S-1-...` form (an alias that needs a domain, such as `DA`, stays an
    /// alias).
    pub sid: String,
}

/// An ACE's type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AceKind {
    /// `A`: access allowed.
    Allow,
    /// `D`: access denied.
    Deny,
    /// Another type (object, callback, audit ACEs), kept as its SDDL token.
    Other(String),
}

/// A Unix socket's protection: permission bits, and the owner and group when given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnixMode {
    /// The permission bits (`0o600`).
    pub mode: u32,
    /// The owning uid.
    pub uid: Option<u32>,
    /// The owning gid.
    pub gid: Option<u32>,
}

impl UnixMode {
    /// Whether users other than the owner and group may connect (connecting needs write).
    pub fn others_may_connect(&self) -> bool {
        self.mode & 0o002 != 0
    }

    /// Who may connect, class by class: `connect(2)` on a socket file needs only its write
    /// bit, so read and execute bits grant nothing.
    pub fn connect_access(&self) -> ConnectAccess {
        ConnectAccess { owner: self.mode & 0o200 != 0, group: self.mode & 0o020 != 0, others: self.mode & 0o002 != 0 }
    }
}

/// Who a socket's mode lets connect, per class (the write bit of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectAccess {
    /// The owning uid may connect.
    pub owner: bool,
    /// Members of the owning group may connect.
    pub group: bool,
    /// Every other user may connect.
    pub others: bool,
}

/// How an endpoint's protection compares with the policy's, by the access each grants (for a
/// socket: who may connect; a DACL is compared as a value).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessComparison {
    /// The same protection.
    Same,
    /// Written differently, granting exactly the same (a socket's 0700 where the policy says
    /// 0600: connecting needs only the write bit): information, not a finding.
    SameAccess(String),
    /// It grants some identity less than the policy (a service's own clients may be refused),
    /// and nobody more: information, not a finding.
    Narrower(String),
    /// It grants some identity more than the policy: a finding.
    Wider(String),
}

impl AccessComparison {
    /// Whether it grants nobody more than the policy.
    pub fn grants_nothing_more(&self) -> bool {
        !matches!(self, AccessComparison::Wider(_))
    }
}

fn compare_modes(want: &UnixMode, got: &UnixMode) -> AccessComparison {
    if want.mode == got.mode
        && want.uid.is_none_or(|u| got.uid == Some(u))
        && want.gid.is_none_or(|g| got.gid == Some(g))
    {
        return AccessComparison::Same;
    }
    let (w, g) = (want.connect_access(), got.connect_access());
    let name = |id: Option<u32>| id.map_or("?".to_string(), |i| i.to_string());
    let mut wider = Vec::new();
    let mut narrower = Vec::new();
    // The owner: another (non-root) uid owning a socket it may write is one more identity that
    // may connect; root may connect to any socket anyway.
    let other_owner = want.uid.is_some_and(|u| got.uid != Some(u));
    if other_owner && g.owner && got.uid != Some(0) {
        wider.push(format!("uid {} owns it and may connect (the policy names uid {})", name(got.uid), name(want.uid)));
    }
    if w.owner && (!g.owner || other_owner) {
        narrower.push(format!("uid {} (the policy's owner) may not connect as its owner", name(want.uid)));
    }
    // The group: members of a group the policy does not open to may connect.
    let other_group = want.gid.is_some_and(|x| got.gid != Some(x));
    if g.group && (!w.group || other_group) {
        wider.push(format!("the members of group {} may connect", name(got.gid)));
    } else if w.group && !g.group {
        narrower.push("the policy's group may not connect".to_string());
    }
    if g.others && !w.others {
        wider.push("every other user may connect".to_string());
    } else if w.others && !g.others {
        narrower.push("other users may not connect, as the policy would let them".to_string());
    }
    let seen = format!("mode {:04o} (owner uid {}, group {})", got.mode, name(got.uid), name(got.gid));
    let policy = format!("the policy's {}", Protection::Mode(*want));
    if !wider.is_empty() {
        AccessComparison::Wider(format!("{seen} grants more than {policy}: {}", wider.join("; ")))
    } else if !narrower.is_empty() {
        AccessComparison::Narrower(format!("{seen} grants less than {policy} and nobody more: {}", narrower.join("; ")))
    } else {
        AccessComparison::SameAccess(format!(
            "{seen} differs from {policy} only in bits a connect does not use (it needs the write bit alone): the same identities may connect"
        ))
    }
}

impl Protection {
    /// A Unix mode with its owner.
    pub fn unix(mode: u32, uid: u32) -> Protection {
        Protection::Mode(UnixMode { mode, uid: Some(uid), gid: None })
    }

    /// Parses SDDL (its `D:` section: `D:P(A;;GA;;;SY)`, or `D:NO_ACCESS_CONTROL` for a NULL
    /// DACL) or a Unix mode (`mode=0600 uid=61000 [gid=N]`). The error names the part at fault.
    pub fn parse(text: &str) -> Result<Protection> {
        let text = text.trim();
        if text.starts_with("mode=") || text.starts_with("uid=") {
            return parse_unix(text).map(Protection::Mode);
        }
        if text == "abstract" {
            return Ok(Protection::Abstract);
        }
        if text.starts_with("O:") || text.starts_with("G:") || text.starts_with("D:") || text.starts_with("S:") {
            let Some(dacl) = crate::sddl::section(text, 'D') else {
                return Err(invalid(format!("{text:?} has no D: (DACL) section")));
            };
            return parse_dacl(dacl.trim());
        }
        Err(invalid(format!("{text:?} is neither SDDL (\"D:P(A;;GA;;;SY)...\") nor a Unix mode (\"mode=0600 uid=N\")")))
    }

    /// Whether an endpoint that carries `seen` meets this (the policy's) protection: the same
    /// DACL, or a socket mode and owner that let nobody connect whom the policy's would not
    /// (see [`compare`](Protection::compare)).
    pub fn is_met_by(&self, seen: &Protection) -> bool {
        self.compare(seen).grants_nothing_more()
    }

    /// How `seen` compares with this (the policy's) protection: socket modes by who each lets
    /// connect (the write bit of owner, group and others, and who the owner and group are);
    /// DACLs, and protections of different kinds, as values.
    pub fn compare(&self, seen: &Protection) -> AccessComparison {
        match (self, seen) {
            (Protection::Mode(want), Protection::Mode(got)) => compare_modes(want, got),
            (want, got) if want == got => AccessComparison::Same,
            (want, got) => AccessComparison::Wider(format!("{got} is not the policy's {want}")),
        }
    }
}

impl std::str::FromStr for Protection {
    type Err = Error;

    fn from_str(text: &str) -> Result<Protection> {
        Protection::parse(text)
    }
}

fn invalid(why: String) -> Error {
    Error::InvalidInput { what: "protection", why }
}

fn parse_unix(text: &str) -> Result<UnixMode> {
    let mut out = UnixMode { mode: 0, uid: None, gid: None };
    let mut mode = None;
    for part in text.split_whitespace() {
        let number = |v: &str, radix: u32, what: &str| {
            u32::from_str_radix(v, radix).map_err(|_| invalid(format!("{part:?}: {v:?} is not {what}")))
        };
        match part.split_once('=') {
            Some(("mode", m)) => {
                let m = number(m, 8, "an octal mode")?;
                if m > 0o7777 {
                    return Err(invalid(format!("{part:?}: a mode has at most 4 octal digits")));
                }
                mode = Some(m);
            }
            Some(("uid", u)) => out.uid = Some(number(u, 10, "a numeric uid")?),
            Some(("gid", g)) => out.gid = Some(number(g, 10, "a numeric gid")?),
            _ => return Err(invalid(format!("{part:?}: expected mode=OCTAL, uid=N or gid=N"))),
        }
    }
    match (mode, out.uid) {
        (Some(m), Some(_)) => Ok(UnixMode { mode: m, ..out }),
        _ => Err(invalid(format!("{text:?}: a Unix protection names both mode=OCTAL and uid=N"))),
    }
}

fn parse_dacl(text: &str) -> Result<Protection> {
    if text == "NO_ACCESS_CONTROL" {
        return Ok(Protection::NullDacl);
    }
    let (flags, mut rest) = text.split_at(text.find('(').unwrap_or(text.len()));
    let mut dacl = Dacl { protected: false, auto_inherited: false, aces: Vec::new() };
    let mut f = flags;
    while !f.is_empty() {
        if let Some(r) = f.strip_prefix("P") {
            dacl.protected = true;
            f = r;
        } else if let Some(r) = f.strip_prefix("AI").or_else(|| f.strip_prefix("AR")) {
            dacl.auto_inherited |= f.starts_with("AI");
            f = r;
        } else if f == "NO_ACCESS_CONTROL" {
            return Ok(Protection::NullDacl);
        } else {
            return Err(invalid(format!("DACL flags {flags:?}: unknown flag at {f:?}")));
        }
    }
    while !rest.is_empty() {
        let Some(body) = rest.strip_prefix('(') else {
            return Err(invalid(format!("expected an ACE \"(...)\" at {rest:?}")));
        };
        let Some(end) = body.find(')') else {
            return Err(invalid(format!("ACE {rest:?} is not closed")));
        };
        dacl.aces.push(parse_ace(&body[..end])?);
        rest = &body[end + 1..];
    }
    Ok(Protection::Dacl(dacl))
}

fn parse_ace(text: &str) -> Result<Ace> {
    let fields: Vec<&str> = text.split(';').collect();
    if fields.len() < 6 {
        return Err(invalid(format!("ACE ({text}): expected type;flags;rights;object;inherited object;sid")));
    }
    let kind = match fields[0] {
        "A" => AceKind::Allow,
        "D" => AceKind::Deny,
        "" => return Err(invalid(format!("ACE ({text}) has no type"))),
        other => AceKind::Other(other.to_string()),
    };
    let flags = tokens(fields[1], ACE_FLAGS, "ACE flag", text)?;
    let mask = map_generic(rights(fields[2], text)?);
    let sid = sid(fields[5], text)?;
    Ok(Ace { kind, flags, mask, sid })
}

/// Splits a run of two-letter tokens and ORs their values.
fn tokens<T: Copy + std::ops::BitOr<Output = T> + Default>(
    s: &str,
    table: &[(&str, T)],
    what: &str,
    ace: &str,
) -> Result<T> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return Err(invalid(format!("ACE ({ace}): {what}s {s:?} are not two-letter tokens")));
    }
    let mut out = T::default();
    for i in (0..s.len()).step_by(2) {
        let t = &s[i..i + 2];
        let v = table.iter().find(|(k, _)| *k == t).map(|(_, v)| *v);
        out = out | v.ok_or_else(|| invalid(format!("ACE ({ace}): unknown {what} {t:?}")))?;
    }
    Ok(out)
}

fn rights(s: &str, ace: &str) -> Result<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).map_err(|_| invalid(format!("ACE ({ace}): rights {s:?} are not hex")));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| invalid(format!("ACE ({ace}): rights {s:?} are too large")));
    }
    tokens(s, RIGHTS, "right", ace)
}

/// Generic rights as a pipe (a file object) maps them.
fn map_generic(mask: u32) -> u32 {
    let mut out = mask & !(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL);
    for (bit, mapped) in [
        (GENERIC_READ, FILE_GENERIC_READ),
        (GENERIC_WRITE, FILE_GENERIC_WRITE),
        (GENERIC_EXECUTE, FILE_GENERIC_EXECUTE),
        (GENERIC_ALL, FILE_ALL_ACCESS),
    ] {
        if mask & bit != 0 {
            out |= mapped;
        }
    }
    out
}

fn sid(s: &str, ace: &str) -> Result<String> {
    if let Some((_, full)) = SIDS.iter().find(|(alias, _)| *alias == s) {
        return Ok((*full).to_string());
    }
    let valid_sid = s.strip_prefix("S-").is_some_and(|r| {
        let parts: Vec<&str> = r.split('-').collect();
        parts.len() >= 2 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    let domain_alias = s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
    if valid_sid || domain_alias {
        Ok(s.to_string())
    } else {
        Err(invalid(format!("ACE ({ace}): {s:?} is not a SID (S-1-...) or an SDDL alias")))
    }
}

impl fmt::Display for Protection {
    /// SDDL with rights as file-right tokens or hex and SIDs as aliases where one exists
    /// (`D:P(A;;FA;;;SY)`); `mode=0600 uid=N [gid=N]`; `abstract`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protection::NullDacl => f.write_str("D:NO_ACCESS_CONTROL"),
            Protection::Abstract => f.write_str("abstract"),
            Protection::Mode(m) => {
                write!(f, "mode={:04o}", m.mode)?;
                if let Some(u) = m.uid {
                    write!(f, " uid={u}")?;
                }
                if let Some(g) = m.gid {
                    write!(f, " gid={g}")?;
                }
                Ok(())
            }
            Protection::Dacl(d) => {
                f.write_str("D:")?;
                if d.protected {
                    f.write_str("P")?;
                }
                if d.auto_inherited {
                    f.write_str("AI")?;
                }
                for ace in &d.aces {
                    let kind = match &ace.kind {
                        AceKind::Allow => "A",
                        AceKind::Deny => "D",
                        AceKind::Other(t) => t,
                    };
                    let flags: String = ACE_FLAGS.iter().filter(|(_, b)| ace.flags & b != 0).map(|(t, _)| *t).collect();
                    let rights = match RIGHTS.iter().find(|(t, m)| *m == ace.mask && t.starts_with('F')) {
                        Some((t, _)) => (*t).to_string(),
                        None => format!("0x{:x}", ace.mask),
                    };
                    let sid = SIDS.iter().find(|(_, s)| *s == ace.sid).map_or(ace.sid.as_str(), |(a, _)| a);
                    write!(f, "({kind};{flags};{rights};;;{sid})")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn p(s: &str) -> Protection {
        Protection::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[rstest]
    #[case("D:P(A;;GA;;;SY)(A;;GA;;;OW)", "D:P(A;;FA;;;S-1-5-18)(A;;FA;;;S-1-3-4)")]
    #[case("D:(A;;GRGW;;;WD)", "D:(A;;0x12019f;;;S-1-1-0)")]
    #[case("O:BAG:SYD:P(A;;FA;;;SY)", "D:P(A;;0x1f01ff;;;SY)")]
    #[case("D:NO_ACCESS_CONTROL", "D:NO_ACCESS_CONTROL")]
    #[case("mode=600 uid=61000", "mode=0600 uid=61000")]
    fn the_same_protection_written_two_ways_is_one_value(#[case] a: &str, #[case] b: &str) {
        assert_eq!(p(a), p(b));
        assert!(p(a).is_met_by(&p(b)));
    }

    #[rstest]
    #[case("D:P(A;;GA;;;SY)", "D:(A;;GA;;;SY)")]
    #[case("D:P(A;;GA;;;SY)(A;;GA;;;OW)", "D:P(A;;GA;;;OW)(A;;GA;;;SY)")]
    #[case("D:P(A;;GA;;;SY)", "D:P(A;;GA;;;SY)(A;;GR;;;WD)")]
    #[case("D:P(A;;GA;;;SY)", "D:NO_ACCESS_CONTROL")]
    #[case("mode=0600 uid=61000", "mode=0666 uid=61000")]
    #[case("mode=0600 uid=61000", "mode=0602 uid=61000")]
    #[case("mode=0600 uid=61000", "mode=0620 uid=61000 gid=100")]
    #[case("mode=0600 uid=61000", "mode=0600 uid=61002")]
    #[case("mode=0660 uid=61000 gid=5", "mode=0660 uid=61000 gid=6")]
    fn a_protection_that_lets_more_identities_connect_does_not_meet_the_policy(
        #[case] policy: &str,
        #[case] seen: &str,
    ) {
        assert!(!p(policy).is_met_by(&p(seen)), "{policy} vs {seen}");
        assert!(matches!(p(policy).compare(&p(seen)), AccessComparison::Wider(_)), "{policy} vs {seen}");
    }

    /// `connect(2)` needs only the write bit: a mode that differs in other bits grants the same.
    #[rstest]
    #[case("mode=0600 uid=61000", "mode=0700 uid=61000", "same")]
    #[case("mode=0600 uid=61000", "mode=0644 uid=61000", "same")]
    #[case("mode=0660 uid=61000 gid=5", "mode=0670 uid=61000 gid=5", "same")]
    #[case("mode=0600 uid=61000 gid=5", "mode=0600 uid=61000 gid=6", "same")]
    #[case("mode=0660 uid=61000", "mode=0600 uid=61000", "narrower")]
    #[case("mode=0600 uid=61000", "mode=0600 uid=0", "narrower")]
    #[case("mode=0600 uid=61000", "mode=0400 uid=61000", "narrower")]
    fn modes_are_compared_by_who_may_connect(#[case] policy: &str, #[case] seen: &str, #[case] want: &str) {
        let got = p(policy).compare(&p(seen));
        let kind = match &got {
            AccessComparison::Same => "exact",
            AccessComparison::SameAccess(_) => "same",
            AccessComparison::Narrower(_) => "narrower",
            AccessComparison::Wider(_) => "wider",
        };
        assert_eq!(kind, want, "{policy} vs {seen}: {got:?}");
        assert!(p(policy).is_met_by(&p(seen)), "{policy} vs {seen}");
    }

    #[test]
    fn a_dacl_is_compared_as_a_value() {
        assert!(matches!(p("D:P(A;;GA;;;SY)").compare(&p("D:(A;;GA;;;SY)")), AccessComparison::Wider(_)));
        assert_eq!(p("D:P(A;;GA;;;SY)").compare(&p("D:P(A;;FA;;;SY)")), AccessComparison::Same);
    }

    #[test]
    fn a_policy_without_a_group_is_met_whatever_the_group() {
        assert!(p("mode=0600 uid=61000").is_met_by(&p("mode=0600 uid=61000 gid=61000")));
    }

    #[rstest]
    #[case("D:P(A;;GA;;;SY)(A;;FA;;;OW)")]
    #[case("D:PAI(D;OICI;0x4;;;WD)(A;ID;FR;;;S-1-5-21-1-2-3-1001)")]
    #[case("mode=0600 uid=61000 gid=61000")]
    #[case("abstract")]
    fn display_parses_back_to_the_same_value(#[case] s: &str) {
        assert_eq!(p(&p(s).to_string()), p(s));
    }

    #[rstest]
    #[case("0600", "neither SDDL")]
    #[case("mode=09 uid=1", "\"09\" is not an octal mode")]
    #[case("mode=0600 uid=x", "\"x\" is not a numeric uid")]
    #[case("mode=0600", "names both")]
    #[case("mode=0600 uid=1 color=red", "expected mode=OCTAL")]
    #[case("D:P(A;;GA;;;SY", "not closed")]
    #[case("D:P(A;;ZZ;;;SY)", "unknown right \"ZZ\"")]
    #[case("D:P(A;XX;GA;;;SY)", "unknown ACE flag \"XX\"")]
    #[case("D:P(A;;GA;;;nobody)", "not a SID")]
    #[case("D:P(A;;GA)", "expected type;flags")]
    #[case("D:Q(A;;GA;;;SY)", "unknown flag")]
    #[case("O:SY", "no D: (DACL) section")]
    fn bad_protections_are_refused_naming_the_part(#[case] s: &str, #[case] why: &str) {
        let err = Protection::parse(s).expect_err(s).to_string();
        assert!(err.contains(why), "{s}: {err}");
    }

    #[test]
    fn write_rights_include_the_create_instance_right() {
        let Protection::Dacl(d) = p("D:(A;;GW;;;WD)(A;;FW;;;BU)(A;;FR;;;AU)") else { panic!() };
        let create: Vec<bool> = d.aces.iter().map(|a| a.mask & FILE_CREATE_PIPE_INSTANCE != 0).collect();
        assert_eq!(create, [true, true, false]);
    }
}
