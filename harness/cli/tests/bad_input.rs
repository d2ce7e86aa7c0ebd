//! The command's answer to bad input: exit code 2 and a message on stderr that names the
//! problem and where (the file, line and column of a plan; the program; the flag). Nothing
//! panics, nothing hangs.

use rstest::rstest;
use std::path::PathBuf;
use std::process::Command;

fn scratch() -> PathBuf {
    tempfile::Builder::new().prefix("ph-bad-input-").tempdir().expect("scratch dir").keep()
}

/// A plan whose program does not exist (caught at load, at `program`).
const GHOST: &str = r#"[target]
name = "svc"
program = "/no/such/server"
args = ["--socket", "{pipe}"]
endpoint = "svc-{unique}"
ready = "line:READY"
ping = { request = "PING", success = "PONG" }
"#;

/// A plan that loads: its program exists (this command stands in; it never starts). Its path
/// absolute in the platform's own terms: under Wine cargo's paths are Unix paths, which Windows
/// reads as relative to the current drive (the plan's folder is on another).
fn good() -> String {
    let program = std::fs::canonicalize(env!("CARGO_BIN_EXE_pipe-harness")).expect("canonical path");
    let program = program.display().to_string();
    GHOST.replace("\"/no/such/server\"", &format!("'{}'", program.strip_prefix(r"\\?\").unwrap_or(&program)))
}

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
#[case::syntax(&["audit", "{plan}"], Some("[target\nname = 1".into()), None, "plan.toml:1:")]
#[case::unknown_key(&["audit", "{plan}"], Some(good().replace("ready =", "redy =")), None, "plan.toml:6:1: unknown field `redy`: did you mean `ready`?")]
#[case::contradiction(&["audit", "{plan}"], Some(format!("{}[policy]\nallowed_users = [\"7\"]\ndenied_users = [\"7\"]\n", good())), None, "is in both allowed_users and denied_users")]
#[case::unknown_scenario(&["audit", "{plan}", "--scenario", "nope"], Some(good()), None, "unknown scenario \"nope\"")]
#[case::missing_program_audit(&["audit", "{plan}", "--scenario", "framing_robustness"], Some(GHOST.into()), None, "/no/such/server does not exist (a relative program is relative to the plan's folder")]
#[case::missing_program_fuzz(&["fuzz", "{plan}", "--duration", "5"], Some(GHOST.into()), None, "/no/such/server does not exist")]
#[case::lines_request_with_a_newline(&["audit", "{plan}"], Some(good().replace("ready = ", "framing = \"lines\"\nready = ").replace("\"PING\"", "\"PI\\nNG\"")), None, "plan.toml:8:20: ping: \"PI\\nNG\" cannot be sent with framing \"lines\": cannot encode: the frame contains the delimiter")]
#[case::no_duration(&["fuzz", "{plan}", "--duration", "0"], Some(good()), None, "--duration 0: the campaign would run no case")]
#[case::no_cases(&["fuzz", "{plan}", "--cases", "0"], Some(good()), None, "--cases 0: the campaign would run no case")]
#[case::no_jobs(&["fuzz", "{plan}", "--jobs", "0"], Some(good()), None, "--jobs must be at least 1")]
#[case::bad_reproducer(&["replay", "{dir}/r.json", "{plan}"], Some(good()), Some(("r.json", "{\"not\": 1}")), "neither a pipe-harness reproducer nor a recording")]
#[case::bad_corpus(&["fuzz", "{plan}", "--corpus", "/no/such/corpus"], Some(good()), None, "reading the corpus /no/such/corpus")]
#[case::html_not_a_report(&["html", "{dir}/r.json"], None, Some(("r.json", "{\"not\": 1}")), "r.json: neither an audit report (results) nor a campaign")]
#[case::cmin_without_coverage(&["cmin", "{plan}", "--corpus", "{dir}", "--out", "{dir}/min"], Some(good()), Some(("x.msg", "PING")), "corpus minimisation needs a server built with pipe-harness cc and coverage = true")]
#[case::html_no_memory_limit(&["fuzz", "{plan}", "--memory-limit-mb", "0"], Some(good()), None, "--memory-limit-mb 0: the server could not start")]
fn bad_input_exits_2_and_names_the_problem(
    #[case] args: &[&str],
    #[case] plan: Option<String>,
    #[case] extra: Option<(&str, &str)>,
    #[case] want: &str,
) {
    let (code, text) = run(args, plan.as_deref(), extra);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains(want), "expected {want:?} in:\n{text}");
    if want.contains("/no/such/server") {
        // At its place; the path as the platform resolved it (Windows: on the plan's drive).
        assert!(text.contains("plan.toml:3:11: program "), "{text}");
    }
    assert!(!text.contains("panicked"), "{text}");
}

/// `args` are given to the server as written: a relative path in them is relative to the
/// server's working folder, which is the plan's `cwd` (itself relative to the plan's folder)
/// when the plan gives one, else the folder `pipe-harness` runs in. (The server here writes
/// `where.txt`, a relative path, and exits: the check errs, and the file shows the folder.)
#[cfg(unix)]
#[test]
fn relative_paths_in_args_are_relative_to_cwd_else_to_where_pipe_harness_runs() {
    let plans = scratch();
    let runs_in = scratch();
    let plan = plans.join("plan.toml");
    let text = "[target]\nname = \"pwd\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"pwd > \\\"$0\\\"\", \"where.txt\"]\nendpoint = \"{dir}/pwd-{unique}.sock\"\nready_timeout_ms = 2000\n";
    for (with_cwd, folder) in [(false, &runs_in), (true, &plans)] {
        let text = if with_cwd { format!("{text}cwd = \".\"\n") } else { text.to_string() };
        std::fs::write(&plan, text).expect("plan");
        let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
            .args(["audit", "--scenario", "framing_robustness"])
            .arg(&plan)
            .current_dir(&runs_in)
            .output()
            .expect("pipe-harness");
        let written = folder.join("where.txt");
        let said = std::fs::read_to_string(&written)
            .unwrap_or_else(|e| panic!("{}: {e} (cwd given: {with_cwd}): {out:?}", written.display()));
        let canonical = std::fs::canonicalize(folder).expect("folder");
        assert_eq!(said.trim(), canonical.display().to_string(), "cwd given: {with_cwd}");
        std::fs::remove_file(&written).expect("remove");
    }
    std::fs::remove_dir_all(&plans).ok();
    std::fs::remove_dir_all(&runs_in).ok();
}
