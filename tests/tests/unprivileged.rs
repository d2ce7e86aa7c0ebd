//! `pipe-harness audit` run by a user who is not root (as root here: the command is run as
//! uid 61500 with `setpriv`): every check that needs root says so in words, and `--strict`
//! fails on a check that is unverifiable as it does on one that is not applicable.

#![cfg(target_os = "linux")]

use pipe_harness_tests::bundled;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// The uid the command runs as (it has no account; the command needs none).
const USER: &str = "61500";

/// `pipe-harness ARGS` as a user who is not root.
fn as_user(args: &[&str]) -> (Option<i32>, String) {
    let cli = bundled("pipe-harness");
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", USER, "--regid", USER, "--clear-groups", "--"]).arg(&cli);
        c
    } else {
        Command::new(&cli)
    };
    let out = cmd.args(args).current_dir("/").output().expect("setpriv pipe-harness");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn a_user_who_is_not_root_is_told_to_run_as_root_and_strict_fails_on_it() {
    let dir = tempfile::Builder::new().prefix("ph-unprivileged-").tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let plan = dir.path().join("plan.toml");
    let text = format!(
        "[target]\nname = \"unix-hardened\"\nprogram = '{}'\nargs = [\"--socket\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/h-{{unique}}.sock\"\nready = \"line:READY\"\nping = {{ request = \"PING\", success = \"PONG\" }}\nprivileged = {{ request = \"PRIV plan\", success = \"OK\" }}\n\n[policy]\nprotection = \"mode=0600 uid={USER}\"\ndenied_users = [\"61001\"]\nother_sessions = true\n",
        bundled("unix-hardened").display()
    );
    std::fs::write(&plan, text).expect("plan");
    std::fs::set_permissions(&plan, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let plan = plan.display().to_string();
    let (code, text) = as_user(&["audit", &plan, "--seed", "1"]);
    assert_eq!(code, Some(0), "unverifiable is not a failure without --strict:\n{text}");
    let unverifiable: Vec<&str> = text.lines().filter(|l| l.starts_with("UNVERIFIABLE")).collect();
    assert!(unverifiable.len() >= 5, "as uid {USER}, the checks resting on other uids are unverifiable:\n{text}");
    // Each says why in words: the indented lines under its verdict (wrapped to 80 columns).
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate().filter(|(_, l)| l.starts_with("UNVERIFIABLE")) {
        let why = lines[i + 1..]
            .iter()
            .take_while(|w| w.starts_with(' '))
            .flat_map(|w| w.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            why.contains(&format!("the harness runs as uid {USER}, not root")) && why.contains("run it as root"),
            "{l}: the reason names what is missing:\n{why}"
        );
    }
    let (code, text) = as_user(&["audit", &plan, "--seed", "1", "--strict"]);
    assert_eq!(code, Some(1), "--strict fails on unverifiable checks:\n{text}");
}
