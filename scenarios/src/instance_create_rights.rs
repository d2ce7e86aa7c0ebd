//! **instance create rights**: who besides the server may create the endpoint's name, read off
//! its protection. On Windows `FILE_CREATE_PIPE_INSTANCE` is the same bit as `FILE_APPEND_DATA`,
//! so a DACL that grants a broad group `GENERIC_WRITE` or `FILE_WRITE_DATA`/`FILE_APPEND_DATA`
//! ("let clients write") lets that group add instances beside the server's and squat on it
//! (`docs/windows-rules.md`, rule 4). On Unix a socket's name is as safe as its directory: whoever
//! may write the directory may create the name while the server is down (a sticky bit keeps them
//! from removing a live socket, not from taking a free name), and an abstract name has no
//! permissions at all. Only a directory the product chose is judged: one the harness made for
//! the run (`{dir}`, `{private_dir:...}`) makes the check not applicable, naming the endpoint
//! that would make it run.
//!
//! Judged from the descriptor alone (under Wine too, which stores and returns DACLs as Windows
//! does); `instance_squatting` tries the same for real where the platform enforces it. A pipe
//! that reads back no DACL is a finding only where a pipe made without a security descriptor
//! gets the default DACL (`null_sd_gets_default_dacl`); under Wine both read back the same, and
//! the check is unverifiable (Node's pipes, made with a NULL descriptor, were reported there
//! before: `tests/tests/third_party_windows.rs`).

use crate::{Context, Scenario, CLIENT_TIMEOUT};
use pipe_harness_core::endpoint::Endpoint;
use pipe_harness_core::engine::{Backend, Conn, ConnectSpec, Finding, Policy, Severity, Verdict};
use pipe_harness_core::probe::Rule;
use pipe_harness_core::protection::{AceKind, Protection, FILE_CREATE_PIPE_INSTANCE};
use std::path::PathBuf;

/// The scenario.
pub struct InstanceCreateRights;

/// The plan key that puts a socket where the product really keeps it, so its directory is
/// judged.
pub const DEPLOYED_KEY: &str = "[target] endpoint = \"/run/my-service/my-service.sock\" (the directory the product really uses, made as its deployment makes it; or attach = its live socket), not {dir} or {private_dir:...}";

impl Scenario for InstanceCreateRights {
    const ID: &'static str = "instance_create_rights";
    const TITLE: &'static str =
        "who besides the server may create the endpoint's name (a DACL's write rights; a socket's directory)?";
    /// One descriptor per name: the DACL read from one instance is the name's.
    const WINDOWS: Option<&'static [Rule]> = Some(&[Rule::SdSharedAcrossInstances]);
    /// Directory permissions must keep other uids out, as they do for a non-root identity.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixDistinctIdentities]);
    const NEEDS: &'static [&'static str] = &["[target] program or attach (a server to read the protection of)"];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, _: &Policy) -> Verdict {
        judge(obs)
    }
}

/// Groups whose members include unprivileged users: a create right for one of them lets an
/// ordinary user squat (Everyone, Authenticated Users, Users, Interactive, Anonymous, Network,
/// Guests, all application packages, restricted code, write-restricted code).
pub const BROAD_GROUPS: &[(&str, &str)] = &[
    ("S-1-1-0", "Everyone"),
    ("S-1-5-11", "Authenticated Users"),
    ("S-1-5-32-545", "Users"),
    ("S-1-5-4", "Interactive"),
    ("S-1-5-7", "Anonymous Logon"),
    ("S-1-5-2", "Network"),
    ("S-1-5-32-546", "Guests"),
    ("S-1-15-2-1", "All Application Packages"),
    ("S-1-15-2-2", "All Restricted Application Packages"),
    ("S-1-5-12", "Restricted Code"),
    ("S-1-5-33", "Write Restricted Code"),
];

