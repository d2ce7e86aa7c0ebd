//! What Linux's `/proc` tells about processes and sockets: resident memory, open descriptors,
//! children, and the listening Unix sockets of the machine with the processes that hold them.
//! Used by the live fuzzer's memory watch, `pipe-harness list`, the leak counts of the
//! fault-injection tests and the soak benchmark.

use crate::error::{Error, OsCode, Result};
use std::collections::BTreeMap;
use std::path::Path;

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Os {
        call: "read",
        code: OsCode::Errno(e.raw_os_error().unwrap_or(0)),
        context: format!("reading {}", path.display()),
    })
}

/// The resident memory of process `pid` (`VmRSS`), in KiB.
pub fn resident_kib(pid: u32) -> Result<u64> {
    let path = Path::new("/proc").join(pid.to_string()).join("status");
    let status = read(&path)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| Error::Peer(format!("{}: no VmRSS line (a zombie?)", path.display())))
}

/// Whether every thread of process `pid` is asleep (`S` in `/proc/PID/task/TID/stat`: blocked
/// in a call such as `accept`, `read` or `poll`), stopped, or gone: none is running or waiting
/// to run. `true` when the process no longer exists.
pub fn all_threads_asleep(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else { return true };
        // The state follows the command name, in parentheses that may hold anything.
        let state = stat.rfind(')').and_then(|at| stat[at + 1..].split_whitespace().next());
        !matches!(state, Some("R" | "D" | "W"))
    })
}

/// How many file descriptors process `pid` has open.
pub fn open_fds(pid: u32) -> Result<usize> {
    let dir = Path::new("/proc").join(pid.to_string()).join("fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::Os {
        call: "opendir",
        code: OsCode::Errno(e.raw_os_error().unwrap_or(0)),
        context: format!("listing {}", dir.display()),
    })?;
    // The directory's own descriptor, open while it is read, is not counted.
    Ok(entries.count().saturating_sub(1))
}

/// Every process id on the machine, with its parent's.
fn parents() -> BTreeMap<u32, u32> {
    pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name, in parentheses, may itself hold spaces and parentheses.
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// Every living descendant of `pid` (children, grandchildren re-parented away are not found).
pub fn descendants(pid: u32) -> Vec<u32> {
    let pairs: Vec<(u32, u32)> = parents().into_iter().collect();
    crate::tree::tree_below(pid, &pairs)
}

/// Every process whose environment holds `key=value` (how the harness and its tests find the
/// processes of a run wherever they were re-parented to).
pub fn processes_with_env(key: &str, value: &str) -> Vec<u32> {
    let want = format!("{key}={value}");
    with_env(|kv| kv == want.as_bytes())
}

/// Every process whose environment holds `key` with a value that starts with `prefix`.
pub fn processes_with_env_prefix(key: &str, prefix: &str) -> Vec<u32> {
    let want = format!("{key}={prefix}");
    with_env(|kv| kv.starts_with(want.as_bytes()))
}

/// Every process id on the machine (the numeric entries of `/proc`).
fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).collect()
}

fn with_env(matches: impl Fn(&[u8]) -> bool) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.split(|b| *b == 0).any(&matches))
        })
        .collect()
}

/// A listening Unix socket on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListeningSocket {
    /// Its path, or `@name` for an abstract name.
    pub name: String,
    /// The socket's inode (to find its holders).
    pub inode: u64,
    /// The processes that hold it open (empty when they could not be read).
    pub pids: Vec<u32>,
}

/// Every listening Unix stream socket with a name, in the harness's network namespace, from
/// `/proc/net/unix`, with the processes holding it (needs the right to read their `fd`s: root
/// sees all).
pub fn listening_sockets() -> Result<Vec<ListeningSocket>> {
    let table = read(Path::new("/proc/net/unix"))?;
    let mut sockets = parse_net_unix(&table);
    let mut holders: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for pid in parents().keys() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let inode = target.to_str().and_then(|t| t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok());
            if let Some(inode) = inode {
                let list = holders.entry(inode).or_default();
                if !list.contains(pid) {
                    list.push(*pid);
                }
            }
        }
    }
    for s in &mut sockets {
        s.pids = holders.remove(&s.inode).unwrap_or_default();
    }
    Ok(sockets)
}

/// The listening, named stream sockets of a `/proc/net/unix` table.
pub fn parse_net_unix(table: &str) -> Vec<ListeningSocket> {
    const LISTENING: &str = "00010000"; // __SO_ACCEPTCON
    const STREAM: &str = "0001";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // Num RefCount Protocol Flags Type St Inode Path
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || f[3] != LISTENING || f[4] != STREAM {
                return None;
            }
            Some(ListeningSocket { name: f[7..].join(" "), inode: f[6].parse().ok()?, pids: Vec::new() })
        })
        .collect()
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`).
pub fn total_memory() -> Result<u64> {
    let text =
        std::fs::read_to_string("/proc/meminfo").map_err(|e| crate::Error::invalid("/proc/meminfo", e.to_string()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| crate::Error::invalid("/proc/meminfo", "no MemTotal line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_table_gives_named_listeners_only() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 41 /run/a.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 42 @abstract\n\
            0000000000000000: 00000002 00000000 00000000 0001 03 43 /run/connected.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 44\n\
            0000000000000000: 00000002 00000000 00000000 0002 01 45 /dev/log\n";
        let names: Vec<(String, u64)> = parse_net_unix(table).into_iter().map(|s| (s.name, s.inode)).collect();
        assert_eq!(names, [("/run/a.sock".to_string(), 41), ("@abstract".to_string(), 42)]);
    }

    #[test]
    fn this_process_is_measured() {
        assert!(resident_kib(std::process::id()).expect("rss") > 0);
        assert!(resident_kib(u32::MAX).is_err(), "no such process: an error, not zero");
        // One child whose descriptors change only when it says so: it opens fd 7, reports,
        // closes it, reports. Comparing two children would be racy (another test thread's
        // descriptors may be inherited by one and not the other).
        use std::io::{BufRead, Write};
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exec 7</dev/null; echo open; read x; exec 7<&-; echo closed; read y"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sh");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut next_line = || lines.next().expect("a line").expect("read");
        assert_eq!(next_line(), "open");
        let with_7 = open_fds(child.id());
        stdin.write_all(b"\n").expect("write");
        assert_eq!(next_line(), "closed");
        let without_7 = open_fds(child.id());
        let seen = descendants(std::process::id()).contains(&child.id());
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(with_7.expect("fds"), without_7.expect("fds") + 1);
        assert!(seen, "the child is among our descendants");
    }
}
