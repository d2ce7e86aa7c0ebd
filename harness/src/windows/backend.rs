//! The [`Backend`] for Windows named pipes: the verbs the scenarios use, on the platform layer.

use super::pipe::{
    ClientOptions, PipeClient, PipeName, PipeServer, PipeType, ReadMode, SecuritySpec, ServerOptions, Sqos,
};
use crate::backend::{Backend, Conn, ConnectSpec, ListenSpec, Listener, PeerIdentity, PipeShape, SessionReach};
use crate::endpoint::{Endpoint, EndpointTemplate, Part};
use crate::error::Result;
use crate::protection::Protection;
use crate::rules::ProbeReport;
use std::time::Duration;

/// Named pipes on this machine, with the probe's measurements.
#[derive(Debug)]
pub struct WindowsBackend {
    probe: ProbeReport,
}

impl WindowsBackend {
    /// The backend, with the platform's probe (about a second, measured once per process:
    /// [`probe::measured`](super::probe::measured)).
    pub fn new() -> Self {
        WindowsBackend { probe: super::probe::measured().clone() }
    }

    /// A backend with a probe report already made (tests, replays).
    pub fn with_probe(probe: ProbeReport) -> Self {
        WindowsBackend { probe }
    }
}

impl Default for WindowsBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn name_of(endpoint: &str) -> Result<PipeName> {
    match Endpoint::pipe(endpoint) {
        Endpoint::Pipe { server, name } if server != "." => PipeName::from_path(&format!(r"\\{server}\pipe\{name}")),
        Endpoint::Pipe { name, .. } => PipeName::new(&name),
        other => Err(crate::Error::invalid("pipe name", other.to_string())),
    }
}

impl Conn for PipeClient {
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        self.write_all(data, timeout)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        match self.read(buf, timeout) {
            Ok(r) => Ok(r.len),
            Err(e) if e.os_code() == Some(crate::OsCode::BROKEN_PIPE) => Ok(0),
            Err(e) => Err(e),
        }
    }
    fn protection(&self) -> Result<Protection> {
        match self.security()?.dacl_sddl()? {
            Some(sddl) => Protection::parse(&sddl),
            None => Ok(Protection::NullDacl),
        }
    }
    fn server_pid(&self) -> Result<u32> {
        self.server_process_id()
    }
    fn shape(&self) -> Result<PipeShape> {
        let info = super::pipe::client_info(self)?;
        Ok(PipeShape { message: info.message, max_instances: info.max_instances })
    }
}

/// The harness's own instance (an attacker's, a rogue server's).
#[derive(Debug)]
pub struct WinListener {
    server: PipeServer,
}

impl Listener for WinListener {
    fn accept(&mut self, timeout: Duration) -> Result<()> {
        self.server.connect(timeout)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        match self.server.read(buf, timeout) {
            Ok(r) => Ok(r.len),
            Err(e) if e.os_code() == Some(crate::OsCode::BROKEN_PIPE) => Ok(0),
            Err(e) => Err(e),
        }
    }
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        self.server.write_all(data, timeout)
    }
    fn peer_identity(&self) -> Result<PeerIdentity> {
        match self.server.impersonate() {
            Ok(guard) => {
                let info = guard.info()?;
                Ok(PeerIdentity { level: info.impersonation_level(), user: Some(info.user) })
            }
            Err(e) if e.os_code() == Some(crate::OsCode::CANNOT_IMPERSONATE) => {
                Ok(PeerIdentity { level: None, user: None })
            }
            Err(e) => Err(e),
        }
    }
}

impl Backend for WindowsBackend {
    type Listener = WinListener;
    type Client = PipeClient;

    fn server_calls(&self, target: &crate::target::Target, endpoint: &str) -> Option<Result<crate::calls::CallTrace>> {
        self.probe().platform.wine_version.as_ref()?;
        if target.managed.is_some() || target.attach.is_some() {
            return None;
        }
        Some(super::trace::trace_server(self, target, endpoint))
    }

    fn client_calls(&self, target: &crate::target::Target, endpoint: &str) -> Option<Result<crate::calls::CallTrace>> {
        self.probe().platform.wine_version.as_ref()?;
        Some(super::trace::trace_client(self, target, endpoint))
    }

