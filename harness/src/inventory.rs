//! `pipe-harness list`: every pipe (Windows) or listening Unix socket (Linux) on the machine,
//! with what can be known of its owner, server and protection, and the names that anyone may
//! take over flagged.
//!
//! On Windows "take over" means create an instance of the name: the right is
//! `FILE_CREATE_PIPE_INSTANCE` (0x4, the bit `FILE_APPEND_DATA` has on files), which
//! `GENERIC_WRITE`, `FILE_GENERIC_WRITE` and `GENERIC_ALL` include (docs/windows-rules.md, rule
//! 1); a DACL that grants it to Everyone, Authenticated Users, Users, Interactive, Anonymous or
//! all app packages lets any of them squat. Reading a pipe's DACL opens it as a client, which
//! takes one of its instances for a moment (as Sysinternals' accesschk does), so it is asked for
//! with `--sddl`.
//!
//! On Linux "take over" means bind the name: an abstract name is free for anyone in the
//! network namespace whenever its server is down; a socket file in a directory others may
//! write (without the sticky bit) can be unlinked and replaced by any of them, and with the
//! sticky bit (`/tmp`) its name is still theirs to take while the server is down. A socket
//! whose mode lets "other" write is open to every local user.

use crate::error::Result;
use serde::Serialize;

/// One endpoint on the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointInfo {
    /// The pipe name (after `\\.\pipe\`), the socket path, or `@name` for an abstract name.
    pub name: String,
    /// Its owner (SID or uid), when known.
    pub owner: Option<String>,
    /// The processes serving it, when known.
    pub server_pids: Vec<u32>,
    /// Instances that exist now / the name's maximum (Windows).
    pub instances: Option<(u32, Option<u32>)>,
    /// Its protection: the DACL as SDDL, or the socket file's mode.
    pub protection: Option<String>,
    /// Why someone other than its owner may take the name over or reach it.
    pub flags: Vec<String>,
}

/// The well-known groups that, granted a right, grant it to (nearly) anyone on the machine,
/// as SDDL aliases and SID strings.
const BROAD: &[(&str, &str, &str)] = &[
    ("WD", "S-1-1-0", "Everyone"),
    ("AN", "S-1-5-7", "Anonymous"),
    ("AU", "S-1-5-11", "Authenticated Users"),
    ("BU", "S-1-5-32-545", "Users"),
    ("BG", "S-1-5-32-546", "Guests"),
    ("IU", "S-1-5-4", "Interactive"),
    ("NU", "S-1-5-2", "Network"),
    ("AC", "S-1-15-2-1", "All app packages"),
];

/// Does an ACE's rights field include `FILE_CREATE_PIPE_INSTANCE`?
fn rights_create_instances(rights: &str) -> bool {
    if let Some(hex) = rights.strip_prefix("0x").or_else(|| rights.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16)
            .is_ok_and(|m| m & 0x4 != 0 || m & 0x1000_0000 != 0 || m & 0x4000_0000 != 0);
    }
    // Two-letter codes: GA, GW, FA, FW include the bit; LC is the bit itself (0x4).
    rights.as_bytes().chunks(2).any(|c| matches!(c, b"GA" | b"GW" | b"FA" | b"FW" | b"LC"))
}

/// Who, among the broad groups, a DACL (SDDL) lets create instances of the pipe: each as a
/// sentence. A NULL DACL lets everyone; an ACE that denies the right to the same group earlier
/// in the list keeps it out (the ACL is read in order).
pub fn who_may_create_instances(sddl: &str) -> Vec<String> {
    let Some(dacl) = crate::sddl::section(sddl, 'D') else { return Vec::new() };
    if dacl.starts_with("NO_ACCESS_CONTROL") {
        return vec!["a NULL DACL: anyone may create instances".into()];
    }
    let mut denied: Vec<&str> = Vec::new();
    let mut found = Vec::new();
    for ace in dacl.split('(').skip(1).filter_map(|a| a.strip_suffix(')').or_else(|| a.split(')').next())) {
        let f: Vec<&str> = ace.split(';').collect();
        if f.len() < 6 || f[1].contains("IO") {
            continue; // malformed, or inherit-only (does not apply to the pipe itself)
        }
        let Some((alias, _, label)) = BROAD.iter().find(|(a, sid, _)| f[5] == *a || f[5] == *sid) else { continue };
        if !rights_create_instances(f[2]) {
            continue;
        }
        match f[0] {
            "D" => denied.push(alias),
            "A" if !denied.contains(alias) => {
                let line = format!("{label} ({alias}) may create instances: rights {}", f[2]);
                if !found.contains(&line) {
                    found.push(line);
                }
            }
            _ => {}
        }
    }
    found
}

