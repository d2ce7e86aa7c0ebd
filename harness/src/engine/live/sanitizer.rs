//! Reading a sanitizer's report (AddressSanitizer, UndefinedBehaviorSanitizer's deadly-signal
//! report, LeakSanitizer, MemorySanitizer, ThreadSanitizer) as a crash state, as ClusterFuzz
//! does: the crash type (`heap-buffer-overflow`, `SEGV`, `FPE`...) with the access (`READ`,
//! `WRITE`) and the program's top frames, and none of what differs from run to run: addresses,
//! `pc`/`bp`/`sp`, thread ids (`T123`), process ids (`==123==`), access sizes.
//!
//! A frame the runtime printed without a function (`#0 0x55d0c4 (/srv/server+0x2ddcf)`: no
//! symbolizer was found, or `symbolize=0`) is symbolised here with `llvm-symbolizer`, else
//! `addr2line`, where one is installed (once per module and offset); else it is kept as
//! `server+0x2ddcf` (the module's file name and the offset, which do not move with ASLR).
//! Frames of the C library, the loader and the sanitizer runtimes are never the program's.

use super::crash_report::{is_foreign_frame, CrashReport, ReportKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `==123==ERROR: AddressSanitizer: heap-buffer-overflow on address ...`, then the access line
/// and the first stack (`#N 0xPC in FUNC FILE:LINE:COL`, or `#N 0xPC  (MODULE+0xOFFSET)`).
pub(crate) fn report(line: &str, rest: &[&str]) -> Option<CrashReport> {
    let after = line.split("ERROR: ").nth(1)?;
    let (tool, title) = after.split_once(": ")?;
    if !tool.ends_with("Sanitizer") || tool.contains(' ') {
        return None;
    }
    let mut kind = crash_type(title);
    let mut frames = Vec::new();
    let mut location = None;
    let mut access = None;
    for l in rest.iter().take(200) {
        let t = l.trim_start();
        if t.starts_with("SUMMARY:") {
            break;
        }
        // Only the first stack (the access's), not the allocation's or the free's.
        if !frames.is_empty() && t.is_empty() {
            break;
        }
        if access.is_none() {
            access = access_of(t);
        }
        let Some(f) = frame(t) else { continue };
        if frames.is_empty() && location.is_none() {
            location = f.location.clone();
        }
        frames.push(f.name);
    }
    if let Some(a) = access {
        kind = format!("{kind} {a}");
    }
    Some(CrashReport { kind: ReportKind::Sanitizer, title: format!("{tool} {kind}"), location, frames })
}

/// The crash type of an `ERROR:` line's title: its words up to the first address, `on`, `(`
/// or `:`, with nothing that varies between runs (`SEGV on unknown address 0x0 (pc ... T16213)`
/// gives `SEGV`; `attempting double-free on 0x602... in thread T0:` gives
/// `attempting double-free`).
fn crash_type(title: &str) -> String {
    let mut words = Vec::new();
    for w in title.split_whitespace() {
        if w == "on" || w.starts_with('(') || w.starts_with("0x") || w == "in" {
            break;
        }
        let end = w.ends_with(':');
        let w = w.trim_end_matches(':');
        if !w.is_empty() && !varies(w) {
            words.push(w);
        }
        if end {
            break;
        }
    }
    words.join(" ")
}

/// A word that changes from run to run: a number, an address, a thread id (`T123`), a process
/// id (`==123==`).
fn varies(w: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(w)
        || w.starts_with("0x")
        || w.strip_prefix('T').is_some_and(digits)
        || w.trim_matches('=').chars().all(|c| c.is_ascii_digit()) && w.starts_with("==")
}

/// `READ of size 8 at 0x... thread T0` / `WRITE of size ...`, or UBSan's and ASan's deadly
/// signal: `The signal is caused by a WRITE memory access.`
fn access_of(line: &str) -> Option<&'static str> {
    let l = line.trim_start_matches(|c: char| c == '=' || c.is_ascii_digit());
    for a in ["READ", "WRITE"] {
        if l.starts_with(&format!("{a} of size")) || l.contains(&format!("caused by a {a} memory access")) {
            return Some(if a == "READ" { "READ" } else { "WRITE" });
        }
    }
    None
}

/// One frame of a stack, as the program's: a function name (or `module+0xoffset`) and the
/// source location when printed.
struct Frame {
    name: String,
    location: Option<String>,
}

