//! The Windows platform probe: each rule measured by trying it and looking at the effect.
//!
//! The probe never trusts a return value alone. "The second create succeeded" is evidence the
//! first-instance rule does not hold; "`SetTokenInformation` returned success" is not evidence
//! the integrity level changed: the token is read back. Each measurement also runs a control
//! (the same step without the protection) so that a refusal is known to come from the rule and
//! not from something else.

use super::pipe::{ClientOptions, PipeClient, PipeName, PipeServer, SecuritySpec, ServerOptions, Sqos};
use super::process::{spawn, ProcessSpec};
use super::security::SecurityDescriptor;
use super::token::{enable_privilege, ImpersonationLevel, IntegrityLevel, Token};
use crate::error::{OsCode, Result};
use crate::rules::{PlatformInfo, ProbeReport, Rule, RuleResult, Status};
use std::time::Duration;
use windows::core::{s, w};
use windows::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows::Win32::System::RemoteDesktop::ProcessIdToSessionId;

const IO: Duration = Duration::from_secs(5);
/// Grants everyone everything: instances can be created, clients can open.
const OPEN_SDDL: &str = "D:P(A;;GA;;;WD)";
/// A second, distinguishable descriptor.
const OTHER_SDDL: &str = "D:P(A;;GA;;;WD)(A;;GR;;;AN)";

