//! The Windows platform layer against real pipes (run under Wine on the Linux machines, or on
//! Windows). Each test uses its own pipe name, so they run in parallel.

#![cfg(windows)]

use pipe_harness::windows::{
    process, query, ClientOptions, ImpersonationLevel, PipeName, PipeServer, PipeType, ReadMode, SecurityDescriptor,
    SecuritySpec, ServerOptions, Sqos, Token,
};
use pipe_harness::{Error, OsCode};
use rstest::rstest;
use std::time::Duration;

const IO: Duration = Duration::from_secs(10);

fn pair(
    name: &PipeName,
    server: ServerOptions,
    client: ClientOptions,
) -> (PipeServer, pipe_harness::windows::PipeClient) {
    let mut s = server.create(name).expect("create");
    let c = client.open(name).expect("open");
    s.connect(IO).expect("connect");
    (s, c)
}

#[test]
fn byte_mode_round_trip_and_both_pids() {
    let name = PipeName::unique("t-byte");
    let (mut s, mut c) = pair(&name, ServerOptions::new(), ClientOptions::new());
    c.write_all(b"hello server", IO).expect("client write");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf, IO).expect("server read").len;
    assert_eq!(&buf[..n], b"hello server");
    s.write_all(b"hello client", IO).expect("server write");
    let n = c.read(&mut buf, IO).expect("client read").len;
    assert_eq!(&buf[..n], b"hello client");
    let me = std::process::id();
    assert_eq!(s.client_process_id().expect("client pid"), me);
    assert_eq!(c.server_process_id().expect("server pid"), me);
    assert_eq!(s.server_process_id().expect("server pid from server"), me);
}

#[test]
fn message_mode_partial_read_reports_more_data() {
    let name = PipeName::unique("t-msg");
    let server = ServerOptions::new().pipe_type(PipeType::Message).read_mode(ReadMode::Message);
    let (mut s, mut c) = pair(&name, server, ClientOptions::new().read_mode(ReadMode::Message));
    let msg: Vec<u8> = (0..100u8).collect();
    c.write_all(&msg, IO).expect("write");
    let mut small = [0u8; 10];
    let first = s.read(&mut small, IO).expect("partial read");
    assert_eq!((first.len, first.more_data), (10, true), "a 10-byte buffer gets ERROR_MORE_DATA");
    let mut rest = [0u8; 200];
    let second = s.read(&mut rest, IO).expect("rest");
    assert_eq!((second.len, second.more_data), (90, false));
    assert_eq!(&rest[..90], &msg[10..]);
    // Whole messages, including an empty one, keep their boundaries.
    c.write_all(&msg, IO).expect("write");
    c.write(b"", IO).expect("empty message");
    c.write(b"tail", IO).expect("write");
    assert_eq!(s.read_message(1000, IO).expect("message"), msg);
    assert_eq!(s.read_message(1000, IO).expect("empty message"), b"");
    assert_eq!(s.read_message(1000, IO).expect("message"), b"tail");
    // A message over the caller's limit is refused, not truncated.
    c.write_all(&msg, IO).expect("write");
    assert!(matches!(s.read_message(50, IO), Err(Error::Peer(_))));
}

#[test]
fn max_instances_gives_pipe_busy_not_access_denied() {
    let name = PipeName::unique("t-busy");
    let opts = ServerOptions::new().max_instances(1);
    let mut only = opts.create(&name).expect("first instance");
    let second = opts.create(&name).expect_err("a second instance beyond max_instances");
    assert_eq!(second.os_code(), Some(OsCode::PIPE_BUSY), "{second}");
    assert!(second.is_pipe_busy() && !second.is_access_denied());
    let _client = ClientOptions::new().open(&name).expect("first client");
    only.connect(IO).expect("connect");
    let busy = ClientOptions::new().open(&name).expect_err("every instance is taken");
    assert_eq!(busy.os_code(), Some(OsCode::PIPE_BUSY), "{busy}");
    let waited = ClientOptions::new().open_wait(&name, Duration::from_millis(200)).expect_err("still busy");
    assert!(waited.is_timeout(), "{waited}");
    let missing = ClientOptions::new().open(&PipeName::unique("t-none")).expect_err("no such pipe");
    assert_eq!(missing.os_code(), Some(OsCode::FILE_NOT_FOUND));
}

