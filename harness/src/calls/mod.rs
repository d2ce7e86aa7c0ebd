//! What a program asked of the OS: the Win32 calls that decide a named-pipe server's (or
//! client's) security, as typed values, read from a trace of the program's run.
//!
//! Under Wine the effect of several rules cannot be seen (the first-instance flag, remote
//! rejection, SQOS levels and sessions are accepted and ignored: see `docs/platforms.md`), but
//! the calls a program makes, with their arguments, can. Each call here is a fact about the
//! program; what it means comes from Microsoft's documented rules, applied in
//! `engine::from_calls`.
//!
//! The trace is Wine's `relay` debug channel limited to the calls below ([`RELAY_INCLUDE`]),
//! with `+pid` so each line names its process; [`CallTrace::parse_relay`] turns its lines into
//! [`TracedCall`]s. Only the outermost traced call of a thread counts: `kernel32.CreateFileW`
//! forwarding to `kernelbase.CreateFileW`, or `CreateNamedPipeW` calling
//! `NtCreateNamedPipeFile`, is one call of the program, not two.
//!
//! Nothing here is platform code: it parses text and judges typed values, so it is unit-tested
//! natively on recorded traces.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The exports the trace covers, as Wine's `RelayInclude` list (`HKCU\Software\Wine\Debug`)
/// names them: each API through `kernel32`/`advapi32` (what programs import) and `kernelbase`
/// (what newer import libraries and API sets resolve to), and the NT call under them.
pub const RELAY_INCLUDE: &[&str] = &[
    "kernel32.CreateNamedPipeW",
    "kernel32.CreateNamedPipeA",
    "kernelbase.CreateNamedPipeW",
    "kernelbase.CreateNamedPipeA",
    "ntdll.NtCreateNamedPipeFile",
    "kernel32.ConnectNamedPipe",
    "kernelbase.ConnectNamedPipe",
    "advapi32.ImpersonateNamedPipeClient",
    "kernelbase.ImpersonateNamedPipeClient",
    "advapi32.RevertToSelf",
    "kernelbase.RevertToSelf",
    "kernel32.CreateFileW",
    "kernel32.CreateFileA",
    "kernelbase.CreateFileW",
    "kernelbase.CreateFileA",
    "kernel32.CreateFileMappingW",
    "kernel32.CreateFileMappingA",
    "kernelbase.CreateFileMappingW",
    "kernelbase.CreateFileMappingA",
    "kernel32.OpenFileMappingW",
    "kernel32.OpenFileMappingA",
    "kernelbase.OpenFileMappingW",
    "kernelbase.OpenFileMappingA",
];

/// `dwOpenMode` of `CreateNamedPipe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenMode(pub u32);

impl OpenMode {
    /// `FILE_FLAG_FIRST_PIPE_INSTANCE`: the create fails if the name exists.
    pub const FIRST_PIPE_INSTANCE: u32 = 0x0008_0000;
    /// Whether the first-instance flag is set.
    pub fn first_pipe_instance(self) -> bool {
        self.0 & Self::FIRST_PIPE_INSTANCE != 0
    }
}

/// `dwPipeMode` of `CreateNamedPipe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeMode(pub u32);

impl PipeMode {
    /// `PIPE_REJECT_REMOTE_CLIENTS`: this instance refuses SMB clients.
    pub const REJECT_REMOTE_CLIENTS: u32 = 0x0000_0008;
    /// Whether this instance rejects remote clients.
    pub fn rejects_remote_clients(self) -> bool {
        self.0 & Self::REJECT_REMOTE_CLIENTS != 0
    }
}

/// The impersonation level a client's `CreateFile` offers the server (`SECURITY_*` in
/// `dwFlagsAndAttributes` with `SECURITY_SQOS_PRESENT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqosLevel {
    /// `SECURITY_ANONYMOUS`.
    Anonymous,
    /// `SECURITY_IDENTIFICATION`.
    Identification,
    /// `SECURITY_IMPERSONATION`.
    Impersonation,
    /// `SECURITY_DELEGATION`.
    Delegation,
}