/// The version string when running under Wine, from ntdll's `wine_get_version` export.
pub fn wine_version() -> Option<String> {
    // SAFETY: ntdll is always loaded; GetModuleHandleW does not add a reference.
    let ntdll = unsafe { GetModuleHandleW(w!("ntdll.dll")) }.ok()?;
    // SAFETY: looking up an export by a NUL-terminated name.
    let f = unsafe { GetProcAddress(ntdll, s!("wine_get_version")) }?;
    // SAFETY: Wine documents `const char *wine_get_version(void)`, returning a static string.
    let get: extern "C" fn() -> *const std::ffi::c_char = unsafe { std::mem::transmute(f) };
    let p = get();
    if p.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated static string from Wine.
    Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The session a process runs in.
pub fn session_of(pid: u32) -> Option<u32> {
    let mut s = 0u32;
    // SAFETY: `s` is a valid out-pointer.
    unsafe { ProcessIdToSessionId(pid, &mut s) }.ok().map(|_| s)
}

fn describe<T>(r: &Result<T>) -> String {
    match r {
        Ok(_) => "succeeded".into(),
        Err(e) => match e.os_code() {
            Some(code) => format!("failed with {code}"),
            None => format!("failed: {e}"),
        },
    }
}

fn sddl_of(sd: &Result<SecurityDescriptor>) -> String {
    match sd {
        Ok(sd) => match sd.to_sddl() {
            Ok(s) if s.is_empty() => "\"\" (no owner, group or DACL)".into(),
            Ok(s) => format!("{s:?}"),
            Err(e) => format!("unreadable: {e}"),
        },
        Err(e) => format!("unreadable: {e}"),
    }
}

/// A server instance and a connected client that has written one byte, which the server read.
fn connected_pair(name: &PipeName, sqos: Option<Sqos>, read: bool) -> Result<(PipeServer, PipeClient)> {
    let mut server = ServerOptions::new().create(name)?;
    let mut client = ClientOptions::new().sqos(sqos).open(name)?;
    server.connect(IO)?;
    client.write_all(b"!", IO)?;
    if read {
        let mut b = [0u8; 1];
        server.read(&mut b, IO)?;
    }
    Ok((server, client))
}

struct Measure {
    evidence: Vec<String>,
}

impl Measure {
    fn new() -> Self {
        Measure { evidence: Vec::new() }
    }
    fn note(&mut self, s: impl Into<String>) {
        self.evidence.push(s.into());
    }
    fn done(self, rule: Rule, status: Status) -> RuleResult {
        RuleResult { rule, status, evidence: self.evidence }
    }
}

fn first_instance_flag() -> RuleResult {
    let mut m = Measure::new();
    let name = PipeName::unique("ph-probe-first");
    let first = ServerOptions::new().first_pipe_instance(true).create(&name);
    m.note(format!("first create of {name} with FILE_FLAG_FIRST_PIPE_INSTANCE {}", describe(&first)));
    if first.is_err() {
        return m.done(Rule::FirstInstanceFlagEnforced, Status::Untestable);
    }
    let flagged = ServerOptions::new().first_pipe_instance(true).create(&name);
    m.note(format!("second create with the flag {}", describe(&flagged)));
    let control = ServerOptions::new().create(&name);
    m.note(format!("control: second create without the flag {}", describe(&control)));
    let status = match (&flagged, &control) {
        (Ok(_), _) => Status::DoesNotHold,
        (Err(e), Ok(_)) if e.is_access_denied() => Status::Holds,
        _ => Status::Untestable,
    };
    m.done(Rule::FirstInstanceFlagEnforced, status)
}

fn client_open_dacl() -> RuleResult {
    let mut m = Measure::new();
    let denied = PipeName::unique("ph-probe-dacl");
    let deny_all = "D:P(D;;GA;;;WD)(A;;GA;;;WD)";
    let server = ServerOptions::new().security(SecuritySpec::Sddl(deny_all.into())).create(&denied);
    m.note(format!("created {denied} with DACL {deny_all:?}: {}", describe(&server)));
    let open = ClientOptions::new().open(&denied);
    m.note(format!("client open for read/write {}", describe(&open)));
    let allowed = PipeName::unique("ph-probe-dacl-ok");
    let _control_server = ServerOptions::new().security(SecuritySpec::Sddl(OPEN_SDDL.into())).create(&allowed);
    let control = ClientOptions::new().open(&allowed);
    m.note(format!("control: client open of a pipe with {OPEN_SDDL:?} {}", describe(&control)));
    let status = match (&server, &open, &control) {
        (Ok(_), Ok(_), _) => Status::DoesNotHold,
        (Ok(_), Err(e), Ok(_)) if e.is_access_denied() => Status::Holds,
        _ => Status::Untestable,
    };
    m.done(Rule::ClientOpenDaclEnforced, status)
}

fn instance_create_dacl() -> RuleResult {
    let mut m = Measure::new();
    // FILE_GENERIC_READ | FILE_WRITE_DATA, without FILE_APPEND_DATA (= FILE_CREATE_PIPE_INSTANCE).
    let no_create = "D:P(A;;0x12008b;;;WD)";
    let with_create = "D:P(A;;0x12008f;;;WD)";
    let name = PipeName::unique("ph-probe-create");
    let first = ServerOptions::new().security(SecuritySpec::Sddl(no_create.into())).create(&name);
    m.note(format!("first instance with DACL {no_create:?} {}", describe(&first)));
    let second = ServerOptions::new().create(&name);
    m.note(format!("second instance by the same token {}", describe(&second)));
    let control_name = PipeName::unique("ph-probe-create-ok");
    let _control_first = ServerOptions::new().security(SecuritySpec::Sddl(with_create.into())).create(&control_name);
    let control = ServerOptions::new().create(&control_name);
    m.note(format!("control: second instance under {with_create:?} {}", describe(&control)));
    let status = match (&first, &second, &control) {
        (Ok(_), Ok(_), _) => Status::DoesNotHold,
        (Ok(_), Err(e), Ok(_)) if e.is_access_denied() => Status::Holds,
        _ => Status::Untestable,
    };
    m.done(Rule::InstanceCreateDaclEnforced, status)
}

fn null_sd_default_dacl() -> RuleResult {
    let mut m = Measure::new();
    let name = PipeName::unique("ph-probe-nullsd");
    let server = match ServerOptions::new().create(&name) {
        Ok(s) => s,
        Err(e) => {
            m.note(format!("create with a NULL descriptor failed: {e}"));
            return m.done(Rule::NullSdGetsDefaultDacl, Status::Untestable);
        }
    };
    let sd = server.security();
    m.note(format!("created {name} with a NULL descriptor; its SD reads {}", sddl_of(&sd)));
    let status = match &sd {
        Ok(sd) => {
            let dacl = sd.dacl_sddl().ok().flatten();
            let owner = sd.owner().ok().flatten();
            if dacl.as_deref().is_some_and(|d| d.contains("(A;")) && owner.is_some() {
                Status::Holds
            } else {
                m.note("expected an owner and a DACL with allow entries (the default DACL)");
                Status::DoesNotHold
            }
        }
        Err(_) => Status::Untestable,
    };
    m.done(Rule::NullSdGetsDefaultDacl, status)
}

fn canonical_dacl(sddl: &str) -> Option<String> {
    SecurityDescriptor::from_sddl(sddl).ok()?.dacl_sddl().ok()?
}

fn sd_shared() -> RuleResult {
    let mut m = Measure::new();
    let name = PipeName::unique("ph-probe-shared");
    let r = (|| -> Result<(PipeServer, PipeServer)> {
        let a = ServerOptions::new().security(SecuritySpec::Sddl(OPEN_SDDL.into())).create(&name)?;
        let b = ServerOptions::new().security(SecuritySpec::Sddl(OTHER_SDDL.into())).create(&name)?;
        Ok((a, b))
    })();
    let (_a, b) = match r {
        Ok(p) => p,
        Err(e) => {
            m.note(format!("creating two instances failed: {e}"));
            return m.done(Rule::SdSharedAcrossInstances, Status::Untestable);
        }
    };
    let sd = b.security();
    m.note(format!(
        "instance 1 asked for {OPEN_SDDL:?}, instance 2 for {OTHER_SDDL:?}; instance 2 reads {}",
        sddl_of(&sd)
    ));
    let got = sd.ok().and_then(|s| s.dacl_sddl().ok().flatten());
    let status = if got.is_some() && got == canonical_dacl(OPEN_SDDL) {
        Status::Holds
    } else if got.is_some() && got == canonical_dacl(OTHER_SDDL) {
        Status::DoesNotHold
    } else {
        Status::Untestable
    };
    m.done(Rule::SdSharedAcrossInstances, status)
}

fn sd_released() -> RuleResult {
    let mut m = Measure::new();
    let name = PipeName::unique("ph-probe-release");
    let first = ServerOptions::new().security(SecuritySpec::Sddl(OPEN_SDDL.into())).create(&name);
    m.note(format!("instance with {OPEN_SDDL:?} {}, then closed", describe(&first)));
    drop(first);
    let again = match ServerOptions::new().security(SecuritySpec::Sddl(OTHER_SDDL.into())).create(&name) {
        Ok(s) => s,
        Err(e) => {
            m.note(format!("re-creating the name failed: {e}"));
            return m.done(Rule::SdReleasedWithLastInstance, Status::Untestable);
        }
    };
    let sd = again.security();
    m.note(format!("new first instance asked for {OTHER_SDDL:?}; it reads {}", sddl_of(&sd)));
    let got = sd.ok().and_then(|s| s.dacl_sddl().ok().flatten());
    let status = if got.is_some() && got == canonical_dacl(OTHER_SDDL) {
        Status::Holds
    } else if got.is_some() && got == canonical_dacl(OPEN_SDDL) {
        Status::DoesNotHold
    } else {
        Status::Untestable
    };
    m.done(Rule::SdReleasedWithLastInstance, status)
}

fn impersonation_requires_read() -> RuleResult {
    let mut m = Measure::new();
    let name = PipeName::unique("ph-probe-imp-read");
    let (server, _client) = match connected_pair(&name, Some(Sqos::level(ImpersonationLevel::Impersonation)), false) {
        Ok(p) => p,
        Err(e) => {
            m.note(format!("connecting a client failed: {e}"));
            return m.done(Rule::ImpersonationRequiresRead, Status::Untestable);
        }
    };
    let imp = server.impersonate();
    m.note(format!("client wrote 1 byte, server has not read; ImpersonateNamedPipeClient {}", describe(&imp)));
    let status = match &imp {
        Ok(guard) => {
            m.note(format!(
                "the thread token then reads {}",
                guard.info().map_or_else(|e| e.to_string(), |i| format!("user {}, {:?}", i.user, i.kind))
            ));
            Status::DoesNotHold
        }
        Err(e) if e.os_code() == Some(OsCode::CANNOT_IMPERSONATE) => Status::Holds,
        Err(_) => Status::Untestable,
    };
    drop(imp);
    m.done(Rule::ImpersonationRequiresRead, status)
}

fn level_seen(level: ImpersonationLevel) -> Result<Option<ImpersonationLevel>> {
    let name = PipeName::unique("ph-probe-sqos");
    let (server, _client) = connected_pair(&name, Some(Sqos::level(level)), true)?;
    let guard = server.impersonate()?;
    Ok(guard.info()?.impersonation_level())
}

fn sqos_honoured() -> RuleResult {
    let mut m = Measure::new();
    let mut all = true;
    let mut any_error = false;
    for asked in [ImpersonationLevel::Identification, ImpersonationLevel::Impersonation] {
        match level_seen(asked) {
            Ok(got) => {
                m.note(format!("client SQOS {asked:?}: server's thread token is {got:?}"));
                all &= got == Some(asked);
            }
            Err(e) => {
                m.note(format!("client SQOS {asked:?}: {e}"));
                any_error = true;
            }
        }
    }
    let status = if any_error {
        Status::Untestable
    } else if all {
        Status::Holds
    } else {
        Status::DoesNotHold
    };
    m.done(Rule::SqosLevelHonoured, status)
}

fn distinct_identity() -> RuleResult {
    let mut m = Measure::new();
    let own = Token::current_process().and_then(|t| t.info()).map(|i| i.user);
    let anon = Token::anonymous();
    let anon_user =
        anon.as_ref().map_err(|e| e.to_string()).and_then(|t| t.info().map(|i| i.user).map_err(|e| e.to_string()));
    m.note(format!(
        "harness user {}; anonymous token user {}",
        own.as_deref().unwrap_or("?"),
        anon_user.as_deref().unwrap_or_else(|e| e)
    ));
    let (Ok(own), Ok(anon), Ok(anon_user)) = (own, anon, anon_user) else {
        return m.done(Rule::DistinctIdentityReachesServer, Status::Untestable);
    };
    if anon_user == own {
        m.note("the anonymous token carries the harness's own user: no second identity exists here");
        return m.done(Rule::DistinctIdentityReachesServer, Status::DoesNotHold);
    }
    let name = PipeName::unique("ph-probe-identity");
    let seen = (|| -> Result<String> {
        let mut server = ServerOptions::new().create(&name)?;
        let mut client = {
            let _as_anon = anon.impersonate_on_this_thread()?;
            ClientOptions::new().sqos(Some(Sqos::level(ImpersonationLevel::Impersonation))).open(&name)?
        };
        server.connect(IO)?;
        client.write_all(b"!", IO)?;
        server.read(&mut [0u8; 1], IO)?;
        let guard = server.impersonate()?;
        Ok(guard.info()?.user)
    })();
    let seen_text = match &seen {
        Ok(user) => user.clone(),
        Err(e) => format!("nothing: {e}"),
    };
    m.note(format!("client opened the pipe while impersonating the anonymous token; the server, impersonating it, sees {seen_text}"));
    let status = match seen {
        Ok(u) if u == anon_user => Status::Holds,
        Ok(_) => Status::DoesNotHold,
        Err(_) => Status::Untestable,
    };
    m.done(Rule::DistinctIdentityReachesServer, status)
}

fn restricted_token() -> RuleResult {
    let mut m = Measure::new();
    const ADMINS: &str = "S-1-5-32-544";
    let r = (|| -> Result<Option<(bool, bool, bool)>> {
        let me = Token::current_process()?;
        if !me.info()?.has_enabled_group(ADMINS) {
            return Ok(None);
        }
        let restricted = me.restricted()?;
        let deny_only = restricted.info()?.groups.iter().any(|g| g.sid == ADMINS && g.deny_only);
        let sd = SecurityDescriptor::from_sddl("O:SYG:SYD:P(A;;GA;;;BA)")?;
        let read = 0x0012_0089; // FILE_GENERIC_READ
        Ok(Some((me.access_check(&sd, read)?, restricted.access_check(&sd, read)?, deny_only)))
    })();
    let status = match r {
        Ok(None) => {
            m.note("the harness's token has no enabled BUILTIN\\Administrators group to make deny-only");
            Status::Untestable
        }
        Ok(Some((full, restricted, deny_only))) => {
            m.note(format!("AccessCheck(FILE_GENERIC_READ) against \"O:SYG:SYD:P(A;;GA;;;BA)\": own token granted={full}, restricted token granted={restricted}; Administrators deny-only in the restricted token: {deny_only}"));
            if full && !restricted && deny_only {
                Status::Holds
            } else if full {
                Status::DoesNotHold
            } else {
                Status::Untestable
            }
        }
        Err(e) => {
            m.note(format!("measurement failed: {e}"));
            Status::Untestable
        }
    };
    m.done(Rule::RestrictedTokenHonoured, status)
}

fn integrity_settable() -> RuleResult {
    let mut m = Measure::new();
    let r = (|| -> Result<(Option<IntegrityLevel>, Option<IntegrityLevel>)> {
        let me = Token::current_process()?;
        let before = me.info()?.integrity;
        let low = me.low_integrity()?;
        Ok((before, low.info()?.integrity))
    })();
    let status = match r {
        Ok((before, after)) => {
            m.note(format!("own token integrity {before:?}; after SetTokenInformation(TokenIntegrityLevel, Low) the copy reads {after:?}"));
            if after == Some(IntegrityLevel::Low) {
                Status::Holds
            } else {
                Status::DoesNotHold
            }
        }
        Err(e) => {
            m.note(format!("measurement failed: {e}"));
            Status::Untestable
        }
    };
    m.done(Rule::IntegrityLevelSettable, status)
}

fn logon_checks() -> RuleResult {
    let mut m = Measure::new();
    let user = format!("pipe-harness-no-such-user-{}", std::process::id());
    let r = Token::logon(&user, ".", "not-the-password");
    m.note(format!("LogonUserW(.\\{user}, a wrong password) {}", describe(&r)));
    let status = match &r {
        Ok(_) => Status::DoesNotHold,
        Err(e) if e.os_code().is_some() => Status::Holds,
        Err(_) => Status::Untestable,
    };
    m.done(Rule::LogonChecksCredentials, status)
}

fn sessions_real() -> RuleResult {
    let mut m = Measure::new();
    let own = session_of(std::process::id());
    let target = if own == Some(0) { 1 } else { 0 };
    match enable_privilege("SeTcbPrivilege") {
        Ok(true) => m.note("SeTcbPrivilege enabled on the harness's token"),
        Ok(false) => {
            m.note("the harness does not hold SeTcbPrivilege (run as LocalSystem to measure sessions)");
            return m.done(Rule::SessionIdsReal, Status::Untestable);
        }
        Err(e) => {
            m.note(format!("enabling SeTcbPrivilege failed: {e}"));
            return m.done(Rule::SessionIdsReal, Status::Untestable);
        }
    }
    let token = Token::current_process().and_then(|t| t.in_session(target));
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            m.note(format!("moving a token from session {own:?} to {target} failed: {e}"));
            return m.done(Rule::SessionIdsReal, Status::Untestable);
        }
    };
    let read_back = token.info().map(|i| i.session_id);
    m.note(format!("own session {own:?}; token set to session {target} reads back {read_back:?}"));
    if read_back.as_ref().ok() != Some(&target) {
        return m.done(Rule::SessionIdsReal, Status::DoesNotHold);
    }
    let system = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    let spec = ProcessSpec::new(format!(r"{system}\system32\cmd.exe"), ["/c", "ping -n 3 127.0.0.1 >NUL"]);
    let status = match spawn(&spec, Some(&token)) {
        Ok(mut child) => {
            let s = session_of(child.id());
            m.note(format!("cmd.exe started with that token runs in session {s:?}"));
            let _ = child.kill();
            if s == Some(target) {
                Status::Holds
            } else {
                Status::DoesNotHold
            }
        }
        Err(e) => {
            m.note(format!("starting a process with that token failed: {e}"));
            Status::Untestable
        }
    };
    m.done(Rule::SessionIdsReal, status)
}

