//! Servers this project did not write, audited with the first plan a new user writes for each
//! (no optional keys): socat, OpenSSH's ssh-agent, Python's `socketserver.UnixStreamServer`
//! after the usual `os.unlink`, and Node's `net.Server`. Every audit gives an answer (exit 0 or
//! 1, never 2: a check the plan does not configure is not applicable, not an error), and the
//! verdict on taking over a live socket follows each server's documented behaviour:
//!
//! - socat `UNIX-LISTEN:PATH` fails with "Address already in use" when PATH exists (socat(1):
//!   `unlink-early` is what removes it); with `unlink-early` it takes over whatever is there.
//! - ssh-agent `-D -a PATH` binds PATH and fails when it exists.
//! - Python's `UnixStreamServer` after `os.unlink(path)` (the idiom of its documentation's
//!   examples) removes a live socket at its path.
//! - Node's `server.listen(path)` fails with `EADDRINUSE` on an existing path.
//! - dbus-daemon `--address=unix:path=PATH` removes whatever is at PATH before it binds, and
//!   takes over a live socket; it needs a real account (it asks the password database who it
//!   runs as), here Debian's `messagebus`, named in the plan as a uid would be.
//!
//!
//! And a client this project did not write: OpenSSH's `ssh-add -l`, pointed at an agent socket
//! by `SSH_AUTH_SOCK`, sends its request to whoever serves that socket (it leaves the check to
//! the agent), so `client_verifies_server` reports the bytes it sent to a server of another uid.
//!
//! `ci/setup` installs the packages (socat, openssh-client, dbus); Python and Node come with
//! the machine. Run as root (the identities of the other scenarios).

#![cfg(unix)]

use pipe_harness::engine::report::AuditReport;
use std::path::{Path, PathBuf};

fn program(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .unwrap_or_else(|| panic!("{name} is not installed: run ci/setup"));
    std::fs::canonicalize(found).expect("canonical path")
}

fn audit(name: &str, program: &Path, args: &[&str]) -> AuditReport {
    audit_plan(name, program, args, &format!("endpoint = \"{{dir}}/{name}-{{unique}}.sock\"\n"))
}

/// Audits a first plan: name, program, args, and `rest` (the endpoint, and any key given).
fn audit_plan(name: &str, program: &Path, args: &[&str], rest: &str) -> AuditReport {
    let dir =
        tempfile::Builder::new().prefix(&format!("ph-third-party-{name}-")).tempdir().expect("scratch dir").keep();
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let plan = format!(
        "[target]\nname = \"{name}\"\nprogram = \"{}\"\nargs = [{}]\n{rest}",
        program.display(),
        args.join(", ")
    );
    let file = dir.join("plan.toml");
    std::fs::write(&file, plan).expect("plan");
    let (target, policy) = pipe_harness::engine::plan::load(&file).expect("the first plan loads");
    let backend = pipe_harness::native_backend().expect("backend");
    let report = pipe_harness::scenarios::audit(&backend, &target, &policy, 7, &[]);
    std::fs::remove_dir_all(&dir).ok();
    report
}

fn verdict<'a>(r: &'a AuditReport, scenario: &str) -> &'a str {
    r.results.iter().find(|c| c.scenario == scenario).map_or("missing", |c| c.verdict.kind())
}

fn check(name: &str, r: &AuditReport, takes_over_a_live_socket: bool) {
    let text = r.to_human();
    assert_ne!(r.exit_code(), 2, "{name}: a first plan gives an answer, not an error:\n{text}");
    assert!(r.results.iter().any(|c| c.verdict.kind() == "not_applicable"), "{name}: {text}");
    let want = if takes_over_a_live_socket { "fail" } else { "pass" };
    assert_eq!(verdict(r, "first_instance_defence"), want, "{name}:\n{text}");
    // `{dir}` is a directory the harness made for the run: its directory is never judged, so a
    // first plan gets no finding the server did not cause (issue 24): the restart gap and the
    // directory's create rights are not applicable, and say which endpoint would make them run.
    assert_eq!(verdict(r, "instance_squatting"), "pass", "{name}:\n{text}");
    assert_eq!(verdict(r, "instance_create_rights"), "not_applicable", "{name}:\n{text}");
    if !takes_over_a_live_socket {
        assert_eq!(
            r.exit_code(),
            0,
            "{name}: a first plan for a server that does nothing wrong has no finding:\n{text}"
        );
    }
}

#[test]
fn socat_refuses_a_taken_path_unless_told_to_unlink_it() {
    let socat = program("socat");
    check("socat", &audit("socat", &socat, &["UNIX-LISTEN:{pipe},fork", "EXEC:/bin/cat"]), false);
    let r = audit("socat-unlink-early", &socat, &["UNIX-LISTEN:{pipe},fork,unlink-early", "EXEC:/bin/cat"]);
    check("socat unlink-early", &r, true);
}