/// Reasons a Unix socket may be taken over or reached by others: from its name, its mode and
/// the modes of the directories above it (`dirs`: from `/` down to the socket's own directory;
/// empty where unknown). Others reach a path only with search rights (`o+x`) on every
/// directory above it: a socket open to all (`0777`) in a private directory (`0700`, as
/// gpg-agent's) is reachable by nobody else, and is not flagged.
pub fn unix_flags(name: &str, mode: Option<u32>, dirs: &[u32]) -> Vec<String> {
    let mut flags = Vec::new();
    if name.starts_with('@') {
        flags.push("abstract name: anyone in this network namespace may bind it whenever it is free".into());
        return flags;
    }
    // A directory on the path that others may not search closes the path to them.
    if dirs.iter().any(|d| d & 0o001 == 0) {
        return flags;
    }
    if let Some(d) = dirs.last() {
        if d & 0o002 != 0 && d & 0o1000 == 0 {
            flags.push(format!(
                "its directory is mode {:04o}: any local user may unlink the socket and bind their own",
                d & 0o7777
            ));
        } else if d & 0o002 != 0 {
            flags.push(format!(
                "its directory is mode {:04o}: the sticky bit keeps others from unlinking the socket, but any local user may take the name while the server is down (instance_squatting's restart gap)",
                d & 0o7777
            ));
        }
    }
    if let Some(m) = mode {
        if m & 0o002 != 0 {
            flags.push(format!(
                "mode {:04o}, and every directory above it searchable by all: any local user may connect",
                m & 0o7777
            ));
        }
    }
    flags
}

/// The modes of the directories from `/` down to `path`'s own directory; empty when one cannot
/// be read.
#[cfg(unix)]
fn directory_modes(path: &std::path::Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let mut modes: Vec<u32> = Vec::new();
    for dir in path.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(m) => modes.push(m.mode()),
            Err(_) => return Vec::new(),
        }
    }
    modes.reverse();
    modes
}