fn remote_rejected() -> RuleResult {
    let mut m = Measure::new();
    let open_remote = |reject: bool| -> (Result<PipeServer>, Result<PipeClient>) {
        let name = PipeName::unique("ph-probe-remote");
        let server = ServerOptions::new().reject_remote_clients(reject).create(&name);
        let client = ClientOptions::new().open(&name.via_host("localhost"));
        (server, client)
    };
    let (control_server, control) = open_remote(false);
    m.note(format!(
        "control: instance without PIPE_REJECT_REMOTE_CLIENTS {}, open via \\\\localhost\\pipe\\ {}",
        describe(&control_server),
        describe(&control)
    ));
    if control.is_err() {
        m.note("no network path to a local pipe here (no SMB loopback), so a remote client cannot be made");
        return m.done(Rule::RemoteClientsRejected, Status::Untestable);
    }
    let (_server, flagged) = open_remote(true);
    m.note(format!("instance with PIPE_REJECT_REMOTE_CLIENTS: open via \\\\localhost\\pipe\\ {}", describe(&flagged)));
    let status = if flagged.is_ok() { Status::DoesNotHold } else { Status::Holds };
    m.done(Rule::RemoteClientsRejected, status)
}

fn enumeration() -> RuleResult {
    let mut m = Measure::new();
    let name = PipeName::unique("ph-probe-list");
    let made = (|| -> Result<(PipeServer, PipeServer)> {
        Ok((ServerOptions::new().create(&name)?, ServerOptions::new().create(&name)?))
    })();
    if let Err(e) = made {
        m.note(format!("creating two instances failed: {e}"));
        return m.done(Rule::PipeEnumeration, Status::Untestable);
    }
    let status = match super::query::list_pipes() {
        Ok(list) => match list.iter().find(|e| e.name == name.name()) {
            Some(e) => {
                m.note(format!("listed {} pipes; {} appears with {} instances", list.len(), name.name(), e.instances));
                if e.instances == 2 {
                    Status::Holds
                } else {
                    Status::DoesNotHold
                }
            }
            None => {
                m.note(format!("listed {} pipes, but not {} (2 instances open)", list.len(), name.name()));
                Status::DoesNotHold
            }
        },
        Err(e) => {
            m.note(format!("listing failed: {e}"));
            Status::DoesNotHold
        }
    };
    m.done(Rule::PipeEnumeration, status)
}

