//! `pipe-harness init` writes a starter plan that `pipe-harness audit` accepts, for servers this
//! project did not write: socat, and a Node.js `net.Server`, each given its socket path on the
//! command line as a user would start it.

#![cfg(unix)]

use std::process::Command;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
}

fn init_then_audit(name: &str, command: &[&str]) -> String {
    let dir = tempfile::Builder::new().prefix(&format!("ph-init-{name}-")).tempdir().expect("scratch dir").keep();
    let plan = dir.join("plan.toml");
    let sock = dir.join("first.sock").display().to_string();
    let argv: Vec<String> = command.iter().map(|a| a.replace("SOCK", &sock)).collect();
    let out = harness().arg("init").arg("--out").arg(&plan).arg("--").args(&argv).output().expect("run init");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{name}: init: {err}");
    assert!(err.contains(&format!("listened on {sock}")), "{name}: {err}");
    let text = std::fs::read_to_string(&plan).expect("plan written");
    assert!(
        text.contains("{pipe}") && text.contains("{unique}"),
        "{name}: the given path became a per-run name:\n{text}"
    );
    assert!(!std::path::Path::new(&sock).exists(), "{name}: init leaves no socket file behind");
    let audit =
        harness().arg("audit").arg(&plan).args(["--scenario", "first_instance_defence"]).output().expect("audit");
    let report = String::from_utf8_lossy(&audit.stdout).into_owned();
    assert!(
        matches!(audit.status.code(), Some(0) | Some(1)),
        "{name}: the plan is accepted and judged:\n{report}\n{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
    report
}

#[test]
fn init_writes_a_plan_audit_accepts_for_socat() {
    let report = init_then_audit("socat", &["socat", "UNIX-LISTEN:SOCK,fork", "EXEC:/bin/cat"]);
    assert!(report.contains("PASS            first_instance_defence"), "{report}");
}

#[test]
fn init_writes_a_plan_audit_accepts_for_node() {
    let report = init_then_audit("node", &["node", "-e", "require('net').createServer(s => s.pipe(s)).listen('SOCK')"]);
    assert!(report.contains("PASS            first_instance_defence"), "{report}");
}
