//! A server that needs a configuration file (issue 26, item 6): the plan's
//! `[[target.files]] path = "{dir}/NAME"`, `text = "..."` is written before each start, with
//! `{pipe}` and `{dir}` filled, in a fresh folder the harness made (random, exclusive, the
//! server's), and removed once the server stops.
//!
//! Run as root (one server runs as uid 61000).

#![cfg(unix)]

use pipe_harness::engine::{Backend, ConnectSpec, ServerUnderTest, Started};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

/// A server that learns its socket from its configuration file only (`listen PATH`).
fn plan(endpoint: &str, run_as: &str) -> String {
    format!(
        "[target]\nname = \"conf\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"read _ sock < \\\"$0\\\"; echo READY; exec socat UNIX-LISTEN:\\\"$sock\\\",fork EXEC:/bin/cat\", \"{{dir}}/server.conf\"]\nendpoint = \"{endpoint}\"\nready = \"line:READY\"\nready_timeout_ms = 20000\n{run_as}\n[[target.files]]\npath = \"{{dir}}/server.conf\"\ntext = \"\"\"\nlisten {{pipe}}\n# beside me: {{dir}}\n\"\"\"\n"
    )
}

fn load(text: &str) -> Result<pipe_harness::engine::Target, String> {
    let dir = tempfile::Builder::new().prefix("ph-conf-").tempdir().expect("temp dir");
    let file = dir.path().join("plan.toml");
    std::fs::write(&file, text).expect("plan");
    pipe_harness::engine::plan::load(&file).map(|(t, _)| t).map_err(|e| e.to_string())
}

#[test]
fn a_config_file_is_written_before_each_start_and_removed_after() {
    let backend = pipe_harness::native_backend().expect("backend");
    for (endpoint, run_as, owner) in
        [("{dir}/conf-{unique}.sock", "", 0), ("{private_dir:61000}/conf-{unique}.sock", "run_as = \"61000\"\n", 61000)]
    {
        let target = load(&plan(endpoint, run_as)).expect("the plan loads");
        let mut folders: Vec<PathBuf> = Vec::new();
        // Two starts at once: each has its own folder and file.
        let mut servers = Vec::new();
        for _ in 0..2 {
            let endpoint = backend.endpoint_for(&target);
            let mut server = ServerUnderTest::start(&backend, &target, &endpoint).expect("starts");
            assert_eq!(
                server.wait_ready(&backend, &target.readiness, target.ready_timeout),
                Started::Ready,
                "{:?}",
                server.output()
            );
            // It listens where its file said: the endpoint the harness chose.
            backend
                .connect(&endpoint, &ConnectSpec { timeout: Duration::from_secs(10), ..Default::default() })
                .expect("reached");
            servers.push((server, endpoint));
        }
        for (server, endpoint) in &servers {
            let _ = server;
            let run_folder = std::path::Path::new(endpoint)
                .ancestors()
                .find(|a| a.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pipe-harness-")))
                .expect("the run's folder");
            let conf = std::fs::read_dir(run_folder)
                .expect("run folder")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("files-")))
                .map(|p| p.join("server.conf"))
                .find(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains(endpoint.as_str())))
                .unwrap_or_else(|| panic!("no file names {endpoint}"));
            let text = std::fs::read_to_string(&conf).expect("read");
            let folder = conf.parent().expect("folder").to_path_buf();
            assert_eq!(text, format!("listen {endpoint}\n# beside me: {}\n", folder.display()));
            let meta = std::fs::symlink_metadata(&folder).expect("folder");
            assert_eq!((meta.uid(), meta.mode() & 0o777), (owner, 0o700), "{}", folder.display());
            assert_eq!(std::fs::symlink_metadata(&conf).expect("file").uid(), owner);
            folders.push(folder);
        }
        assert_ne!(folders[0], folders[1], "a folder per start");
        drop(servers);
        for f in &folders {
            assert!(!f.exists(), "{} removed with its server", f.display());
        }
    }
}

#[test]
fn a_file_outside_the_starts_folder_is_refused_at_load() {
    for path in ["/etc/server.conf", "{dir}/../x.conf", "{dir}/a/b.conf", "server.conf", "{dir}/"] {
        let text =
            plan("{dir}/c-{unique}.sock", "").replace("path = \"{dir}/server.conf\"", &format!("path = \"{path}\""));
        let err = load(&text).expect_err(path);
        assert!(err.contains("plan.toml:") && err.contains("\"{dir}/NAME\""), "{path}: {err}");
    }
}