#[test]
fn waits_end_at_their_deadline_and_the_pipe_still_works() {
    let name = PipeName::unique("t-deadline");
    let mut s = ServerOptions::new().create(&name).expect("create");
    let err = s.connect(Duration::from_millis(100)).expect_err("no client comes");
    assert!(err.is_timeout(), "{err}");
    let mut c = ClientOptions::new().open(&name).expect("open");
    s.connect(IO).expect("connect after a cancelled connect");
    let err = s.read(&mut [0u8; 4], Duration::from_millis(100)).expect_err("nothing to read");
    assert!(err.is_timeout(), "{err}");
    c.write_all(b"late", IO).expect("write");
    let mut buf = [0u8; 4];
    assert_eq!(s.read(&mut buf, IO).expect("read after a cancelled read").len, 4);
    assert_eq!(&buf, b"late");
}

#[rstest]
#[case("D:P(A;;GA;;;WD)")]
#[case("O:BAG:SYD:PAI(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12019b;;;AU)")]
#[case("O:SYD:(D;;GA;;;AN)(A;;GR;;;WD)")]
fn sddl_round_trips_through_bytes(#[case] sddl: &str) {
    let sd: SecurityDescriptor = sddl.parse().expect("valid SDDL");
    let text = sd.to_sddl().expect("format");
    let again = SecurityDescriptor::from_sddl(&text).expect("reparse");
    assert_eq!(again.to_sddl().expect("format"), text);
    let from_bytes = SecurityDescriptor::from_bytes(sd.as_bytes()).expect("own bytes are valid");
    assert_eq!(from_bytes.to_sddl().expect("format"), text);
}

#[test]
fn bad_descriptors_are_refused_with_what_was_wrong() {
    let err = SecurityDescriptor::from_sddl("D:(Q;;;;;)").expect_err("not SDDL");
    assert!(matches!(err, Error::InvalidInput { what: "SDDL string", .. }), "{err}");
    let err = SecurityDescriptor::from_bytes(&[1, 0, 4, 0x80, 0xff, 0xff, 0, 0]).expect_err("truncated");
    assert!(err.to_string().contains("shorter than the 20-byte header"), "{err}");
    let err = ServerOptions::new().max_instances(0).create(&PipeName::unique("t-bad")).expect_err("0 instances");
    assert!(err.to_string().contains("max_instances"), "{err}");
    assert!(PipeName::new("").is_err() && PipeName::new(&"x".repeat(257)).is_err());
}

#[test]
fn second_instance_shares_the_first_instances_descriptor_read_from_the_client_side() {
    let name = PipeName::unique("t-shared");
    let first_sddl = "D:P(A;;GA;;;WD)";
    let _first = ServerOptions::new().security(SecuritySpec::Sddl(first_sddl.into())).create(&name).expect("first");
    let second = ServerOptions::new()
        .security(SecuritySpec::Sddl("D:P(A;;GA;;;WD)(A;;GR;;;AN)".into()))
        .create(&name)
        .expect("second");
    let client = ClientOptions::new().read_control(true).open(&name).expect("client with READ_CONTROL");
    let want = SecurityDescriptor::from_sddl(first_sddl).expect("sddl").dacl_sddl().expect("dacl");
    assert_eq!(client.security().expect("client-side SD").dacl_sddl().expect("dacl"), want);
    assert_eq!(second.security().expect("server-side SD").dacl_sddl().expect("dacl"), want);
    assert_eq!(client.instance_count().expect("instances"), 2);
}

#[test]
fn descriptor_and_name_are_gone_after_the_last_instance_closes() {
    let name = PipeName::unique("t-gone");
    let first =
        ServerOptions::new().security(SecuritySpec::Sddl("D:P(A;;GA;;;WD)".into())).create(&name).expect("first");
    assert_eq!(first.instance_count().expect("instances"), 1);
    drop(first);
    let gone = ClientOptions::new().open(&name).expect_err("the name is gone with its last instance");
    assert_eq!(gone.os_code(), Some(OsCode::FILE_NOT_FOUND), "{gone}");
    let later = "D:P(A;;GA;;;WD)(A;;GR;;;AN)";
    let again = ServerOptions::new().security(SecuritySpec::Sddl(later.into())).create(&name).expect("re-create");
    let want = SecurityDescriptor::from_sddl(later).expect("sddl").dacl_sddl().expect("dacl");
    assert_eq!(again.security().expect("sd").dacl_sddl().expect("dacl"), want);
}