/// `#3 0x55d300 in serve_client /src/server.c:120:5`, `#1 0x55 in f (/srv/server+0x1234)`, or
/// `#0 0x5649db262dcf  (/srv/server+0x2ddcf) (BuildId: ...)`; `None` for a line that is not a
/// frame and for a frame of the C library, the loader or a sanitizer runtime.
fn frame(line: &str) -> Option<Frame> {
    let f = line.strip_prefix('#')?;
    let (n, rest) = f.split_once(' ')?;
    if !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("0x").map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_hexdigit()));
    let rest = rest.trim_start();
    if let Some(after_in) = rest.strip_prefix("in ") {
        let mut words = after_in.split_whitespace();
        let func = words.next()?;
        if is_foreign_frame(func) {
            return None;
        }
        let location = words.next().filter(|w| !w.starts_with('(')).map(|w| w.replace('\\', "/"));
        return Some(Frame { name: func.to_string(), location });
    }
    let (module, offset) = module_offset(rest)?;
    if is_system_module(&module) {
        return None;
    }
    match symbolize(&module, offset) {
        Some((func, location)) if !is_foreign_frame(&func) => Some(Frame { name: func, location }),
        Some(_) => None,
        None => {
            let file = module.file_name().map_or_else(|| module.display().to_string(), |n| n.to_string_lossy().into());
            Some(Frame { name: format!("{file}+0x{offset:x}"), location: None })
        }
    }
}

/// `(/srv/server+0x2ddcf)` → the module and the offset.
fn module_offset(text: &str) -> Option<(PathBuf, u64)> {
    let inner = text.strip_prefix('(')?.split(')').next()?;
    let (module, off) = inner.rsplit_once('+')?;
    let offset = u64::from_str_radix(off.strip_prefix("0x")?, 16).ok()?;
    Some((PathBuf::from(module), offset))
}

/// The C library, the loader, the C++ and gcc runtimes and the sanitizer runtimes.
fn is_system_module(module: &Path) -> bool {
    let name = module.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    [
        "libc.so",
        "libc-",
        "ld-linux",
        "libm.so",
        "libpthread",
        "libdl",
        "libstdc++",
        "libgcc_s",
        "libclang_rt",
        "libasan",
        "libubsan",
        "libtsan",
        "liblsan",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

type Symbolised = Option<(String, Option<String>)>;
/// A module (its path and modification time) and an offset in it.
type Place = (PathBuf, Option<std::time::SystemTime>, u64);

/// The function (and source location) at `offset` in `module`, from `llvm-symbolizer` or
/// `addr2line`, whichever is installed; `None` when neither is or neither knows. Asked once
/// per module (and its modification time) and offset.
fn symbolize(module: &Path, offset: u64) -> Symbolised {
    static CACHE: Mutex<Option<HashMap<Place, Symbolised>>> = Mutex::new(None);
    let modified = std::fs::metadata(module).and_then(|m| m.modified()).ok();
    modified?;
    let key = (module.to_path_buf(), modified, offset);
    if let Some(hit) = CACHE.lock().ok().and_then(|c| c.as_ref().and_then(|c| c.get(&key).cloned())) {
        return hit;
    }
    let answer = run_symbolizer(module, offset);
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new).insert(key, answer.clone());
    }
    answer
}