impl From<crate::identity::ImpersonationLevel> for SqosLevel {
    fn from(l: crate::identity::ImpersonationLevel) -> Self {
        use crate::identity::ImpersonationLevel as L;
        match l {
            L::Anonymous => SqosLevel::Anonymous,
            L::Identification => SqosLevel::Identification,
            L::Impersonation => SqosLevel::Impersonation,
            L::Delegation => SqosLevel::Delegation,
        }
    }
}

/// `dwFlagsAndAttributes` of `CreateFile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFlags(pub u32);

impl FileFlags {
    /// `SECURITY_SQOS_PRESENT`.
    pub const SQOS_PRESENT: u32 = 0x0010_0000;
    /// The `SECURITY_*` level bits (`SECURITY_DELEGATION` is `3 << 16`).
    const LEVEL_MASK: u32 = 0x0003_0000;

    /// The level the client offers: without `SECURITY_SQOS_PRESENT`, the documented default,
    /// full impersonation (*CreateFileA*, `dwFlagsAndAttributes`).
    pub fn offered_level(self) -> SqosLevel {
        if self.0 & Self::SQOS_PRESENT == 0 {
            return SqosLevel::Impersonation;
        }
        match (self.0 & Self::LEVEL_MASK) >> 16 {
            0 => SqosLevel::Anonymous,
            1 => SqosLevel::Identification,
            2 => SqosLevel::Impersonation,
            _ => SqosLevel::Delegation,
        }
    }
    /// Whether `SECURITY_SQOS_PRESENT` is set.
    pub fn sqos_present(self) -> bool {
        self.0 & Self::SQOS_PRESENT != 0
    }
}

/// Where a named kernel object (a file mapping) lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    /// `Global\NAME`: the session-0 namespace every session can open.
    Global,
    /// `Local\NAME`, or a name without a prefix: the creator's session.
    Local,
}

impl Namespace {
    /// The namespace of an object name (*Kernel Object Namespaces*: no prefix means `Local\`).
    pub fn of(name: &str) -> Namespace {
        if name.len() >= 7 && name[..7].eq_ignore_ascii_case("Global\\") {
            Namespace::Global
        } else {
            Namespace::Local
        }
    }
}

/// Which width of a Win32 API was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Width {
    /// The ANSI form (`...A`).
    A,
    /// The UTF-16 form (`...W`).
    W,
}

/// One call of the program, with the arguments that decide its security.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// `CreateNamedPipeA/W`: one server instance.
    CreateNamedPipe {
        /// A or W.
        width: Width,
        /// The pipe name as passed (`\\.\pipe\NAME`).
        name: String,
        /// `dwOpenMode`.
        open_mode: OpenMode,
        /// `dwPipeMode`.
        pipe_mode: PipeMode,
        /// `nMaxInstances`.
        max_instances: u32,
        /// Whether `lpSecurityAttributes` was given (the descriptor itself is not in the trace).
        security_attributes: bool,
    },
    /// `NtCreateNamedPipeFile` called by the program itself: the name is behind a pointer the
    /// trace does not follow.
    NtCreateNamedPipeFile {
        /// `CreateDisposition` (`FILE_CREATE` is 2: fails on an existing name).
        disposition: u32,
    },
    /// `ConnectNamedPipe`.
    ConnectNamedPipe,
    /// `ImpersonateNamedPipeClient`.
    ImpersonateNamedPipeClient,
    /// `RevertToSelf`.
    RevertToSelf,
    /// `CreateFileA/W` on a pipe name: a client's open.
    OpenPipe {
        /// A or W.
        width: Width,
        /// The name as passed.
        name: String,
        /// `dwFlagsAndAttributes`, with the SQOS bits.
        flags: FileFlags,
    },
    /// `CreateFileMappingA/W` or `OpenFileMappingA/W` with a name.
    FileMapping {
        /// True for `CreateFileMapping`, false for `OpenFileMapping`.
        create: bool,
        /// The object name as passed.
        name: String,
        /// Its namespace.
        namespace: Namespace,
    },
}