fn job_limits() -> RuleResult {
    let mut m = Measure::new();
    let status = match super::process::measure_job_limits() {
        Ok((processes, memory, notes)) => {
            for n in notes {
                m.note(n);
            }
            if processes && memory {
                Status::Holds
            } else {
                m.note("the server under test's memory and process limits are not enforced here");
                Status::DoesNotHold
            }
        }
        Err(e) => {
            m.note(format!("the measurement failed: {e}"));
            Status::Untestable
        }
    };
    m.done(Rule::JobLimitsEnforced, status)
}

/// How long a flush must stay pending, with nothing read, to count as waiting for the reader.
/// A flush that does not wait returns in microseconds; a loaded machine only makes a waiting
/// one look more so.
const FLUSH_WINDOW: Duration = Duration::from_millis(100);

/// Does a flush on the client's end wait until the server has read everything written? Done
/// the way the live fuzzer's cases need it: the client opens the instance and writes before the
/// server has called `ConnectNamedPipe` (a client that closed then would lose what it wrote),
/// flushes, and the flush must still be pending while the server has read nothing and while it
/// has read only part, and return once it has read the rest.
fn flush_waits() -> RuleResult {
    let mut m = Measure::new();
    let name = PipeName::unique("ph-probe-flush");
    let r = (|| -> Result<(PipeServer, PipeClient)> {
        let server = ServerOptions::new().create(&name)?;
        let mut client = ClientOptions::new().open(&name)?;
        client.write_all(b"ab", IO)?;
        Ok((server, client))
    })();
    let (mut server, client) = match r {
        Ok(p) => p,
        Err(e) => {
            m.note(format!("a client opening {name} and writing 2 bytes failed: {e}"));
            return m.done(Rule::FlushWaitsForReader, Status::Untestable);
        }
    };
    m.note(format!("a client opened {name} and wrote 2 bytes before the server's ConnectNamedPipe"));
    let flush = match super::flush::FlushWorker::start(&client) {
        Ok(f) => f,
        Err(e) => {
            m.note(format!("starting the flush failed: {e}"));
            return m.done(Rule::FlushWaitsForReader, Status::Untestable);
        }
    };
    let mut status = Status::Holds;
    if flush.wait(FLUSH_WINDOW) {
        m.note(format!(
            "FlushFileBuffers on the client's end returned before the server read anything: {:?}",
            flush.finish()
        ));
        return m.done(Rule::FlushWaitsForReader, Status::DoesNotHold);
    }
    m.note(format!("nothing read: the client's flush still pending after {} ms", FLUSH_WINDOW.as_millis()));
    let mut one = [0u8; 1];
    let partly = server.connect(IO).and_then(|()| server.read(&mut one, IO));
    m.note(format!("the server's ConnectNamedPipe and a 1-byte read {}", describe(&partly)));
    if partly.is_err() {
        status = Status::Untestable;
    } else if flush.wait(FLUSH_WINDOW) {
        m.note("the flush returned with 1 of the 2 bytes still unread");
        status = Status::DoesNotHold;
    } else {
        m.note(format!("1 of 2 bytes read: still pending after {} ms", FLUSH_WINDOW.as_millis()));
        let rest = server.read(&mut one, IO);
        m.note(format!("the server read the second byte: {}", describe(&rest)));
        if rest.is_err() {
            status = Status::Untestable;
        } else if flush.wait(IO) {
            m.note("the flush then returned");
        } else {
            m.note(format!("the flush had not returned {} s after the server read everything", IO.as_secs()));
            status = Status::DoesNotHold;
        }
    }
    let ended = flush.cancel();
    m.note(format!("the flush's outcome: {ended:?}"));
    if status == Status::Holds && ended != super::flush::Flushed::Read {
        status = Status::DoesNotHold;
    }
    m.done(Rule::FlushWaitsForReader, status)
}

