//! The command's answer to bad input: exit code 2 and a message on stderr that names the
//! problem and where (the file, line and column of a plan; the program; the flag). Nothing
//! panics, nothing hangs.

use rstest::rstest;
use std::path::PathBuf;
use std::process::Command;

fn scratch() -> PathBuf {
    tempfile::Builder::new().prefix("ph-bad-input-").tempdir().expect("scratch dir").keep()
}

const GOOD: &str = r#"[target]
name = "svc"
program = "/no/such/server"
args = ["--socket", "{pipe}"]
endpoint = "svc-{unique}"
ready = "line:READY"
ping = { request = "PING", success = "PONG" }
"#;

fn run(args: &[&str], plan_text: Option<&str>, extra_file: Option<(&str, &str)>) -> (Option<i32>, String) {
    let dir = scratch();
    let mut argv: Vec<String> = Vec::new();
    for a in args {
        argv.push(
            a.replace("{plan}", &dir.join("plan.toml").display().to_string())
                .replace("{dir}", &dir.display().to_string()),
        );
    }
    if let Some(text) = plan_text {
        std::fs::write(dir.join("plan.toml"), text).expect("plan");
    }
    if let Some((name, text)) = extra_file {
        std::fs::write(dir.join(name), text).expect("file");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness")).args(&argv).output().expect("pipe-harness");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout))
}

#[rstest]
#[case::unreadable_plan(&["audit", "/no/such/plan.toml"], None, None, "/no/such/plan.toml: cannot read it")]
#[case::syntax(&["audit", "{plan}"], Some("[target\nname = 1"), None, "plan.toml:1:")]
#[case::unknown_key(&["audit", "{plan}"], Some(&*GOOD.replace("ready =", "redy =")), None, "plan.toml:6:1: unknown field `redy`")]
#[case::contradiction(&["audit", "{plan}"], Some(&*format!("{GOOD}[policy]\nallowed_users = [\"7\"]\ndenied_users = [\"7\"]\n")), None, "is in both allowed_users and denied_users")]
#[case::unknown_scenario(&["audit", "{plan}", "--scenario", "nope"], Some(GOOD), None, "unknown scenario \"nope\"")]
#[case::missing_program_audit(&["audit", "{plan}", "--scenario", "framing_robustness"], Some(GOOD), None, "no/such/server")]
#[case::missing_program_fuzz(&["fuzz", "{plan}", "--duration", "5"], Some(GOOD), None, "no/such/server")]
#[case::no_jobs(&["fuzz", "{plan}", "--jobs", "0"], Some(GOOD), None, "--jobs must be at least 1")]
#[case::bad_reproducer(&["replay", "{dir}/r.json", "{plan}"], Some(GOOD), Some(("r.json", "{\"not\": 1}")), "neither a pipe-harness reproducer nor a recording")]
#[case::bad_corpus(&["fuzz", "{plan}", "--corpus", "/no/such/corpus"], Some(GOOD), None, "reading the corpus /no/such/corpus")]
#[case::html_not_a_report(&["html", "{dir}/r.json"], None, Some(("r.json", "{\"not\": 1}")), "r.json: neither an audit report (results) nor a campaign")]
#[case::cmin_without_coverage(&["cmin", "{plan}", "--corpus", "{dir}", "--out", "{dir}/min"], Some(GOOD), Some(("x.msg", "PING")), "corpus minimisation needs a server built with pipe-harness cc and coverage = true")]
#[case::html_no_memory_limit(&["fuzz", "{plan}", "--memory-limit-mb", "0"], Some(GOOD), None, "--memory-limit-mb 0: the server could not start")]
fn bad_input_exits_2_and_names_the_problem(
    #[case] args: &[&str],
    #[case] plan: Option<&str>,
    #[case] extra: Option<(&str, &str)>,
    #[case] want: &str,
) {
    let (code, text) = run(args, plan, extra);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains(want), "expected {want:?} in:\n{text}");
    assert!(!text.contains("panicked"), "{text}");
}