impl Call {
    /// The API's name, for evidence.
    pub fn api(&self) -> String {
        let w = |w: &Width| if *w == Width::A { "A" } else { "W" };
        match self {
            Call::CreateNamedPipe { width, .. } => format!("CreateNamedPipe{}", w(width)),
            Call::NtCreateNamedPipeFile { .. } => "NtCreateNamedPipeFile".into(),
            Call::ConnectNamedPipe => "ConnectNamedPipe".into(),
            Call::ImpersonateNamedPipeClient => "ImpersonateNamedPipeClient".into(),
            Call::RevertToSelf => "RevertToSelf".into(),
            Call::OpenPipe { width, .. } => format!("CreateFile{}", w(width)),
            Call::FileMapping { create: true, .. } => "CreateFileMapping".into(),
            Call::FileMapping { create: false, .. } => "OpenFileMapping".into(),
        }
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::CreateNamedPipe { name, open_mode, pipe_mode, max_instances, security_attributes, .. } => write!(
                f,
                "{}({name:?}, open mode {:#x}{}, pipe mode {:#x}{}, {max_instances} instances, {})",
                self.api(),
                open_mode.0,
                if open_mode.first_pipe_instance() { " FILE_FLAG_FIRST_PIPE_INSTANCE" } else { "" },
                pipe_mode.0,
                if pipe_mode.rejects_remote_clients() { " PIPE_REJECT_REMOTE_CLIENTS" } else { "" },
                if *security_attributes { "security attributes given" } else { "no security attributes" }
            ),
            Call::NtCreateNamedPipeFile { disposition } => {
                write!(f, "NtCreateNamedPipeFile(disposition {disposition})")
            }
            Call::OpenPipe { name, flags, .. } => write!(
                f,
                "{}({name:?}, flags {:#x}: {})",
                self.api(),
                flags.0,
                if flags.sqos_present() {
                    format!("SECURITY_SQOS_PRESENT, {:?}", flags.offered_level())
                } else {
                    "no SECURITY_SQOS_PRESENT".into()
                }
            ),
            Call::FileMapping { name, namespace, .. } => write!(f, "{}({name:?}: {namespace:?})", self.api()),
            _ => write!(f, "{}()", self.api()),
        }
    }
}

/// A call with where it was made and what it returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedCall {
    /// The calling process (Windows pid).
    pub pid: u32,
    /// The calling thread.
    pub tid: u32,
    /// The call.
    pub call: Call,
    /// The raw return value, when the call returned within the trace.
    pub returned: Option<u64>,
}

/// A traced export a thread entered and has not returned from: its name (lower-cased), and the
/// index of the recorded call it is (`None`: nested in another traced call, or not relevant).
type Entered = (String, Option<usize>);

/// The calls of one traced run, in the order they were made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTrace {
    /// The calls.
    pub calls: Vec<TracedCall>,
}