/// Measures every rule on the running machine.
pub fn run() -> ProbeReport {
    let user = Token::current_process().and_then(|t| t.info()).map(|i| i.user).ok();
    let platform = PlatformInfo {
        os: "windows".into(),
        wine_version: wine_version(),
        user,
        session_id: session_of(std::process::id()),
    };
    let mut results: Vec<RuleResult> = Rule::WINDOWS
        .into_iter()
        .map(|rule| match rule {
            Rule::FirstInstanceFlagEnforced => first_instance_flag(),
            Rule::ClientOpenDaclEnforced => client_open_dacl(),
            Rule::InstanceCreateDaclEnforced => instance_create_dacl(),
            Rule::NullSdGetsDefaultDacl => null_sd_default_dacl(),
            Rule::SdSharedAcrossInstances => sd_shared(),
            Rule::SdReleasedWithLastInstance => sd_released(),
            Rule::ImpersonationRequiresRead => impersonation_requires_read(),
            Rule::SqosLevelHonoured => sqos_honoured(),
            Rule::DistinctIdentityReachesServer => distinct_identity(),
            Rule::RestrictedTokenHonoured => restricted_token(),
            Rule::IntegrityLevelSettable => integrity_settable(),
            Rule::LogonChecksCredentials => logon_checks(),
            Rule::SessionIdsReal => sessions_real(),
            Rule::RemoteClientsRejected => remote_rejected(),
            Rule::PipeEnumeration => enumeration(),
            Rule::JobLimitsEnforced => job_limits(),
            Rule::FlushWaitsForReader => flush_waits(),
            _ => unreachable!("Rule::WINDOWS holds only Windows rules"),
        })
        .collect();
    results.extend(crate::rules::not_applicable(&Rule::UNIX, "a Unix-socket rule; this is Windows"));
    ProbeReport { schema_version: 1, platform, results }
}

/// The probe of this machine, measured once per process (the first call runs [`run`]).
pub fn measured() -> &'static ProbeReport {
    static MEASURED: std::sync::OnceLock<ProbeReport> = std::sync::OnceLock::new();
    MEASURED.get_or_init(run)
}
