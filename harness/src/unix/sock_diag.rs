//! Which file each listening Unix socket is bound to, from the kernel (`NETLINK_SOCK_DIAG`,
//! `UNIX_DIAG_VFS`): the device and inode of the socket file `bind(2)` created.
//!
//! `/proc/net/unix` shows the name a socket was bound to, and the name alone: a server that
//! binds a temporary name and renames it over its real path (as haproxy does for seamless
//! reloads) is shown under the temporary name, which no longer exists; a socket whose file
//! was unlinked and replaced (another server's unlink-and-bind) is shown under the name the
//! new socket now holds. The bound file's inode tells where the socket really is, if anywhere:
//! `pipe-harness list` matches it against `stat(2)` of the path.

use crate::error::{Error, OsCode, Result};
use std::collections::BTreeMap;

/// The socket file a listening socket is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundFile {
    /// The file's device: major and minor numbers.
    pub dev: (u32, u32),
    /// The file's inode number.
    pub ino: u64,
}

impl BoundFile {
    /// Whether `meta` (a `stat` of a path) is this file.
    pub fn is(&self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        let dev = meta.dev();
        meta.ino() == self.ino && (rustix::fs::major(dev), rustix::fs::minor(dev)) == self.dev
    }
}

/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const REQUEST_DUMP: u16 = 0x1 | 0x300;
/// `NLMSG_ERROR`, `NLMSG_DONE`.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `UDIAG_SHOW_VFS`: ask for the bound file.
const UDIAG_SHOW_VFS: u32 = 0x2;
/// The `UNIX_DIAG_VFS` attribute.
const UNIX_DIAG_VFS: u16 = 1;
/// `TCP_LISTEN`, the state of a listening Unix stream socket.
const LISTEN: u32 = 10;

/// The bound file of every listening Unix socket that has one, by the socket's inode (the
/// `Inode` column of `/proc/net/unix`), in the harness's network namespace.
pub fn listening_bound_files() -> Result<BTreeMap<u64, BoundFile>> {
    use rustix::net::{netlink, recv, send, socket, AddressFamily, RecvFlags, SendFlags, SocketType};
    let os = |call: &'static str, e: rustix::io::Errno| Error::Os {
        call,
        code: OsCode::Errno(e.raw_os_error()),
        context: "asking the kernel for the Unix sockets' bound files (NETLINK_SOCK_DIAG)".into(),
    };
    let fd =
        socket(AddressFamily::NETLINK, SocketType::DGRAM, Some(netlink::SOCK_DIAG)).map_err(|e| os("socket", e))?;
    send(&fd, &request(), SendFlags::empty()).map_err(|e| os("send", e))?;
    let mut out = BTreeMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (_, n) = recv(&fd, &mut buf[..], RecvFlags::empty()).map_err(|e| os("recv", e))?;
        if n == 0 {
            return Ok(out);
        }
        if parse(&buf[..n.min(buf.len())], &mut out)? {
            return Ok(out);
        }
    }
}

/// The dump request: every listening Unix socket, with its bound file.
fn request() -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes()); // nlmsg_type
    m.extend_from_slice(&REQUEST_DUMP.to_ne_bytes()); // nlmsg_flags
    m.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    m.push(libc_af_unix()); // sdiag_family
    m.push(0); // sdiag_protocol
    m.extend_from_slice(&0u16.to_ne_bytes()); // pad
    m.extend_from_slice(&(1u32 << LISTEN).to_ne_bytes()); // udiag_states
    m.extend_from_slice(&0u32.to_ne_bytes()); // udiag_ino
    m.extend_from_slice(&UDIAG_SHOW_VFS.to_ne_bytes()); // udiag_show
    m.extend_from_slice(&[0xff; 8]); // udiag_cookie: INET_DIAG_NOCOOKIE
    m
}

fn libc_af_unix() -> u8 {
    rustix::net::AddressFamily::UNIX.as_raw() as u8
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads one datagram of replies into `out`; `true` once the dump is done.
fn parse(mut b: &[u8], out: &mut BTreeMap<u64, BoundFile>) -> Result<bool> {
    let bad = |why: &str| Error::Peer(format!("a NETLINK_SOCK_DIAG reply the harness cannot read: {why}"));
    while b.len() >= 16 {
        let len = u32_at(b, 0).ok_or_else(|| bad("no length"))? as usize;
        let kind = u16_at(b, 4).ok_or_else(|| bad("no type"))?;
        if len < 16 || len > b.len() {
            return Err(bad("a message longer than the datagram"));
        }
        let msg = &b[16..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(msg, 0).map_or(0, |e| -(e as i32));
                return Err(Error::Os {
                    call: "NETLINK_SOCK_DIAG",
                    code: OsCode::Errno(errno),
                    context: "dumping the listening Unix sockets".into(),
                });
            }
            _ => {
                // struct unix_diag_msg (16 bytes), then attributes.
                let ino = u32_at(msg, 4).ok_or_else(|| bad("no inode"))?;
                let mut attrs = msg.get(16..).unwrap_or(&[]);
                while attrs.len() >= 4 {
                    let alen = u16_at(attrs, 0).unwrap_or(0) as usize;
                    let akind = u16_at(attrs, 2).unwrap_or(0);
                    if alen < 4 || alen > attrs.len() {
                        break;
                    }
                    if akind == UNIX_DIAG_VFS {
                        // struct unix_diag_vfs { u32 udiag_vfs_ino; u32 udiag_vfs_dev; }: the
                        // device as the kernel encodes it (major << 20 | minor).
                        if let (Some(vfs_ino), Some(dev)) = (u32_at(attrs, 4), u32_at(attrs, 8)) {
                            out.insert(
                                u64::from(ino),
                                BoundFile { dev: (dev >> 20, dev & 0xf_ffff), ino: u64::from(vfs_ino) },
                            );
                        }
                    }
                    attrs = &attrs[(alen + 3) & !3..];
                }
            }
        }
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or(&[]);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_listening_sockets_bound_file_is_the_file_at_its_path_and_follows_a_rename() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tmp = dir.path().join("s.sock.tmp");
        let listener = std::os::unix::net::UnixListener::bind(&tmp).expect("bind");
        let me = rustix::fs::fstat(&listener).expect("fstat").st_ino;
        let real = dir.path().join("s.sock");
        std::fs::rename(&tmp, &real).expect("rename into place");
        let bound = listening_bound_files().expect("sock_diag");
        let file = bound.get(&me).unwrap_or_else(|| panic!("socket inode {me} not in {bound:?}"));
        let meta = std::fs::symlink_metadata(&real).expect("stat");
        assert!(file.is(&meta), "{file:?} vs ino {} dev {}", meta.ino(), meta.dev());
        assert!(!file.is(&std::fs::symlink_metadata(dir.path()).expect("stat dir")));
    }
}
