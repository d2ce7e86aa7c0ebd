//! A Windows service audited through the Service Control Manager (`service = "NAME"`): the
//! fixture `win-service` (hardened's pipe server, as a service) registered for the test with
//! `sc create` and deleted after it; the harness stops and starts it with `StartServiceW` and
//! `ControlService`, takes its process id from `QueryServiceStatusEx`, and leaves it as it found
//! it: stopped when it was stopped, running again when it ran. Run under Wine here (its
//! `services.exe` is a real SCM for this); on Windows it needs an administrator.

#![cfg(windows)]

mod common;

use std::process::Command;

/// The service, registered for one test and deleted after it (stopped first).
struct Registered {
    name: String,
}

impl Registered {
    fn new(tag: &str) -> Registered {
        let name = format!("ph-svc-{tag}-{}", std::process::id());
        let exe = common::program_for_plan("win-service");
        let bin = format!("{exe} --service {name} --pipe {name}");
        let out = Command::new("sc").args(["create", &name, "binPath=", &bin]).output().expect("run sc");
        assert!(out.status.success(), "sc create: {}", String::from_utf8_lossy(&out.stdout));
        Registered { name }
    }

    /// `sc query`'s STATE line: `RUNNING`, `STOPPED`...
    fn state(&self) -> String {
        let out = Command::new("sc").args(["query", &self.name]).output().expect("run sc");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.trim_start().starts_with("STATE"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or("unknown")
            .to_string()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = Command::new("sc").args(["stop", &self.name]).output();
        let _ = Command::new("sc").args(["delete", &self.name]).output();
    }
}

fn audit(service: &Registered) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("ph-managed-win-{}", service.name));
    std::fs::create_dir_all(&dir).expect("dir");
    let plan = dir.join("plan.toml");
    let text = format!("[target]\nname = \"win-service\"\nservice = \"{0}\"\nendpoint = \"{0}\"\n", service.name);
    std::fs::write(&plan, text).expect("plan");
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .arg("audit")
        .arg(&plan)
        .args(["--scenario", "framing_robustness", "--format", "json", "--seed", "1"])
        .output()
        .expect("run pipe-harness");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_stopped_service_is_started_for_the_checks_and_left_stopped() {
    let service = Registered::new("stopped");
    assert_eq!(service.state(), "STOPPED");
    let report = audit(&service);
    assert_eq!(report["results"][0]["verdict"], "pass", "{report:#}");
    assert_eq!(service.state(), "STOPPED", "found stopped, left stopped");
}

#[test]
fn a_running_service_is_restarted_for_the_checks_and_left_running() {
    let service = Registered::new("running");
    let out = Command::new("sc").args(["start", &service.name]).output().expect("run sc");
    assert!(out.status.success(), "sc start: {}", String::from_utf8_lossy(&out.stdout));
    let report = audit(&service);
    assert_eq!(report["results"][0]["verdict"], "pass", "{report:#}");
    assert_eq!(service.state(), "RUNNING", "found running, left running");
}
