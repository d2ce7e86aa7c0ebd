//! Plans that name accounts a machine does not have: with `create_accounts`, the harness makes
//! them for the run (the service's own account, an attacker's) and deletes them after, and
//! leaves alone an account that existed before.

#![cfg(unix)]

use pipe_harness::unix::creds::{account_exists, is_root};
use pipe_harness::{Audit, ScenarioId};
use std::path::{Path, PathBuf};

use pipe_harness_tests::bundled;

/// A plan for the hardened Unix fixture running as `service`, with `attacker` denied; both
/// (and `nobody`, which exists) to be created.
fn plan(dir: &Path, service: &str, attacker: &str) -> PathBuf {
    let text = format!(
        r#"[target]
name = "unix-hardened"
program = "unused"
args = ["--socket", "{{pipe}}"]
endpoint = "{{private_dir:{service}}}/svc-{{unique}}.sock"
ready = "line:READY"
run_as = "{service}"
create_accounts = ["{service}", "{attacker}", "nobody"]
privileged = {{ request = "PRIV x", success = "OK" }}
ping = {{ request = "PING", success = "PONG" }}

[policy]
allowed_users = ["{service}"]
denied_users = ["{attacker}"]
"#
    );
    let path = dir.join(format!("{service}.toml"));
    std::fs::write(&path, text).expect("plan");
    path
}

#[test]
fn accounts_a_plan_names_exist_during_the_audit_and_are_gone_after() -> pipe_harness::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let (service, attacker) = (format!("ph-svc-{}", std::process::id()), format!("ph-evil-{}", std::process::id()));
    let audit = Audit::plan(plan(dir.path(), &service, &attacker))?
        .program(bundled("unix-hardened"))
        .scenario(ScenarioId::PeerCredentials)
        .scenario(ScenarioId::InstanceSquatting);
    let report = audit.run()?;
    if !is_root() {
        let why = format!("{:?}", report.results[0].verdict);
        assert!(why.contains("needs root"), "{why}");
        return Ok(());
    }
    report.assert_no_findings();
    // The checks really ran as the new accounts: the attacker's connect was refused by uid.
    let text = report.to_human();
    assert!(report.results.iter().all(|r| r.verdict.kind() == "pass"), "{text}");
    assert!(!account_exists(&service) && !account_exists(&attacker), "accounts left behind");
    assert!(account_exists("nobody"), "an account that existed before is not the harness's to delete");
    Ok(())
}

#[test]
fn an_account_name_useradd_would_refuse_is_a_plan_error_naming_its_place() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.toml");
    let text = "[target]\nname = \"x\"\nprogram = \"x\"\nendpoint = \"{dir}/x.sock\"\ncreate_accounts = [\"svc\", \"Bad Name\"]\n";
    std::fs::write(&path, text).expect("plan");
    let err = Audit::plan(&path).expect_err("refused").to_string();
    assert!(err.contains("\"Bad Name\"") && err.contains("bad.toml:5:27"), "{err}");
}