/// Every endpoint on this machine; `with_protection` also reads each one's protection (on
/// Windows this opens each pipe once as a client).
///
/// On Linux a socket is listed where its file is now, with that file's owner and mode: the
/// kernel's record of the file `bind(2)` created (`UNIX_DIAG_VFS`: its device and inode) is
/// matched against `stat(2)` of the bound name, and when the name no longer is that file (a
/// server that binds a temporary name and renames it into place, as haproxy does), against the
/// socket files of the same directory. A listener whose file is gone (its name unlinked and,
/// perhaps, taken by another server's socket) can be reached by no path and is not listed:
/// listing it under the name would give it the new socket's owner and mode.
#[cfg(unix)]
pub fn list(_with_protection: bool) -> Result<Vec<EndpointInfo>> {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    // Without sock_diag (an old kernel), the bound names as /proc/net/unix gives them.
    let bound = crate::unix::sock_diag::listening_bound_files().unwrap_or_default();
    let mut out = Vec::new();
    for s in crate::unix::procfs::listening_sockets()? {
        let (name, meta) = if s.name.starts_with('@') {
            (s.name, None)
        } else {
            let at_name = std::fs::symlink_metadata(&s.name).ok();
            match bound.get(&s.inode) {
                None => (s.name, at_name),
                Some(file) if at_name.as_ref().is_some_and(|m| file.is(m)) => (s.name, at_name),
                Some(file) => {
                    let dir = Path::new(&s.name).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
                    let moved = std::fs::read_dir(&dir).ok().and_then(|entries| {
                        entries.flatten().find_map(|e| {
                            let m = std::fs::symlink_metadata(e.path()).ok()?;
                            file.is(&m).then(|| (e.path().display().to_string(), Some(m)))
                        })
                    });
                    match moved {
                        Some(found) => found,
                        None => continue,
                    }
                }
            }
        };
        let dirs = if name.starts_with('@') { Vec::new() } else { directory_modes(Path::new(&name)) };
        let mode = meta.as_ref().map(|m| m.mode());
        out.push(EndpointInfo {
            flags: unix_flags(&name, mode, &dirs),
            owner: meta.as_ref().map(|m| format!("uid {}", m.uid())),
            protection: mode.map(|m| format!("mode={:04o}", m & 0o7777)),
            server_pids: s.pids,
            instances: None,
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Every endpoint on this machine; `with_protection` also reads each one's protection (on
/// Windows this opens each pipe once as a client).
#[cfg(windows)]
pub fn list(with_protection: bool) -> Result<Vec<EndpointInfo>> {
    use crate::windows::{query::list_pipes, ClientOptions, PipeName};
    let mut out = Vec::new();
    for p in list_pipes()? {
        let mut info = EndpointInfo {
            name: p.name.clone(),
            owner: None,
            server_pids: Vec::new(),
            instances: Some((p.instances, p.max_instances)),
            protection: None,
            flags: Vec::new(),
        };
        if with_protection {
            let opened = PipeName::new(&p.name)
                .and_then(|n| ClientOptions::new().read(false).write(false).read_control(true).open(&n));
            match opened {
                Ok(c) => {
                    info.server_pids.extend(c.server_process_id().ok());
                    if let Ok(sddl) = c.security().and_then(|sd| sd.to_sddl()) {
                        info.owner = crate::sddl::section(&sddl, 'O').map(String::from);
                        info.flags = who_may_create_instances(&sddl);
                        info.protection = Some(sddl);
                    }
                }
                Err(e) => info.flags.push(format!("not opened to read its DACL: {e}")),
            }
        }
        out.push(info);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("D:P(A;;GA;;;SY)(A;;GA;;;OW)", &[])]
    #[case("D:(A;;GA;;;SY)(A;;GRGW;;;WD)", &["Everyone (WD) may create instances: rights GRGW"])]
    #[case("D:(A;;0x12019f;;;AU)", &["Authenticated Users (AU) may create instances: rights 0x12019f"])]
    #[case("D:(A;;0x120089;;;AU)", &[])] // FILE_GENERIC_READ only
    #[case("D:(A;;GR;;;WD)(A;;FW;;;S-1-5-32-545)", &["Users (BU) may create instances: rights FW"])]
    #[case("D:(D;;GW;;;WD)(A;;GA;;;WD)", &[])] // denied first
    #[case("D:(A;OICIIO;GA;;;WD)", &[])] // inherit-only
    #[case("D:NO_ACCESS_CONTROL", &["a NULL DACL: anyone may create instances"])]
    #[case("O:SYG:SYD:", &[])] // empty DACL: nobody
    fn broad_create_instance_grants_are_flagged(#[case] sddl: &str, #[case] want: &[&str]) {
        assert_eq!(who_may_create_instances(sddl), want);
    }

    #[test]
    fn unix_sockets_are_flagged_by_name_mode_and_directory() {
        assert_eq!(unix_flags("@svc", None, &[]).len(), 1);
        assert!(unix_flags("/run/svc.sock", Some(0o140600), &[0o40755, 0o40755]).is_empty());
        let sticky = unix_flags("/tmp/svc.sock", Some(0o140600), &[0o40755, 0o41777]);
        assert!(sticky.len() == 1 && sticky[0].contains("while the server is down"), "sticky /tmp: {sticky:?}");
        let open = unix_flags("/x/svc.sock", Some(0o140666), &[0o40755, 0o40777]);
        assert_eq!(open.len(), 2, "{open:?}");
    }

    #[test]
    fn a_socket_open_to_all_in_a_private_directory_is_not_flagged() {
        // gpg-agent's: /run/user/1000/gnupg/S.gpg-agent, mode 0777, in 0700 directories.
        let private =
            unix_flags("/run/user/1000/gnupg/S.gpg-agent", Some(0o140777), &[0o40755, 0o40755, 0o40700, 0o40700]);
        assert!(private.is_empty(), "{private:?}");
        // A private directory higher up closes the whole path, even under a 0777 one.
        assert!(unix_flags("/srv/a/b/s.sock", Some(0o140777), &[0o40755, 0o40700, 0o40777, 0o40777]).is_empty());
        // The same socket where every directory is searchable is open to all.
        let open = unix_flags("/run/svc/s.sock", Some(0o140777), &[0o40755, 0o40755, 0o40755]);
        assert!(open.len() == 1 && open[0].contains("any local user may connect"), "{open:?}");
    }
}
