//! `pipe-harness init`: a commented starter plan for a program, from what it does when started.
//!
//! The program is started once, under the harness's supervision, as given; the endpoints it
//! listens on are read from the machine's inventory (the processes that hold them), and its
//! first output lines are kept. From that the plan takes: the endpoint (where the program was
//! given its path in an argument, that argument becomes `{pipe}` and the endpoint a fresh name
//! per run; else the endpoint the program chose itself, as it is), the readiness (a line that
//! names the endpoint, else the endpoint itself), and every optional key commented out with an
//! example, so that the first audit runs what it can and says what the rest would need.

use super::server::ServerUnderTest;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::target::Target;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the program did when it was started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The endpoint it listened on.
    pub endpoint: String,
    /// Its first output lines (stdout and stderr, tagged as the harness keeps them).
    pub output: Vec<String>,
}

/// Starts `program` with `args` and waits at most `wait` for it to listen on an endpoint.
pub fn observe<B: Backend>(backend: &B, program: &Path, args: &[String], wait: Duration) -> Result<Observed> {
    let mut target = Target::new("init", program, "");
    target.args = args.to_vec();
    let mut server = ServerUnderTest::start(backend, &target, "")?;
    let deadline = Instant::now() + wait;
    loop {
        let mine: Vec<String> = crate::inventory::list(false)?
            .into_iter()
            .filter(|e| e.server_pids.contains(&server.pid()))
            .map(|e| e.name)
            .collect();
        if let Some(endpoint) = mine.into_iter().next() {
            let seen = Observed { endpoint, output: server.output() };
            drop(server);
            remove_if_stale(&seen.endpoint);
            return Ok(seen);
        }
        if let Some(t) = server.try_exit() {
            return Err(Error::Peer(format!(
                "{} {} before it listened on anything; its output: {:?}",
                program.display(),
                t.describe(),
                server.final_output(Duration::from_secs(1))
            )));
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                context: format!(
                    "{} listening on an endpoint (it runs, but holds none that the inventory can see; give the endpoint with --endpoint)",
                    program.display()
                ),
                after: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes the socket file the program left at `endpoint` once it is dead (nobody listens
/// there any more), so that its next start, or the audit's, does not find the name taken.
fn remove_if_stale(endpoint: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let path = Path::new(endpoint);
        let socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
        let refused = matches!(std::os::unix::net::UnixStream::connect(path), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
        if socket && refused {
            let _ = std::fs::remove_file(path);
        }
    }
    #[cfg(not(unix))]
    let _ = endpoint;
}

/// A TOML string literal of `s` (basic string, escaped).
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The starter plan for `program` run with `args`, from what it was `seen` doing.
pub fn plan(name: &str, program: &Path, args: &[String], seen: &Observed) -> String {
    let ep = &seen.endpoint;
    let given = args.iter().any(|a| a.contains(ep.as_str()));
    let args_t: Vec<String> = args.iter().map(|a| toml_str(&a.replace(ep.as_str(), "{pipe}"))).collect();
    let endpoint = if !given {
        ep.clone()
    } else if let Some(abs) = ep.strip_prefix('@') {
        format!("@{abs}-{{unique}}")
    } else {
        let file = Path::new(ep).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| name.into());
        let (stem, ext) = file.rsplit_once('.').map_or((file.as_str(), ""), |(s, e)| (s, e));
        let ext = if ext.is_empty() { String::new() } else { format!(".{ext}") };
        format!("{{dir}}/{stem}-{{unique}}{ext}")
    };
    // A stdout line that names the endpoint is a readiness line: its text before the name, up
    // to the first digit (a pid, a time, a counter: what the next run prints differently), so
    // that the plan's own runs get ready.
    let line_before = seen
        .output
        .iter()
        .filter_map(|l| l.strip_prefix("stdout: "))
        .find_map(|l| l.find(ep.as_str()).map(|i| l[..i].to_string()));
    let ready = line_before
        .as_deref()
        .map(|p| p[..p.find(|c: char| c.is_ascii_digit()).unwrap_or(p.len())].trim().to_string())
        .filter(|p| !p.is_empty());
    let varies = line_before.is_some_and(|p| p.contains(|c: char| c.is_ascii_digit()));
    let mut out = String::new();
    out.push_str(&format!(
        "# A starter plan for {}, written by `pipe-harness init` from one run of it.\n",
        program.display()
    ));
    out.push_str(&format!("# It listened on {ep}.\n"));
    if !given {
        out.push_str("# It chose that endpoint itself (no argument names it): the plan uses it as it is, so two runs\n# cannot overlap. If the program takes its endpoint as an argument, put {pipe} there and a\n# template such as \"{dir}/name-{unique}.sock\" below.\n");
    }
    out.push_str("\n[target]\n");
    out.push_str(&format!("name = {}\n", toml_str(name)));
    out.push_str(&format!("program = {}\n", toml_str(&program.display().to_string())));
    out.push_str(&format!("args = [{}]\n", args_t.join(", ")));
    out.push_str(&format!("endpoint = {}\n", toml_str(&endpoint)));
    match &ready {
        Some(prefix) => out.push_str(&format!(
            "ready = {}   # the start of the line it printed before the endpoint{}\n",
            toml_str(&format!("line:{prefix}")),
            if varies { " (up to its first digit: a pid or a time changes)" } else { "" }
        )),
        None if varies => out.push_str(
            "ready = \"endpoint\"   # the line naming its endpoint starts with a pid or a time: ready once a client can connect\n",
        ),
        None => out.push_str(
            "ready = \"endpoint\"   # it printed no line naming its endpoint: ready once a client can connect\n",
        ),
    }
    out.push_str(
        "# framing = \"length:4:be\"            # length:W:be|le, thrift, content-length, lines (for the ping, the privileged request, the fuzzer)\n\
# ping = { request = \"PING\", success = \"PONG\" }          # a request it always answers: hang detection beyond hang-ups\n\
# privileged = { request = \"PRIV x\", success = \"OK\" }    # a request only some clients may make (peer_credentials, impersonation_limits)\n\
# run_as = \"service-account\"             # Unix: start it as this account or uid (the harness must be root)\n\
# create_accounts = [\"service-account\"]  # Unix: accounts to make for the run when missing (deleted after)\n\
# session = [{ send = \"HELLO\", expect = \"WELCOME\" }]  # the opening every connection makes first (the fuzzer)\n\
\n[policy]\n\
# protection = \"mode=0600 uid=0\"         # Windows: a DACL in SDDL, \"D:P(A;;GA;;;SY)(A;;GA;;;OW)\" (dacl_churn)\n\
# allowed_users = [\"61000\"]              # who may make the privileged request (peer_credentials)\n\
# denied_users = [\"61001\"]               # who must be refused (peer_credentials, permission_window, connect_race)\n\
# other_sessions = false                 # must a client in another session reach it? (cross_session_visibility)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_given_as_an_argument_becomes_a_fresh_name_per_run() {
        let seen = Observed {
            endpoint: "/tmp/s/echo.sock".into(),
            output: vec!["stdout: listening on /tmp/s/echo.sock".into()],
        };
        let args = vec!["UNIX-LISTEN:/tmp/s/echo.sock,fork".to_string(), "EXEC:/bin/cat".to_string()];
        let text = plan("socat", Path::new("/usr/bin/socat"), &args, &seen);
        assert!(text.contains("args = [\"UNIX-LISTEN:{pipe},fork\", \"EXEC:/bin/cat\"]"), "{text}");
        assert!(text.contains("endpoint = \"{dir}/echo-{unique}.sock\""), "{text}");
        assert!(text.contains("ready = \"line:listening on\""), "{text}");
        let (t, _) = crate::engine::plan::parse(Path::new("init.toml"), &text).expect("the plan loads");
        assert_eq!(t.args_for("/x.sock", "/x.sock"), ["UNIX-LISTEN:/x.sock,fork", "EXEC:/bin/cat"]);
    }

    #[test]
    fn a_ready_line_is_cut_before_a_pid_or_a_time() {
        let ready = |line: &str| {
            let seen = Observed { endpoint: "/tmp/s/echo.sock".into(), output: vec![format!("stdout: {line}")] };
            let text = plan("socat", Path::new("/usr/bin/socat"), &[], &seen);
            crate::engine::plan::parse(Path::new("init.toml"), &text).expect("the plan loads");
            text.lines().find(|l| l.starts_with("ready = ")).expect("a ready line").to_string()
        };
        // socat -d -d: a date, a time and a pid before the endpoint.
        let socat = ready("2026/12/02 15:10:19 socat[4242] N listening on AF=1 \"/tmp/s/echo.sock\"");
        assert!(socat.starts_with("ready = \"endpoint\""), "{socat}");
        let pid = ready("echo-server pid 4242 listening on /tmp/s/echo.sock");
        assert!(pid.starts_with("ready = \"line:echo-server pid\""), "{pid}");
        assert!(!pid.contains("4242"), "{pid}");
    }

    #[test]
    fn an_endpoint_the_program_chose_is_kept_and_said_so() {
        let seen = Observed { endpoint: "/run/svc.sock".into(), output: vec![] };
        let text = plan("svc", Path::new("/usr/sbin/svc"), &[], &seen);
        assert!(text.contains("endpoint = \"/run/svc.sock\"") && text.contains("chose that endpoint itself"), "{text}");
        assert!(text.contains("ready = \"endpoint\""), "{text}");
        crate::engine::plan::parse(Path::new("init.toml"), &text).expect("the plan loads");
    }
}