/// What protects the name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observations {
    /// A named pipe's DACL, as a client read it.
    Pipe {
        /// The DACL.
        dacl: Protection,
    },
    /// A socket path and the directory it lives in.
    Directory {
        /// The socket's directory.
        dir: PathBuf,
        /// The directory's permission bits.
        mode: u32,
        /// Its owner.
        uid: u32,
        /// Its group.
        gid: u32,
        /// The uid that owns the socket (the server's).
        server_uid: Option<u32>,
    },
    /// A Linux abstract name.
    Abstract {
        /// The name.
        name: String,
    },
}

/// The SIDs an ACE list lets create an instance, in order: an allow ACE with the create bit,
/// not taken back by an earlier deny ACE for the same SID or for Everyone.
pub fn creators(dacl: &Protection) -> Vec<String> {
    let Protection::Dacl(d) = dacl else { return Vec::new() };
    let mut denied: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for ace in &d.aces {
        let create = ace.mask & FILE_CREATE_PIPE_INSTANCE != 0;
        match ace.kind {
            AceKind::Deny if create => denied.push(&ace.sid),
            AceKind::Allow
                if create && !denied.iter().any(|s| *s == ace.sid || *s == "S-1-1-0") && !out.contains(&ace.sid) =>
            {
                out.push(ace.sid.clone());
            }
            _ => {}
        }
    }
    out
}

fn group_name(sid: &str) -> Option<&'static str> {
    BROAD_GROUPS.iter().find(|(s, _)| *s == sid).map(|(_, n)| *n)
}

fn fail(title: String, evidence: Vec<String>) -> Verdict {
    Verdict::Fail(Finding { title, severity: Severity::High, evidence, seed: None, replay: None })
}

/// The verdict.
fn judge(obs: &Observations) -> Verdict {
    match obs {
        Observations::Pipe { dacl: Protection::NullDacl } => fail(
            "the pipe has a NULL DACL: anyone may create instances of its name".into(),
            vec!["DACL: NO_ACCESS_CONTROL".into()],
        ),
        Observations::Pipe { dacl } => {
            let who = creators(dacl);
            let mut evidence = vec![format!("DACL: {dacl}")];
            evidence.push(format!(
                "FILE_CREATE_PIPE_INSTANCE (= FILE_APPEND_DATA) granted to: {}",
                if who.is_empty() { "nobody".to_string() } else { who.join(", ") }
            ));
            let broad: Vec<String> =
                who.iter().filter_map(|s| group_name(s).map(|n| format!("{n} ({s})"))).collect();
            if broad.is_empty() {
                Verdict::Pass { evidence }
            } else {
                fail(
                    format!(
                        "the DACL lets {} create instances of the pipe (a write right is the create-instance right)",
                        broad.join(", ")
                    ),
                    evidence,
                )
            }
        }
        Observations::Abstract { name } => fail(
            format!("@{name} is an abstract name: it has no permissions, so anyone in the network namespace may take it while the server is down"),
            vec![format!("endpoint @{name}")],
        ),
        Observations::Directory { dir, mode, uid, gid, server_uid } => {
            let evidence = vec![format!(
                "directory {}: mode {mode:04o}, owner uid {uid}, group {gid}; the socket is owned by {}",
                dir.display(),
                server_uid.map_or("?".to_string(), |u| format!("uid {u}"))
            )];
            let sticky = if mode & 0o1000 != 0 { " (sticky: a live socket cannot be removed, a free name can be taken)" } else { "" };
            if mode & 0o002 != 0 {
                return fail(
                    format!("every user may create sockets in {}{sticky}: anyone may take the name while the server is down", dir.display()),
                    evidence,
                );
            }
            if mode & 0o020 != 0 && Some(*gid) != *server_uid {
                return fail(
                    format!("the members of group {gid} may create sockets in {}{sticky}: they may take the name while the server is down", dir.display()),
                    evidence,
                );
            }
            if server_uid.is_some_and(|s| s != *uid && *uid != 0) {
                return fail(
                    format!("uid {uid} owns {} and may take the name while the server is down", dir.display()),
                    evidence,
                );
            }
            Verdict::Pass { evidence }
        }
    }
}