/// Whether a name is a pipe path (`\\.\pipe\...`, `\\?\pipe\...`, `\\host\pipe\...`).
pub fn is_pipe_path(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with(r"\\") && lower[2..].split_once('\\').is_some_and(|(_, rest)| rest.starts_with(r"pipe\"))
}

/// The pipe's name without its `\\.\pipe\` prefix, lower-cased (pipe names are
/// case-insensitive), for matching a call against the endpoint under test.
pub fn pipe_key(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.find(r"\pipe\") {
        Some(i) if lower.starts_with(r"\\") => lower[i + 6..].to_string(),
        _ => lower,
    }
}

/// One argument of a relay line: a number, and the string Wine printed beside a pointer.
struct Arg {
    value: u64,
    text: Option<String>,
}

impl Arg {
    /// The low 32 bits: Wine prints a register, whose upper half is junk for a 32-bit argument.
    fn u32(&self) -> u32 {
        self.value as u32
    }
}

/// Undoes Wine's `debugstr` escaping (`\\`, `\"`, `\n`, `\xNN`, `\NNN`).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('x') => {
                let hex: String = std::iter::from_fn(|| it.next_if(|c| c.is_ascii_hexdigit())).collect();
                out.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
            }
            Some(d @ '0'..='7') => {
                let mut oct = d.to_string();
                oct.extend(std::iter::from_fn(|| it.next_if(|c| ('0'..='7').contains(c))).take(2));
                out.extend(u32::from_str_radix(&oct, 8).ok().and_then(char::from_u32));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Splits `a,b L"x,y",c` at the commas outside quotes.
fn parse_args(s: &str) -> Vec<Arg> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if quoted {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                cur.push(c);
            }
            ',' => args.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() || !args.is_empty() {
        args.push(cur);
    }
    args.iter()
        .map(|a| {
            let a = a.trim();
            let (num, rest) = a.split_once(' ').unwrap_or((a, ""));
            let rest = rest.trim();
            let text = rest
                .strip_prefix('L')
                .unwrap_or(rest)
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .map(unescape);
            Arg { value: u64::from_str_radix(num, 16).unwrap_or(0), text }
        })
        .collect()
}

/// `pppp:tttt:` at the start of a `+pid` line.
fn ids(line: &str) -> Option<(u32, u32, &str)> {
    let (pid, rest) = line.split_once(':')?;
    let (tid, rest) = rest.split_once(':')?;
    Some((u32::from_str_radix(pid, 16).ok()?, u32::from_str_radix(tid, 16).ok()?, rest))
}

/// A relayed export: `module.Function`, for one the trace covers.
fn covered(export: &str) -> Option<&'static str> {
    let (module, func) = export.split_once('.')?;
    RELAY_INCLUDE
        .iter()
        .copied()
        .find(|inc| inc.split_once('.').is_some_and(|(m, f)| m.eq_ignore_ascii_case(module) && f == func))
}

/// The typed call for a relayed export and its arguments; `None` for a call that does not
/// matter (a `CreateFile` on a file that is not a pipe, an unnamed mapping).
fn typed(func: &str, args: &[Arg]) -> Option<Call> {
    let width = if func.ends_with('A') { Width::A } else { Width::W };
    let text = |i: usize| args.get(i).and_then(|a| a.text.clone());
    let num = |i: usize| args.get(i).map_or(0, Arg::u32);
    let base = func.trim_end_matches(['A', 'W']);
    Some(match base {
        "CreateNamedPipe" => Call::CreateNamedPipe {
            width,
            name: text(0)?,
            open_mode: OpenMode(num(1)),
            pipe_mode: PipeMode(num(2)),
            max_instances: num(3),
            security_attributes: args.get(7).is_some_and(|a| a.value != 0),
        },
        "NtCreateNamedPipeFile" => Call::NtCreateNamedPipeFile { disposition: num(5) },
        "ConnectNamedPipe" => Call::ConnectNamedPipe,
        "ImpersonateNamedPipeClient" => Call::ImpersonateNamedPipeClient,
        "RevertToSelf" => Call::RevertToSelf,
        "CreateFile" => {
            let name = text(0)?;
            if !is_pipe_path(&name) {
                return None;
            }
            Call::OpenPipe { width, name, flags: FileFlags(num(5)) }
        }
        "CreateFileMapping" => {
            let name = text(5)?;
            Call::FileMapping { create: true, namespace: Namespace::of(&name), name }
        }
        "OpenFileMapping" => {
            let name = text(2)?;
            Call::FileMapping { create: false, namespace: Namespace::of(&name), name }
        }
        _ => return None,
    })
}

