//! The `pipe-harness` command line.

#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write as _;

/// Security test harness and fuzzer for named-pipe and Unix-socket servers.
#[derive(Debug, Parser)]
#[command(name = "pipe-harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure which platform rules the scenarios rest on hold on this machine.
    Probe {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// A table for people.
    Human,
    /// The report as JSON (schema_version 1).
    Json,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe-harness: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Probe { format, out } => {
            let report = pipe_harness::probe::run();
            let text = match format {
                Format::Human => report.to_table(),
                Format::Json => report.to_json() + "\n",
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("writing the report to {}", path.display()))?
                }
                None => {
                    std::io::stdout().write_all(text.as_bytes()).context("writing the report to standard output")?
                }
            }
            Ok(())
        }
    }
}