/// Reaches the server and reads what protects its name.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    let server = cx.reach_ready()?;
    let spec = ConnectSpec { read_protection: true, timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() };
    let conn = cx.backend.connect(server.endpoint(), &spec).map_err(|e| Verdict::error("connecting", e))?;
    let protection = conn.protection().map_err(|e| Verdict::error("reading the endpoint's protection", e))?;
    if cx.backend.platform() == "windows" {
        if protection == Protection::NullDacl {
            crate::null_dacl_is_telling(cx, "the pipe")?;
        }
        return Ok(Observations::Pipe { dacl: protection });
    }
    if let Some(dir) = cx.backend.harness_directory(server.endpoint()) {
        return Err(Verdict::not_applicable(
            format!(
                "the socket's directory ({}) is one the harness made for this run, not one the product chose: who may create names there says nothing about the product",
                dir.display()
            ),
            DEPLOYED_KEY,
        ));
    }
    let server_uid = match &protection {
        Protection::Mode(m) => m.uid,
        _ => None,
    };
    match Endpoint::unix(&cx.backend.endpoint_path(server.endpoint())) {
        Endpoint::Path(path) => directory(path, server_uid),
        Endpoint::Abstract(name) => Ok(Observations::Abstract { name }),
        other => Err(Verdict::Error { reason: format!("{other} is not a Unix socket endpoint") }),
    }
}

#[cfg(unix)]
fn directory(path: PathBuf, server_uid: Option<u32>) -> Result<Observations, Verdict> {
    use std::os::unix::fs::MetadataExt;
    let dir = path.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    let m =
        std::fs::metadata(&dir).map_err(|e| Verdict::Error { reason: format!("reading {}: {e}", dir.display()) })?;
    Ok(Observations::Directory { dir, mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid(), server_uid })
}

#[cfg(not(unix))]
fn directory(path: PathBuf, _: Option<u32>) -> Result<Observations, Verdict> {
    Err(Verdict::Error { reason: format!("{} is a socket path, and this is not Unix", path.display()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn pipe(sddl: &str) -> Observations {
        Observations::Pipe { dacl: sddl.parse().expect("sddl") }
    }

    #[rstest]
    #[case("D:P(A;;GA;;;SY)(A;;GA;;;OW)", "pass")]
    #[case("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GR;;;WD)", "pass")]
    #[case("D:(A;;GRGW;;;WD)", "fail")]
    #[case("D:(A;;FW;;;BU)", "fail")]
    #[case("D:(A;;0x4;;;AU)", "fail")]
    #[case("D:(D;;0x4;;;WD)(A;;GRGW;;;WD)", "pass")]
    #[case("D:(A;;FW;;;S-1-5-21-1-2-3-1001)", "pass")]
    #[case("D:NO_ACCESS_CONTROL", "fail")]
    fn write_rights_for_a_broad_group_are_create_rights(#[case] sddl: &str, #[case] want: &str) {
        assert_eq!(judge(&pipe(sddl)).kind(), want, "{sddl}");
    }

    #[rstest]
    #[case(0o1777, 0, 0, Some(61000), "fail")]
    #[case(0o0777, 0, 0, Some(61000), "fail")]
    #[case(0o0755, 61000, 61000, Some(61000), "pass")]
    #[case(0o0775, 61000, 61000, Some(61000), "pass")]
    #[case(0o0775, 0, 100, Some(61000), "fail")]
    #[case(0o0755, 0, 0, Some(61000), "pass")]
    #[case(0o0755, 61001, 61001, Some(61000), "fail")]
    fn a_socket_name_is_as_safe_as_its_directory(
        #[case] mode: u32,
        #[case] uid: u32,
        #[case] gid: u32,
        #[case] server_uid: Option<u32>,
        #[case] want: &str,
    ) {
        let obs = Observations::Directory { dir: "/run/svc".into(), mode, uid, gid, server_uid };
        assert_eq!(judge(&obs).kind(), want, "{mode:o} {uid} {gid}");
    }

    #[test]
    fn an_abstract_name_is_anyone_s() {
        assert_eq!(judge(&Observations::Abstract { name: "svc".into() }).kind(), "fail");
    }
}