impl CallTrace {
    /// The calls in Wine `+pid,+relay` output, keeping only those of `pid` (all processes when
    /// `None`) and, per thread, only the outermost traced call.
    pub fn parse_relay(text: &str, pid: Option<u32>) -> CallTrace {
        let mut trace = CallTrace::default();
        // Per thread: the traced calls entered and not yet returned, with the index of the
        // recorded call each one is (None: nested or not relevant).
        let mut open: HashMap<(u32, u32), Vec<Entered>> = HashMap::new();
        for line in text.lines() {
            let Some((p, t, rest)) = ids(line) else { continue };
            if pid.is_some_and(|want| want != p) {
                continue;
            }
            if let Some(call) = rest.strip_prefix("Call ") {
                let Some((export, args)) = call.split_once('(') else { continue };
                let Some(inc) = covered(export) else { continue };
                let stack = open.entry((p, t)).or_default();
                let func = inc.split_once('.').map_or(inc, |(_, f)| f);
                let args = args.rsplit_once(") ret=").map_or(args, |(a, _)| a);
                let index = if stack.is_empty() {
                    typed(func, &parse_args(args)).map(|call| {
                        trace.calls.push(TracedCall { pid: p, tid: t, call, returned: None });
                        trace.calls.len() - 1
                    })
                } else {
                    None
                };
                stack.push((export.to_ascii_lowercase(), index));
            } else if let Some(ret) = rest.strip_prefix("Ret  ") {
                let Some((export, after)) = ret.split_once("()") else { continue };
                if covered(export).is_none() {
                    continue;
                }
                let stack = open.entry((p, t)).or_default();
                let key = export.to_ascii_lowercase();
                if let Some(pos) = stack.iter().rposition(|(e, _)| *e == key) {
                    let (_, index) = stack.remove(pos);
                    stack.truncate(pos);
                    let value = after.split("retval=").nth(1).and_then(|v| v.split_whitespace().next());
                    if let (Some(i), Some(v)) = (index, value) {
                        trace.calls[i].returned = u64::from_str_radix(v, 16).ok();
                    }
                }
            }
        }
        trace
    }