/// Windows lists `\\.\pipe\` as a directory; Wine 8.0's pipe file system refuses directory
/// queries with `ERROR_BAD_DEV_TYPE` (measured). The probe reports which one this machine is,
/// and the listing must then either find the pipe with its count or fail with that reason.
#[test]
fn enumeration_lists_the_name_with_its_instance_count_where_the_platform_can() {
    let name = PipeName::unique("t-list");
    let _a = ServerOptions::new().create(&name).expect("a");
    let _b = ServerOptions::new().create(&name).expect("b");
    match query::list_pipes() {
        Ok(pipes) => {
            let entry = pipes.iter().find(|e| e.name == name.name()).expect("our pipe is listed");
            assert_eq!(entry.instances, 2, "{entry:?}");
            assert_eq!(query::instance_count(name.name()).expect("count"), 2);
        }
        Err(e) => {
            assert!(pipe_harness::windows::probe::wine_version().is_some(), "listing failed off Wine: {e}");
            assert!(matches!(e, Error::Unsupported(_)) && e.to_string().contains("ERROR_BAD_DEV_TYPE (66)"), "{e}");
        }
    }
}

#[test]
fn first_instance_flag_on_a_free_name_succeeds() {
    let name = PipeName::unique("t-first");
    ServerOptions::new().first_pipe_instance(true).create(&name).expect("a free name takes the flag");
}

#[test]
fn impersonation_guard_reverts_and_reports_the_thread_token() {
    let name = PipeName::unique("t-imp");
    let client_opts = ClientOptions::new().sqos(Some(Sqos::level(ImpersonationLevel::Impersonation)));
    let (mut s, mut c) = pair(&name, ServerOptions::new(), client_opts);
    c.write_all(b"x", IO).expect("write");
    s.read(&mut [0u8; 1], IO).expect("read first");
    assert!(s.has_read());
    {
        let guard = s.impersonate().expect("impersonate after reading");
        let info = guard.info().expect("thread token");
        assert!(info.impersonation_level().is_some(), "{info:?}");
        assert!(Token::current_thread().expect("query").is_some(), "impersonating");
    }
    assert!(Token::current_thread().expect("query").is_none(), "the guard reverted");
}

#[test]
fn restricted_token_has_admins_deny_only() {
    let me = Token::current_process().expect("own token").info().expect("info");
    let restricted = Token::current_process().and_then(|t| t.restricted()).expect("restricted").info().expect("info");
    assert_eq!(restricted.user, me.user);
    if me.has_enabled_group("S-1-5-32-544") {
        assert!(restricted.groups.iter().any(|g| g.sid == "S-1-5-32-544" && g.deny_only), "{restricted:?}");
        assert!(!restricted.has_enabled_group("S-1-5-32-544"));
    }
}

#[test]
fn child_under_a_restricted_token_dies_with_the_process_that_started_it() {
    let name = PipeName::unique("t-job");
    let opts = ServerOptions::new().pipe_type(PipeType::Message).read_mode(ReadMode::Message);
    let mut supervisor_pipe = opts.create(&name).expect("pipe for the supervisor");
    let mut report_pipe = opts.create(&name).expect("pipe for the grandchild");
    let exe = env!("CARGO_BIN_EXE_ph-test-child");
    let mut supervisor =
        process::spawn(&process::ProcessSpec::new(exe, ["supervise", name.as_str()]), None).expect("spawn");
    supervisor_pipe.connect(Duration::from_secs(60)).expect("supervisor connects");
    let msg = supervisor_pipe.read_message(4096, Duration::from_secs(60)).expect("grandchild pid");
    let msg: serde_json::Value = serde_json::from_slice(&msg).expect("json");
    let grandchild = msg["grandchild_pid"].as_u64().expect("pid") as u32;
    report_pipe.connect(Duration::from_secs(60)).expect("grandchild connects");
    let report = report_pipe.read_message(1 << 20, Duration::from_secs(60)).expect("grandchild report");
    let report: serde_json::Value = serde_json::from_slice(&report).expect("json");
    assert_eq!(report["pid"].as_u64(), Some(u64::from(grandchild)));
    let groups = report["token"]["groups"].as_array().expect("groups");
    let me = Token::current_process().expect("token").info().expect("info");
    if me.has_enabled_group("S-1-5-32-544") {
        assert!(
            groups.iter().any(|g| g["sid"] == "S-1-5-32-544" && g["deny_only"] == true),
            "the grandchild runs with Administrators deny-only: {report}"
        );
    }
    assert_eq!(report_pipe.client_process_id().expect("pid"), grandchild);
    assert!(!process::wait_for_pid_exit(grandchild, Duration::ZERO).expect("wait"), "alive before");
    supervisor.kill().expect("kill the supervisor");
    assert!(
        process::wait_for_pid_exit(grandchild, Duration::from_secs(20)).expect("wait"),
        "the grandchild outlived the process whose job held it"
    );
}