#[test]
fn ssh_agent_refuses_a_taken_path() {
    check("ssh-agent", &audit("ssh-agent", &program("ssh-agent"), &["-D", "-a", "{pipe}"]), false);
}

#[test]
fn pythons_unix_stream_server_after_unlink_takes_over_a_live_socket() {
    let script = "import os, socketserver, sys\n\
path = sys.argv[1]\n\
class Echo(socketserver.StreamRequestHandler):\n    def handle(self):\n        self.wfile.write(self.rfile.read())\n\
try:\n    os.unlink(path)\nexcept OSError:\n    pass\n\
socketserver.UnixStreamServer(path, Echo).serve_forever()\n";
    let r = audit("python-unix", &program("python3"), &["-c", script, "{pipe}"]);
    check("python UnixStreamServer", &r, true);
}

#[test]
fn nodes_net_server_refuses_a_taken_path() {
    let script = "require('net').createServer(s => s.pipe(s)).listen(process.argv[1])";
    check("node net.Server", &audit("node-net", &program("node"), &["-e", script, "{pipe}"]), false);
}

#[test]
fn dbus_daemon_as_its_own_account_takes_over_a_live_socket() {
    let r = audit_plan(
        "dbus-daemon",
        &program("dbus-daemon"),
        &["--session", "--nofork", "--address=unix:path={pipe}"],
        "endpoint = \"{private_dir:messagebus}/bus-{unique}\"\nrun_as = \"messagebus\"\n",
    );
    let text = r.to_human();
    assert_ne!(r.exit_code(), 2, "started as a real account, it is judged:\n{text}");
    assert_eq!(verdict(&r, "first_instance_defence"), "fail", "{text}");
    assert!(text.contains("reached the server, 0 reached the squatting socket"), "it took the socket over:\n{text}");
    // Its socket is in a directory only messagebus may write: nobody else takes the name.
    assert_eq!(verdict(&r, "instance_squatting"), "pass", "{text}");
}

/// A server the harness did not start (a system's service): `attach` audits it where it runs;
/// the checks that must start or restart it are not applicable, and say so; it is left running.
#[test]
fn a_running_socat_is_audited_by_attaching_and_left_running() {
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::Builder::new().prefix("ph-attach-").tempdir().expect("scratch dir").keep();
    let sock = dir.join("svc.sock");
    let mut socat = Running(
        std::process::Command::new(program("socat"))
            .arg(format!("UNIX-LISTEN:{},fork", sock.display()))
            .arg("EXEC:/bin/cat")
            .spawn()
            .expect("socat"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(std::time::Instant::now() < deadline, "socat never listened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let plan = dir.join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "[target]\nname = \"socat-service\"\nattach = \"{}\"\n\n[policy]\nother_sessions = true\n",
            sock.display()
        ),
    )
    .expect("plan");
    let (target, policy) = pipe_harness::engine::plan::load(&plan).expect("an attach plan loads");
    let backend = pipe_harness::native_backend().expect("backend");
    let r = pipe_harness::scenarios::audit(&backend, &target, &policy, 7, &[]);
    let text = r.to_human();
    assert_eq!(r.exit_code(), 0, "{text}");
    assert_eq!(verdict(&r, "cross_session_visibility"), "pass", "it ran against the running server:\n{text}");
    for needs_a_start in ["instance_squatting", "first_instance_defence", "framing_robustness"] {
        assert_eq!(verdict(&r, needs_a_start), "not_applicable", "{text}");
    }
    assert!(text.contains("attaches to a server already running"), "{text}");
    assert!(socat.0.try_wait().expect("status").is_none(), "the service is left running");
    assert!(std::os::unix::net::UnixStream::connect(&sock).is_ok(), "and still serving");
    drop(socat);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ssh_add_sends_its_request_to_an_agent_socket_of_any_uid() {
    let env = program("env");
    let ssh_add = program("ssh-add");
    let rest = format!(
        "endpoint = \"{{dir}}/agent-{{unique}}.sock\"\nrun_as = \"0\"\nclient = {{ program = \"{}\", args = [\"SSH_AUTH_SOCK={{pipe}}\", \"{}\", \"-l\"] }}\n[policy]\ndenied_users = [\"61001\"]\n",
        env.display(),
        ssh_add.display()
    );
    let r = audit_plan("ssh-add", Path::new("/bin/true"), &[], &rest);
    let text = r.to_human();
    if !pipe_harness::unix::creds::is_root() {
        assert_eq!(verdict(&r, "client_verifies_server"), "unverifiable", "{text}");
        return;
    }
    assert_eq!(verdict(&r, "client_verifies_server"), "fail", "{text}");
    // SSH2_AGENTC_REQUEST_IDENTITIES: a 4-byte length (1) and the message type 11.
    assert!(text.contains("server as uid 61001: the client sent \"\\x00\\x00\\x00\\x01...\" (5 bytes)"), "{text}");
}