    /// The processes that made a traced call.
    pub fn pids(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self.calls.iter().map(|c| c.pid).collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// node.exe 16.20.2 (libuv) under Wine 8.0 with `WINEDEBUG=+pid,+relay` and
    /// [`RELAY_INCLUDE`]: `net.createServer().listen('\\.\pipe\ph-node-test')`, then a client.
    pub(crate) const NODE: &str = r#"0020:0024:Call KERNEL32.CreateNamedPipeW(00b227f0 L"\\\\.\\pipe\\ph-node-test",400c0003,00000000,000000ff,100010000,00010000,00000000,00000000) ret=1402e0160
0020:0024:Call kernelbase.CreateNamedPipeW(00b227f0 L"\\\\.\\pipe\\ph-node-test",400c0003,00000000,000000ff,100010000,00010000,00000000,00000000) ret=1700484ff
0020:0024:Call ntdll.NtCreateNamedPipeFile(0081e2e0,c01c0000,0081e310,0081e300,00000003,100000005,00000000,100000000,100000000,100000000,ffffffff,100010000,00010000,0081e2e8) ret=7b0782ea
0020:0024:Ret  ntdll.NtCreateNamedPipeFile() retval=00000000 ret=7b0782ea
0020:0024:Ret  kernelbase.CreateNamedPipeW() retval=00000094 ret=1700484ff
0020:0024:Ret  KERNEL32.CreateNamedPipeW() retval=00000094 ret=1402e0160
0020:0024:Call KERNEL32.CreateNamedPipeW(00b227f0 L"\\\\.\\pipe\\ph-node-test",40040003,00000000,000000ff,00010000,100010000,00000000,00000000) ret=1402e0160
0020:0024:Call kernelbase.CreateNamedPipeW(00b227f0 L"\\\\.\\pipe\\ph-node-test",40040003,00000000,000000ff,00010000,100010000,00000000,00000000) ret=1700484ff
0020:0024:Ret  kernelbase.CreateNamedPipeW() retval=00000098 ret=1700484ff
0020:0024:Ret  KERNEL32.CreateNamedPipeW() retval=00000098 ret=1402e0160
0020:0024:Call KERNEL32.CreateFileW(14164eff0 L"CONOUT$",c0000000,00000002,00000000,100000003,100000000,00000000) ret=1402d3c48
0020:0024:Ret  KERNEL32.CreateFileW() retval=ffffffffffffffff ret=1402d3c48
0020:0024:Call KERNEL32.CreateFileW(00bc5bb0 L"\\\\.\\pipe\\ph-node-test",c0000000,00000000,00000000,00000003,40000000,00000000) ret=1402e000a
0020:0024:Call kernelbase.CreateFileW(00bc5bb0 L"\\\\.\\pipe\\ph-node-test",c0000000,00000000,00000000,00000003,40000000,00000000) ret=1700484ff
0038:003c:Call kernelbase.CreateNamedPipeW(0021f680 L"\\\\.\\pipe\\svcctl",40000003,00000006,000000ff,000016d0,000016d0,00001388,00000000) ret=7b6265de
"#;

    #[test]
    fn nodes_trace_gives_one_call_per_program_call_with_its_flags() {
        let trace = CallTrace::parse_relay(NODE, Some(0x20));
        let calls: Vec<&Call> = trace.calls.iter().map(|c| &c.call).collect();
        assert_eq!(calls.len(), 3, "{calls:#?}");
        match calls[0] {
            Call::CreateNamedPipe { name, open_mode, pipe_mode, max_instances, security_attributes, width } => {
                assert_eq!(name, r"\\.\pipe\ph-node-test");
                assert!(open_mode.first_pipe_instance());
                assert!(!pipe_mode.rejects_remote_clients());
                assert_eq!((*max_instances, *security_attributes, *width), (255, false, Width::W));
            }
            c => panic!("{c:?}"),
        }
        assert_eq!(trace.calls[0].returned, Some(0x94));
        assert!(matches!(calls[1], Call::CreateNamedPipe { open_mode, .. } if !open_mode.first_pipe_instance()));
        match calls[2] {
            Call::OpenPipe { flags, .. } => assert_eq!(flags.offered_level(), SqosLevel::Impersonation),
            c => panic!("{c:?}"),
        }
        assert_eq!(trace.calls[2].returned, None, "the trace ended before it returned");
        assert_eq!(CallTrace::parse_relay(NODE, None).pids(), vec![0x20, 0x38]);
    }

    #[test]
    fn sqos_flags_mapping_names_and_pipe_paths_are_read_as_documented() {
        assert_eq!(FileFlags(0x0011_0000).offered_level(), SqosLevel::Identification);
        assert_eq!(FileFlags(0x0010_0000).offered_level(), SqosLevel::Anonymous);
        assert_eq!(FileFlags(0x0013_0000).offered_level(), SqosLevel::Delegation);
        assert_eq!(FileFlags(0x0001_0000).offered_level(), SqosLevel::Impersonation, "no SQOS_PRESENT");
        assert_eq!(Namespace::of(r"global\x"), Namespace::Global);
        assert_eq!(Namespace::of(r"Local\x"), Namespace::Local);
        assert_eq!(Namespace::of("x"), Namespace::Local);
        assert!(is_pipe_path(r"\\.\pipe\a") && is_pipe_path(r"\\?\PIPE\a") && is_pipe_path(r"\\host\pipe\a"));
        assert!(!is_pipe_path(r"C:\pipe\a") && !is_pipe_path("CONOUT$"));
        assert_eq!(pipe_key(r"\\.\PIPE\Ab"), "ab");
    }

    #[test]
    fn arguments_with_commas_and_escapes_in_strings_are_split_right() {
        let a = parse_args(r#"0001 L"a,b\"c\\d",00000010,1ffffffff"#);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].text.as_deref(), Some(r#"a,b"c\d"#));
        assert_eq!(a[1].u32(), 16);
        assert_eq!(a[2].u32(), 0xffff_ffff);
        let m = r#"0030:0034:Call KERNEL32.CreateFileMappingW(ffffffffffffffff,00000000,00000004,00000000,00001000,0021f000 L"Local\\ph-map") ret=140001000"#;
        let t = CallTrace::parse_relay(m, None);
        assert!(
            matches!(&t.calls[0].call, Call::FileMapping { create: true, namespace: Namespace::Local, name } if name == r"Local\ph-map")
        );
    }
}
