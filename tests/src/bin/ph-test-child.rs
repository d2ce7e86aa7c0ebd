//! A helper process the integration tests start under chosen tokens.
//!
//! `ph-test-child report PIPE`: open PIPE as a client, send one JSON message describing this
//! process (pid, token), then wait for the server to close the pipe.
//!
//! `ph-test-child supervise PIPE`: start `ph-test-child report PIPE` under a restricted copy of
//! this process's token (through the harness's job object), send the grandchild's pid over
//! PIPE, then wait until killed. The test kills this process and checks the grandchild dies too.

#![forbid(unsafe_code)]

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    match windows_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ph-test-child: {e}");
            std::process::ExitCode::from(3)
        }
    }
}

#[cfg(windows)]
fn windows_main() -> Result<(), Box<dyn std::error::Error>> {
    use pipe_harness::windows::{process, ClientOptions, PipeName, ProcessSpec, Token};
    use std::time::Duration;
    let args: Vec<String> = std::env::args().collect();
    let (mode, pipe) = match args.as_slice() {
        [_, mode, pipe] => (mode.as_str(), PipeName::from_path(pipe)?),
        _ => return Err("usage: ph-test-child report|supervise PIPE".into()),
    };
    let mut client = ClientOptions::new().open_wait(&pipe, Duration::from_secs(20))?;
    match mode {
        "report" => {
            let info = Token::current_process()?.info()?;
            let msg = serde_json::json!({ "pid": std::process::id(), "token": info });
            client.write_all(msg.to_string().as_bytes(), Duration::from_secs(20))?;
            // Wait for the server to hang up (or for this process to be killed).
            let _ = client.read(&mut [0u8; 1], Duration::from_secs(120));
        }
        "supervise" => {
            let me = std::env::current_exe()?;
            let restricted = Token::current_process()?.restricted()?;
            let spec = ProcessSpec::new(me, ["report".to_string(), pipe.as_str().to_string()]);
            let grandchild = process::spawn(&spec, Some(&restricted))?;
            let msg = serde_json::json!({ "grandchild_pid": grandchild.id() });
            client.write_all(msg.to_string().as_bytes(), Duration::from_secs(20))?;
            std::mem::forget(grandchild); // its fate is the job's: it must die with this process
            loop {
                std::thread::park();
            }
        }
        other => return Err(format!("unknown mode {other:?}").into()),
    }
    Ok(())
}

#[cfg(not(windows))]
fn main() {
    eprintln!("ph-test-child is a Windows helper; nothing to do on this platform");
}
