//! How the harness drives the bundled fixtures (`fixtures/`): the target and the policy their
//! owner would write for each. Used by `pipe-harness demo` and by the matrix tests, so both
//! judge the fixtures the same way.

use pipe_harness_core::engine::{ClientProgram, Exchange, FramingSpec, Policy, Readiness, Target};
use pipe_harness_core::identity::Identity;
use pipe_harness_core::protection::Protection;
use std::path::Path;

/// The uid the Unix fixtures run as.
pub const UNIX_SERVICE_UID: u32 = 61000;
/// The uid a Unix fixture's policy denies.
pub const UNIX_DENIED_UID: u32 = 61001;
/// The DACL the Windows fixtures' policy asks for: LocalSystem and the owner.
pub const OWNER_ONLY_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;OW)";

fn exchanges(t: &mut Target) {
    t.readiness = Readiness::Line("READY".into());
    // The framing-bugs fixtures only echo.
    let pong: &[u8] = if t.name.ends_with("framing-bugs") { b"PING" } else { b"PONG" };
    t.ping = Some(Exchange { request: b"PING".to_vec(), success_prefix: pong.to_vec() });
    t.privileged = Some(Exchange { request: b"PRIV bundled".to_vec(), success_prefix: b"OK".to_vec() });
}

/// A Windows named-pipe fixture at `exe`.
pub fn windows_fixture(fixture: &str, exe: &Path) -> (Target, Policy) {
    let mut t = Target::new(fixture, exe, "ph-fx-{unique}");
    exchanges(&mut t);
    t.args = match fixture {
        "local-publisher" => vec!["--mapping".into(), "{pipe}".into()],
        _ => vec!["--pipe".into(), "{pipe}".into()],
    };
    t.framing = match fixture {
        "thrift-echo" => FramingSpec::Thrift,
        "length-echo" => FramingSpec::Length { width: 4, little_endian: true },
        "framing-bugs" => FramingSpec::Length { width: 8, little_endian: false },
        _ => FramingSpec::Length { width: 4, little_endian: false },
    };
    if fixture.starts_with("client-") {
        let mut args = vec!["--pipe".to_string(), "{pipe}".to_string()];
        if fixture == "client-checked" {
            // The legitimate server's pid, as the product would know it; a rogue is not it.
            args.extend(["--expect-server-pid".to_string(), "4".to_string()]);
        }
        t.client_under_test = Some(ClientProgram { program: exe.into(), args });
    }
    if fixture == "local-publisher" {
        t.published_in = Some(r"Local\{pipe}".into());
        // Its pipe's name is generated: the ready line names it (`READY \\.\pipe\...`).
        t.readiness = Readiness::LineNamingEndpoint { prefix: "READY".into(), until: String::new() };
    }
    // A service in another session (session 0) must be able to reach each of them.
    let protection = OWNER_ONLY_SDDL.parse().expect("a valid DACL");
    (t, Policy { protection: Some(protection), other_sessions: Some(true), ..Policy::default() })
}

/// A Unix-socket fixture at `exe`: run as [`UNIX_SERVICE_UID`], its socket in `{dir}` (the
/// runtime directory the harness makes for that uid, which the checks do not judge), except
/// `unix-abstract` (an abstract name).
pub fn unix_fixture(fixture: &str, exe: &Path) -> (Target, Policy) {
    unix_fixture_in(fixture, exe, None)
}

/// As [`unix_fixture`], with the socket (of every fixture but `unix-abstract`) in `runtime_dir`
/// when one is given: the directory the product's deployment made (as a service manager makes
/// `RuntimeDirectory=`, or a shared directory), which the checks judge as the product's.
pub fn unix_fixture_in(fixture: &str, exe: &Path, runtime_dir: Option<&Path>) -> (Target, Policy) {
    let endpoint = match (fixture, runtime_dir) {
        ("unix-abstract", _) => "@ph-fx-{unique}".to_string(),
        (_, Some(dir)) => format!("{}/ph-fx-{{unique}}.sock", dir.display()),
        (_, None) => "{dir}/ph-fx-{unique}.sock".to_string(),
    };
    let endpoint = endpoint.as_str();
    let mut t = Target::new(fixture, exe, endpoint);
    exchanges(&mut t);
    if fixture == "unix-framing-bugs" {
        t.framing = FramingSpec::Length { width: 8, little_endian: false };
    }
    t.args = vec!["--socket".into(), "{pipe}".into()];
    t.run_as = Some(Identity::uid(UNIX_SERVICE_UID));
    if fixture.starts_with("unix-client-") {
        // A client under test, told the uid its service runs as (the checked one verifies it).
        let args = ["--socket", "{pipe}", "--server-uid", &UNIX_SERVICE_UID.to_string()].map(String::from).to_vec();
        t.client_under_test = Some(ClientProgram { program: exe.into(), args });
    }
    // A socket for every local user, authorized by SO_PEERCRED, is unix-no-peer-check's design.
    let mode = if matches!(fixture, "unix-no-peer-check" | "unix-one-at-a-time") { 0o666 } else { 0o600 };
    // unix-chmod-before-listen stands for a first plan written for a web server: no protection
    // named yet (its 0666 is its design).
    let protection = (fixture != "unix-chmod-before-listen").then(|| Protection::unix(mode, UNIX_SERVICE_UID));
    let policy = Policy {
        protection,
        allowed_users: vec![Identity::uid(UNIX_SERVICE_UID)],
        denied_users: vec![Identity::uid(UNIX_DENIED_UID)],
        // A client in another network namespace (sharing the filesystem) must reach it.
        other_sessions: Some(true),
        // The fixtures authorize by SO_PEERCRED (those that forget to are the vulnerable twins).
        peer_check: true,
        ..Policy::default()
    };
    (t, policy)
}

/// The `misbehave` fixture at `exe` in `mode` (see its documentation), on this platform's kind
/// of endpoint, speaking the fixtures' protocol; `extra` arguments follow the mode.
pub fn misbehave_fixture(mode: &str, exe: &Path, extra: &[&str]) -> Target {
    let endpoint = if cfg!(windows) { "ph-mb-{unique}" } else { "{dir}/ph-mb-{unique}.sock" };
    let mut t = Target::new(&format!("misbehave-{mode}"), exe, endpoint);
    exchanges(&mut t);
    t.privileged = None;
    t.args = ["--endpoint", "{pipe}", "--mode", mode].iter().chain(extra).map(|a| a.to_string()).collect();
    t
}