fn run_symbolizer(module: &Path, offset: u64) -> Symbolised {
    let address = format!("0x{offset:x}");
    let tries: [(&str, Vec<std::ffi::OsString>); 2] = [
        ("llvm-symbolizer", vec![format!("--obj={}", module.display()).into(), address.clone().into()]),
        ("addr2line", vec!["-f".into(), "-e".into(), module.as_os_str().to_owned(), address.into()]),
    ];
    for (tool, args) in tries {
        let Ok(out) = std::process::Command::new(tool).args(&args).stdin(std::process::Stdio::null()).output() else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let func = lines.next().unwrap_or("").trim();
        if !out.status.success() || func.is_empty() || func == "??" {
            continue;
        }
        let location =
            lines.next().map(str::trim).filter(|l| !l.starts_with("??") && !l.is_empty()).map(|l| l.replace('\\', "/"));
        return Some((func.to_string(), location));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::crash_report::parse;
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(|l| format!("stderr: {l}")).collect()
    }

    /// Two runs of one bug (a clang build whose UBSan runtime caught the SIGSEGV): other
    /// addresses, pc, sp, thread and process ids; one crash state.
    #[test]
    fn addresses_thread_and_process_ids_are_not_in_the_state() {
        let run = |pid: &str, addr: &str| {
            format!(
                "UndefinedBehaviorSanitizer:DEADLYSIGNAL
=={pid}==ERROR: UndefinedBehaviorSanitizer: SEGV on unknown address 0x000000000000 (pc 0x{addr}dcf bp 0x000000000001 sp 0x7ffd6ce5b3f0 T{pid})
=={pid}==The signal is caused by a WRITE memory access.
=={pid}==Hint: address points to the zero page.
    #0 0x{addr}dcf in inner /tmp/p25/segv.c:5:56
    #1 0x{addr}df1 in outer /tmp/p25/segv.c:6:47
    #2 0x{addr}e97 in main /tmp/p25/segv.c:10:3
    #3 0x7fdaf78ab249 in __libc_start_call_main csu/../sysdeps/nptl/libc_start_call_main.h:58:16

UndefinedBehaviorSanitizer can not provide additional info.
SUMMARY: UndefinedBehaviorSanitizer: SEGV /tmp/p25/segv.c:5:56 in inner
=={pid}==ABORTING"
            )
        };
        let a = parse(&lines(&run("22935", "55d7b9b39"))).expect("report");
        let b = parse(&lines(&run("16213", "5649db262"))).expect("report");
        assert_eq!(a.state(), b.state());
        assert_eq!(a.state(), "sanitizer / UndefinedBehaviorSanitizer SEGV WRITE / inner < outer");
        assert_eq!(a.location.as_deref(), Some("/tmp/p25/segv.c:5:56"));
    }

    /// Without a symbolizer the runtime prints module+offset; the state keeps those (they do
    /// not move with ASLR), and leaves the C library's frames out.
    #[test]
    fn unsymbolised_frames_are_module_and_offset() {
        let run = |base: &str| {
            format!(
                "==22950==ERROR: UndefinedBehaviorSanitizer: FPE on unknown address 0x{base}dcf (pc 0x{base}dcf bp 0x1 sp 0x7ffed448e6d0 T22950)
    #0 0x{base}dcf  (/nonexistent/ph-test/server+0x2ddcf) (BuildId: eaf4ce1842dec649dfe9d34fd789cab68b155493)
    #1 0x{base}df1  (/nonexistent/ph-test/server+0x2ddf1) (BuildId: eaf4ce1842dec649dfe9d34fd789cab68b155493)
    #2 0x7f03b3161249  (/lib/x86_64-linux-gnu/libc.so.6+0x27249) (BuildId: 93ac61ec5a8eb1396f9fbd350e3169a558528a40)

SUMMARY: UndefinedBehaviorSanitizer: FPE (/nonexistent/ph-test/server+0x2ddcf)"
            )
        };
        let a = parse(&lines(&run("5649db262"))).expect("report");
        let b = parse(&lines(&run("55f1aa000"))).expect("report");
        assert_eq!(a.frames, ["server+0x2ddcf", "server+0x2ddf1"]);
        assert_eq!(a.state(), b.state());
        assert_eq!(a.state(), "sanitizer / UndefinedBehaviorSanitizer FPE / server+0x2ddcf < server+0x2ddf1");
        assert_eq!(symbolize(Path::new("/nonexistent/ph-test/server"), 0x2ddcf), None);
    }

    #[test]
    fn crash_types_keep_words_and_drop_values() {
        assert_eq!(
            crash_type("heap-buffer-overflow on address 0x602000000018 at pc 0x55 bp 0x7ff sp 0x7ff"),
            "heap-buffer-overflow"
        );
        assert_eq!(crash_type("attempting double-free on 0x602000000010 in thread T0:"), "attempting double-free");
        assert_eq!(crash_type("stack-overflow on address 0x7ffd (pc 0x1 bp 0x2 sp 0x3 T0)"), "stack-overflow");
        assert_eq!(
            crash_type("requested allocation size 0xffffffffffffffff (0x800 after adjustments for alignment, red zones etc.) exceeds maximum supported size of 0x10000000000 (thread T0)"),
            "requested allocation size"
        );
        assert_eq!(crash_type("detected memory leaks"), "detected memory leaks");
    }
}