    fn platform(&self) -> &'static str {
        "windows"
    }

    fn probe(&self) -> &ProbeReport {
        &self.probe
    }

    /// `{unique}`: a name no other run uses. Pipe names have no directories: `{dir}` and
    /// `{private_dir:...}` are left as written, so the create names them.
    fn endpoint(&self, template: &EndpointTemplate) -> String {
        let unique = PipeName::unique("ph");
        let filled: std::result::Result<String, std::convert::Infallible> = template.fill(|part| {
            Ok(match part {
                Part::Unique => unique.name().to_string(),
                Part::Dir => "{dir}".to_string(),
                Part::PrivateDir(who) => format!("{{private_dir:{who}}}"),
                _ => String::new(),
            })
        });
        filled.unwrap_or_else(|never| match never {})
    }

    fn listen(&self, endpoint: &str, spec: &ListenSpec) -> Result<WinListener> {
        if let Some(user) = &spec.as_user {
            return Err(crate::Error::Unsupported(format!(
                "creating a pipe instance as {user}: the pipe namespace has no directories, a free name is anyone's"
            )));
        }
        let mut opts = ServerOptions::new();
        if let Some(shape) = spec.shape {
            if shape.message {
                opts = opts.pipe_type(PipeType::Message).read_mode(ReadMode::Message);
            }
            opts = opts.max_instances(shape.max_instances.clamp(1, 255));
        }
        if let Some(protection) = &spec.protection {
            opts = opts.security(SecuritySpec::Sddl(protection.to_string()));
        } else if spec.open_to_all {
            opts = opts.security(SecuritySpec::Sddl("D:(A;;GA;;;WD)".into()));
        }
        Ok(WinListener { server: opts.create(&name_of(endpoint)?)? })
    }

    fn connect(&self, endpoint: &str, spec: &ConnectSpec) -> Result<PipeClient> {
        let mut name = name_of(endpoint)?;
        if spec.remote {
            name = name.via_host("localhost");
        }
        ClientOptions::new()
            .sqos(spec.level.map(Sqos::level))
            .read_control(spec.read_protection)
            .open_wait(&name, spec.timeout)
    }

    /// The target starts suspended, so that it cannot start a helper before it is in the
    /// harness's job (where its helpers would escape the kill-on-close); [`Backend::adopt`]
    /// puts it in the job and then lets it run.
    fn endpoint_path(&self, endpoint: &str) -> String {
        if endpoint.starts_with(r"\\") {
            endpoint.to_string()
        } else {
            format!(r"\\.\pipe\{endpoint}")
        }
    }

    fn settle_before_close(&self) -> Duration {
        // Returns early when the server answers or hangs up; a cut frame waits it out.
        Duration::from_millis(50)
    }

    /// Where the probe measured that a client's flush waits for the reader
    /// (`flush_waits_for_reader`), each connection closes as soon as the server has read it
    /// ([`super::flush::close_when_read`]); elsewhere, and for more connections than one wait
    /// can watch, the settle of [`Backend::settle_before_close`].
    fn close_when_read(&self, conns: Vec<PipeClient>, timeout: Duration) {
        if self.probe.holds(crate::rules::Rule::FlushWaitsForReader) && conns.len() <= super::flush::MAX_CLIENTS {
            let _ = super::flush::close_when_read(conns, timeout);
            return;
        }
        let mut buf = [0u8; 4096];
        for mut c in conns {
            let _ = c.recv(&mut buf, self.settle_before_close());
        }
    }

    /// Starts the running executable again as the cross-session helper ([`super::helper`]),
    /// with the harness's token moved to another session (`SeTcbPrivilege`, i.e. LocalSystem),
    /// and reads what it could do from its exit code.
    fn reach_from_other_session(&self, endpoint: &str, published_in: Option<&str>) -> Result<SessionReach> {
        let own = super::probe::session_of(std::process::id()).unwrap_or(1);
        let other = if own == 0 { 1 } else { 0 };
        let token = super::token::Token::current_process()?.in_session(other)?;
        super::helper::linked();
        let me = std::env::current_exe()
            .map_err(|e| crate::Error::Unsupported(format!("locating the running executable: {e}")))?;
        let mut spec = super::process::ProcessSpec::new(me, super::helper::FALLBACK_ARGS);
        spec.env.push((super::helper::PIPE_VAR.to_string(), endpoint.to_string()));
        if let Some(m) = published_in {
            spec.env.push((super::helper::PUBLISHED_VAR.to_string(), m.to_string()));
        }
        let mut child = super::process::spawn(&spec, Some(&token))?;
        let code = child.wait(Duration::from_secs(30))?.ok_or_else(|| crate::Error::Timeout {
            context: "the reach helper".into(),
            after: Duration::from_secs(30),
        })?;
        let (found, connected) = super::helper::decode_reach(code)
            .ok_or_else(|| crate::Error::Peer(format!("the reach helper exited with {code}")))?;
        Ok(SessionReach {
            session: format!("session {other} (the harness is in session {own})"),
            found_published: published_in.map(|_| found),
            connected,
            detail: format!("helper {} exit code {code}", spec.program.display()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ListenSpec;

    /// The helper is this very test binary, started again: nothing else need be beside it.
    #[test]
    fn the_cross_session_helper_is_the_running_executable_itself() {
        let backend = WindowsBackend::new();
        let endpoint = backend.endpoint(&"ph-helper-{unique}".parse().expect("template"));
        let _listener = backend.listen(&endpoint, &ListenSpec::default()).expect("listen");
        let reach = backend.reach_from_other_session(&endpoint, Some(r"Local\ph-no-such-mapping")).expect("reach");
        assert!(reach.connected, "{reach:?}");
        assert_eq!(reach.found_published, Some(false), "{reach:?}");
        let me = std::env::current_exe().expect("current exe");
        assert!(reach.detail.contains(&me.display().to_string()), "{reach:?}");
    }
}
