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
        /// List every rule, also each of those not applicable here.
        #[arg(long, short)]
        verbose: bool,
    },
    /// The scenarios: what each checks, the platform rules it rests on, what the plan must give.
    Scenarios {
        /// Print the Markdown table (as in docs/scenarios.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Every pipe (Windows) or listening Unix socket (Linux) on this machine, with owner, server
    /// processes, instance counts and protection, flagging names others may take over.
    List {
        /// Also read each pipe's DACL (Windows: opens each pipe once as a client, taking one of
        /// its instances for a moment). Unix sockets always show their mode.
        #[arg(long)]
        sddl: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Only names containing this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Run the scenarios a plan asks for against its target; exit 0 all pass (or unverifiable, or
    /// not applicable), 1 findings, 2 the harness failed.
    Audit {
        /// The plan (TOML): the target, its policy.
        plan: std::path::PathBuf,
        /// Run only these scenarios (repeatable); default: every one that applies.
        #[arg(long = "scenario", value_name = "NAME")]
        scenarios: Vec<String>,
        /// Report format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Seed for the seeded scenarios (a finding prints the seed that replays it).
        #[arg(long)]
        seed: Option<u64>,
        /// A check that does not run to a verdict fails the audit (exit 1): not applicable (the
        /// plan does not configure it) or unverifiable (not root, a platform rule missing).
        #[arg(long)]
        strict: bool,
        /// Where a rule a check rests on does not hold here (under Wine), judge the check from
        /// the Win32 calls the program makes, traced (marked "from calls, not from effect");
        /// each such check starts the server once more. Without it, those checks are
        /// unverifiable.
        #[arg(long)]
        from_calls: bool,
    },
    /// The live fuzzer: hostile frames from the target's framing, against the running server,
    /// with crash and hang detection; findings are minimised and saved as reproducers.
    Fuzz {
        /// The plan (TOML).
        plan: std::path::PathBuf,
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// At most this many cases.
        #[arg(long, default_value_t = u64::MAX)]
        cases: u64,
        /// Seed (case N of a campaign replays from the seed and N).
        #[arg(long)]
        seed: Option<u64>,
        /// Servers fuzzed in parallel (each with its own fuzzer; findings deduplicated).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Report memory growth when the server's resident size grows by more than this many
        /// MiB over its baseline (0: do not watch memory).
        #[arg(long, default_value_t = 64)]
        max_rss_growth_mib: u64,
        /// The server's memory limit, MiB (whole tree; Linux: its cgroup's, Windows: its job's);
        /// a server killed at it is an out-of-memory finding. Default: the plan's
        /// memory_limit_mb, else half the machine's memory.
        #[arg(long)]
        memory_limit_mb: Option<u64>,
        /// The most processes (Linux: tasks) the server may have at once. Default: the plan's
        /// process_limit, else 4096.
        #[arg(long)]
        process_limit: Option<u64>,
        /// A folder of seed inputs (each file: bytes as the server receives them; a recording;
        /// or NAME.msg, a message as --save-corpus writes it).
        #[arg(long)]
        corpus: Option<std::path::PathBuf>,
        /// Save the coverage corpus at the end (the messages that reached new edges) into this
        /// folder, one NAME.msg file each, for a later campaign's --corpus (it may be the same
        /// folder: the campaign resumes from it and adds to it).
        #[arg(long)]
        save_corpus: Option<std::path::PathBuf>,
        /// Where reproducers are written.
        #[arg(long, default_value = "pipe-harness-findings")]
        out: std::path::PathBuf,
        /// Stop after this many distinct, confirmed findings.
        #[arg(long)]
        max_findings: Option<usize>,
        /// Write a line a second to this file (CSV: elapsed_s, cases, cases_per_s, edges,
        /// corpus, findings, restarts; edges empty without coverage), as AFL's plot data.
        #[arg(long)]
        stats: Option<std::path::PathBuf>,
        /// How long the server may take to hang up after a case's end of stream, or to answer
        /// the ping, before it counts as hung (milliseconds).
        #[arg(long, default_value_t = 2000)]
        hang_timeout_ms: u64,
        /// Replays on fresh servers, all in the same bucket, that a minimised case needs to be
        /// reported as a finding.
        #[arg(long, default_value_t = 3)]
        replays: u32,
        /// Output format of the campaign's report (human; the campaign as JSON; one HTML page
        /// with its charts, findings and replay commands).
        #[arg(long, value_enum, default_value_t = PageFormat::Human)]
        format: PageFormat,
        /// Each bucket not reproduced on a fresh server (UNCONFIRMED), not only their count.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Resend a saved finding to fresh servers and show what they do now (exit 1 if any replay
    /// still ends in the finding's bucket).
    Replay {
        /// The reproducer (JSON, from `fuzz`), a recording, or an input of the live libFuzzer
        /// target (`crash-<sha1>`, from `cargo fuzz run live`).
        reproducer: std::path::PathBuf,
        /// The plan of the target.
        plan: std::path::PathBuf,
        /// Replays, each on a fresh server.
        #[arg(long, default_value_t = 3)]
        times: u32,
        /// Output format (human, json, or an HTML page; json and html for reproducers).
        #[arg(long, value_enum, default_value_t = PageFormat::Human)]
        format: PageFormat,
    },
    /// Stand between a real client and the real server: serve ENDPOINT (where the client is
    /// told to connect), relay each connection to the plan's server (started as the plan says,
    /// or the one it attaches to), and save each as a recording (OUT/NAME-connN.json) that
    /// `replay` sends again and `fuzz --corpus OUT` mutates.
    Record {
        /// The plan of the target (the real server).
        plan: std::path::PathBuf,
        /// The endpoint to serve for the client (a pipe name or socket path).
        #[arg(long)]
        listen: String,
        /// Where to save the recordings.
        #[arg(long, default_value = "recordings")]
        out: std::path::PathBuf,
        /// Connections to record before stopping.
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Seconds to wait for the client(s), in all.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Write a commented starter plan for a program: it is started once as given, and the plan
    /// takes the endpoint it listens on (an argument that names it becomes `{pipe}`) and its
    /// readiness line; every optional key is there, commented, with an example.
    Init {
        /// Where to write the plan.
        #[arg(long, default_value = "pipe-harness.toml")]
        out: std::path::PathBuf,
        /// The target's name in the plan (default: the program's file name).
        #[arg(long)]
        name: Option<String>,
        /// How long to wait for it to listen (ms).
        #[arg(long, default_value_t = 5000)]
        wait_ms: u64,
        /// The program and its arguments, as you would start it (after `--`).
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
    /// A C compiler wrapper (as afl-cc is): compiles and links with SanitizerCoverage (edges and
    /// comparison operands: `-fsanitize-coverage=trace-pc,trace-cmp`) and pipe-harness's
    /// runtime, for a server the fuzzer then fuzzes with coverage (`coverage = true` in the
    /// plan). Uses $CC, else clang, else cc. No sanitizer runtime is linked unless asked for
    /// (`-fsanitize=address`...): a plain build crashes with its plain signal, with gcc and
    /// clang alike. `pipe-harness cc -O1 -o server server.c`.
    Cc {
        /// The compiler's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (Internal) The cross-session helper: run by the harness under a token in another
    /// session; exits 16 + 1 (published name found) + 2 (pipe opened).
    #[command(hide = true)]
    Reach {
        /// The pipe (short name or full path).
        #[arg(long)]
        pipe: String,
        /// The named object that publishes it (`Local\NAME`), if any.
        #[arg(long)]
        published: Option<String>,
    },
    /// Minimise a corpus against a server built for coverage (`coverage = true`): each input
    /// sent once, smallest first, kept only if it reaches an edge no input kept before it did.
    Cmin {
        /// The plan (its server built with pipe-harness cc).
        plan: std::path::PathBuf,
        /// The corpus: NAME.msg messages (from fuzz --save-corpus) and recordings.
        #[arg(long)]
        corpus: std::path::PathBuf,
        /// Where the kept inputs are written (HASH.msg each).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Combine JSON reports (audits, `demo --format json`, campaigns from `fuzz --format json`)
    /// into one HTML page with an index, on standard output.
    Html {
        /// The JSON reports.
        #[arg(required = true)]
        reports: Vec<std::path::PathBuf>,
        /// The page's title.
        #[arg(long, default_value = "pipe-harness reports")]
        title: String,
    },
    /// Audit bundled fixtures out of the box: a hardened server and its vulnerable twins, with
    /// every scenario that applies here. Exit 0 when the hardened one is clean and every
    /// vulnerable one is caught.
    Demo {
        /// Output format (human, json, or one HTML page for every fixture, with an index).
        #[arg(long, value_enum, default_value_t = PageFormat::Human)]
        format: PageFormat,
        /// Seed for the seeded scenarios.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// The bundled fixtures the demo audits: the hardened twin first, then the vulnerable ones.
#[cfg(unix)]
const DEMO: &[&str] = &["unix-hardened", "unix-umask-leak", "unix-steals-path", "unix-no-peer-check"];
#[cfg(windows)]
const DEMO: &[&str] = &["hardened", "heirloom-dacl", "thread-per-client"];

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReportFormat {
    /// One line a check, details under findings.
    Human,
    /// JSON (schema report-v1).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// JUnit XML, for CI test views.
    Junit,
    /// One HTML page, self-contained (no scripts, nothing loaded).
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PageFormat {
    /// Text for people.
    Human,
    /// JSON.
    Json,
    /// One HTML page, self-contained (no scripts, nothing loaded).
    Html,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// A table for people.
    Human,
    /// The report as JSON (schema_version 1).
    Json,
}

/// The help on 80 columns: every help text under its option (clap's `next_line_help`, indented
/// 10), wrapped to 70 here (clap wraps only with its `wrap_help` feature, which needs a crate
/// this workspace does not have).
fn help_on_80_columns(cmd: clap::Command) -> clap::Command {
    use pipe_harness::wrap::{wrap, COLUMNS};
    let w = |s: Option<&clap::builder::StyledStr>, width: usize| s.map(|s| wrap(&s.to_string(), width, "", ""));
    // A subcommand's about is listed under its name, indented 10, too.
    let about = w(cmd.get_about(), COLUMNS - 10);
    let long_about = w(cmd.get_long_about(), COLUMNS - 10);
    let mut cmd = cmd
        .next_line_help(true)
        .mut_args(|a| {
            // clap adds "[default: ..] [possible values: ..]" after -h's text: on a line of their own.
            let more = a.get_action().takes_values()
                && (!a.get_default_values().is_empty() || !a.get_possible_values().is_empty());
            let help = w(a.get_help(), COLUMNS - 10).map(|h| if more { format!("{h}\n") } else { h });
            let long = w(a.get_long_help(), COLUMNS - 10);
            let a = match help {
                Some(h) => a.help(h),
                None => a,
            };
            match long {
                Some(l) => a.long_help(l),
                None => a,
            }
        })
        .mut_subcommands(help_on_80_columns);
    if let Some(about) = about {
        cmd = cmd.about(about);
    }
    if let Some(long_about) = long_about {
        cmd = cmd.long_about(long_about);
    }
    cmd
}

fn main() -> std::process::ExitCode {
    let matches = help_on_80_columns(<Cli as clap::CommandFactory>::command()).get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Ctrl-C, SIGTERM, SIGHUP: every process of the run killed and its folders removed first.
    if let Err(e) = pipe_harness::supervise::install_signal_cleanup() {
        eprintln!("pipe-harness: warning: {e}; children still die with the harness (PR_SET_PDEATHSIG)");
    }
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pipe-harness: {e:#}");
            2
        }
    };
    // A termination signal's cleanup, if one is under way, finishes first (it ends the
    // process itself with 128 + the signal).
    pipe_harness::supervise::settle();
    std::process::ExitCode::from(code)
}

/// A fixture binary built beside this one (`cargo build --workspace` puts them together).
fn bundled(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let me = std::env::current_exe().context("locating the pipe-harness executable")?;
    let path = me.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build the bundled fixtures first (cargo build --workspace)",
        path.display()
    );
    Ok(path)
}

fn demo(format: PageFormat, seed: u64) -> anyhow::Result<u8> {
    use pipe_harness::scenarios::{audit_with, bundled as plans, Unmet};
    let backend = native_backend()?;
    let mut reports = Vec::new();
    for name in DEMO {
        let exe = bundled(name)?;
        #[cfg(unix)]
        let (target, policy) = plans::unix_fixture(name, &exe);
        #[cfg(windows)]
        let (target, policy) = plans::windows_fixture(name, &exe);
        let mut report = audit_with(&backend, &target, &policy, seed, &[], Unmet::FromCalls, &mut |_, _| {});
        report.name_rerun(&format!("pipe-harness demo --seed {seed}"));
        reports.push(report);
    }
    let findings =
        |r: &pipe_harness::engine::report::AuditReport| r.results.iter().filter(|c| c.verdict.kind() == "fail").count();
    let errors: usize = reports.iter().map(|r| r.results.iter().filter(|c| c.verdict.kind() == "error").count()).sum();
    match format {
        PageFormat::Json => println!("{}", serde_json::to_string_pretty(&reports).context("formatting JSON")?),
        PageFormat::Human => {
            for r in &reports {
                println!("{}", r.to_human_wrapped(pipe_harness::wrap::COLUMNS));
            }
        }
        PageFormat::Html => {
            use pipe_harness::engine::html::{render, Part};
            let probe = pipe_harness::engine::Backend::probe(&backend);
            let parts: Vec<Part<'_>> =
                reports.iter().map(|report| Part::Audit { report, probe: Some(probe) }).collect();
            print!("{}", render("pipe-harness demo: a hardened server and its vulnerable twins", &parts));
        }
    }
    let twin_clean = reports.first().is_some_and(|r| findings(r) == 0);
    let all_caught = reports.iter().skip(1).all(|r| findings(r) > 0);
    let summary: Vec<String> =
        DEMO.iter().zip(&reports).map(|(n, r)| format!("{n}: {} findings", findings(r))).collect();
    eprintln!("demo: {}", summary.join(", "));
    if errors > 0 {
        eprintln!("demo: {errors} checks could not run (see above)");
        return Ok(2);
    }
    if twin_clean && all_caught {
        eprintln!("demo: the hardened server is clean and every vulnerable twin was caught");
        Ok(0)
    } else {
        eprintln!("demo: not every flaw could be shown here (see the unverifiable checks and `pipe-harness probe`)");
        Ok(1)
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Probe { format, out, verbose } => {
            let report = pipe_harness::probe::run();
            let text = match format {
                Format::Human => report.table(verbose),
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
            Ok(0)
        }
        Command::Demo { format, seed } => demo(format, seed),
        Command::Html { reports, title } => combine_html(&reports, &title),
        Command::Cmin { plan, corpus, out } => cmin(&plan, &corpus, &out),
        Command::Scenarios { markdown } => {
            print!("{}", if markdown { pipe_harness::scenarios::catalogue_markdown() } else { scenario_list() });
            Ok(0)
        }
        Command::List { sddl, format, filter } => list(sddl, format, filter.as_deref()),
        Command::Reach { pipe, published } => reach(&pipe, published.as_deref()),
        Command::Fuzz {
            plan,
            duration,
            cases,
            seed,
            jobs,
            max_rss_growth_mib,
            memory_limit_mb,
            process_limit,
            corpus,
            save_corpus,
            out,
            replays,
            format,
            max_findings,
            hang_timeout_ms,
            stats,
            verbose,
        } => fuzz(&FuzzArgs {
            plan: &plan,
            duration,
            cases,
            seed,
            jobs,
            max_rss_growth_mib,
            memory_limit_mb,
            process_limit,
            corpus: corpus.as_deref(),
            save_corpus: save_corpus.as_deref(),
            out: &out,
            replays,
            format,
            max_findings,
            hang_timeout_ms,
            stats: stats.as_deref(),
            verbose,
        }),
        Command::Replay { reproducer, plan, times, format } => replay(&reproducer, &plan, times, format),
        Command::Cc { args } => cc(&args),
        Command::Record { plan, listen, out, connections, timeout } => {
            record(&plan, &listen, &out, connections, timeout)
        }
        Command::Init { out, name, wait_ms, command } => init(&out, name.as_deref(), wait_ms, &command),
        Command::Audit { plan, scenarios, format, out, seed, strict, from_calls } => {
            let unmet = if from_calls {
                pipe_harness::scenarios::Unmet::FromCalls
            } else {
                pipe_harness::scenarios::Unmet::Skip
            };
            audit_plan(&plan, &scenarios, format, out.as_deref(), seed, strict, unmet)
        }
    }
}

/// Says once, on stderr, when the servers cannot be put in cgroups here (Linux): a descendant
/// that leaves the process group and clears its environment is not found then, and the memory
/// and process limits are not applied.
fn note_containment() {
    static SAID: std::sync::Once = std::sync::Once::new();
    if cfg!(target_os = "linux") && !pipe_harness::supervise::has_cgroups() {
        SAID.call_once(|| eprintln!("pipe-harness: {}", pipe_harness::supervise::containment()));
    }
}

/// A JSON report read back: an audit, or a campaign with the name its findings give it.
enum ReadReport {
    Audit(pipe_harness::engine::report::AuditReport),
    Campaign(String, pipe_harness::engine::live::Campaign),
}

/// `pipe-harness html`: every report of `files` on one page.
fn combine_html(files: &[std::path::PathBuf], title: &str) -> anyhow::Result<u8> {
    use pipe_harness::engine::html::{render, Part};
    use pipe_harness::engine::report::AuditReport;
    let mut read = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
        let reports = match &value {
            serde_json::Value::Array(items) => items.clone(),
            _ => vec![value],
        };
        for v in reports {
            if v.get("results").is_some() {
                let r: AuditReport = serde_json::from_value(v)
                    .with_context(|| format!("{}: not an audit report (schema report-v1)", file.display()))?;
                read.push(ReadReport::Audit(r));
            } else if v.get("cases").is_some() && v.get("findings").is_some() {
                let c: pipe_harness::engine::live::Campaign = serde_json::from_value(v)
                    .with_context(|| format!("{}: not a campaign (from fuzz --format json)", file.display()))?;
                let name =
                    c.findings.first().map(|f| f.target.clone()).unwrap_or_else(|| {
                        file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
                    });
                read.push(ReadReport::Campaign(name, c));
            } else {
                anyhow::bail!(
                    "{}: neither an audit report (results) nor a campaign (cases and findings)",
                    file.display()
                );
            }
        }
    }
    let settings: Vec<(String, String)> = Vec::new();
    let parts: Vec<Part<'_>> = read
        .iter()
        .map(|r| match r {
            ReadReport::Audit(report) => Part::Audit { report, probe: None },
            ReadReport::Campaign(target, campaign) => {
                Part::Campaign { target, campaign, settings: &settings, replays: &[] }
            }
        })
        .collect();
    print!("{}", render(title, &parts));
    Ok(0)
}

fn native_backend() -> anyhow::Result<pipe_harness::NativeBackend> {
    pipe_harness::native_backend().context("setting up the platform's backend")
}

/// What `fuzz` was asked for.
struct FuzzArgs<'a> {
    plan: &'a std::path::Path,
    duration: u64,
    cases: u64,
    seed: Option<u64>,
    jobs: usize,
    max_rss_growth_mib: u64,
    memory_limit_mb: Option<u64>,
    process_limit: Option<u64>,
    corpus: Option<&'a std::path::Path>,
    save_corpus: Option<&'a std::path::Path>,
    out: &'a std::path::Path,
    replays: u32,
    format: PageFormat,
    max_findings: Option<usize>,
    hang_timeout_ms: u64,
    stats: Option<&'a std::path::Path>,
    verbose: bool,
}

/// Writes the campaign's coverage corpus into `dir` ([`write_messages`]) and says how many on
/// stderr.
fn save_corpus(dir: &std::path::Path, campaign: &pipe_harness::engine::live::Campaign) -> anyhow::Result<()> {
    if campaign.edges.is_none() {
        eprintln!(
            "corpus: nothing saved to {}: a black-box campaign keeps no corpus (coverage = true does)",
            dir.display()
        );
        return Ok(());
    }
    let (count, new) = write_messages(dir, &campaign.kept)?;
    eprintln!("corpus: {count} inputs in {} ({new} new)", dir.display());
    Ok(())
}

/// Writes `messages` into `dir`, a file per message named by its FNV-1a hash (`HASH.msg`; one
/// already there is not written twice). How many distinct messages, and how many files are new.
fn write_messages(dir: &std::path::Path, messages: &[Vec<u8>]) -> anyhow::Result<(usize, usize)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut new = 0;
    let mut names = std::collections::BTreeSet::new();
    for m in messages {
        let hash = m.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
        let file = dir.join(format!("{hash:016x}.msg"));
        if names.insert(hash) && !file.exists() {
            std::fs::write(&file, m).with_context(|| format!("writing {}", file.display()))?;
            new += 1;
        }
    }
    Ok((names.len(), new))
}

/// `pipe-harness cmin`: the corpus's messages minimised against the plan's server.
fn cmin(plan: &std::path::Path, corpus: &std::path::Path, out: &std::path::Path) -> anyhow::Result<u8> {
    use pipe_harness::engine::live;
    let (target, _) = pipe_harness::engine::plan::load(plan)?;
    live::can_minimize(&target)?;
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(corpus).with_context(|| format!("reading the corpus {}", corpus.display()))? {
        let path = entry.with_context(|| format!("reading the corpus {}", corpus.display()))?.path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "msg") {
            messages.push(bytes);
        } else if let Ok(rec) = serde_json::from_slice::<live::Recording>(&bytes) {
            messages.extend(rec.case(&target).with_context(|| format!("reading {}", path.display()))?.writes);
        } else {
            anyhow::bail!("{}: neither a NAME.msg message nor a recording", path.display());
        }
    }
    anyhow::ensure!(!messages.is_empty(), "{}: no inputs (NAME.msg messages or recordings)", corpus.display());
    let backend = native_backend()?;
    let m = live::minimize_corpus(&backend, &target, &messages).context("minimising the corpus")?;
    let (kept, _) = write_messages(out, &m.kept)?;
    println!(
        "cmin: {} inputs, {kept} kept in {} ({} edges; {} ended the server)",
        m.given,
        out.display(),
        m.edges,
        m.crashed
    );
    Ok(0)
}

/// A campaign's settings as the HTML report shows them.
fn settings_of(a: &FuzzArgs<'_>, opts: &pipe_harness::engine::live::FuzzOptions) -> Vec<(String, String)> {
    let mib = |b: Option<u64>| b.map_or_else(|| "default".to_string(), |b| format!("{} MiB", b / (1024 * 1024)));
    vec![
        ("plan".into(), a.plan.display().to_string()),
        ("seed".into(), opts.seed.to_string()),
        ("duration".into(), format!("{} s", a.duration)),
        ("case limit".into(), if a.cases == u64::MAX { "none".into() } else { a.cases.to_string() }),
        ("jobs".into(), opts.jobs.to_string()),
        ("hang timeout".into(), format!("{} ms", a.hang_timeout_ms)),
        ("replays to confirm".into(), opts.replays.to_string()),
        (
            "memory growth watched".into(),
            if a.max_rss_growth_mib == 0 { "no".into() } else { format!("over {} MiB", a.max_rss_growth_mib) },
        ),
        ("memory limit".into(), mib(a.memory_limit_mb.map(|m| m * 1024 * 1024))),
        ("process limit".into(), a.process_limit.map_or_else(|| "default".into(), |n| n.to_string())),
        (
            "seed inputs given (the ping is always one more)".into(),
            (opts.corpus.len() + opts.messages.len()).to_string(),
        ),
        ("findings written to".into(), a.out.display().to_string()),
    ]
}

fn fuzz(a: &FuzzArgs<'_>) -> anyhow::Result<u8> {
    use pipe_harness::engine::live;
    anyhow::ensure!(a.jobs >= 1, "--jobs must be at least 1");
    anyhow::ensure!(a.duration >= 1, "--duration 0: the campaign would run no case (give seconds, at least 1)");
    anyhow::ensure!(a.cases >= 1, "--cases 0: the campaign would run no case");
    let (mut target, _) = pipe_harness::engine::plan::load(a.plan)?;
    anyhow::ensure!(a.memory_limit_mb != Some(0), "--memory-limit-mb 0: the server could not start");
    anyhow::ensure!(a.process_limit != Some(0), "--process-limit 0: the server could not start");
    if let Some(mib) = a.memory_limit_mb {
        target.limits.memory_bytes = Some(mib.saturating_mul(1024 * 1024));
    }
    if let Some(n) = a.process_limit {
        target.limits.processes = Some(n);
    }
    note_containment();
    let mut opts = live::FuzzOptions::new(a.seed.unwrap_or_else(clock_seed));
    opts.max_cases = a.cases;
    opts.max_time = std::time::Duration::from_secs(a.duration);
    opts.jobs = a.jobs;
    anyhow::ensure!(a.replays >= 1, "--replays must be at least 1");
    opts.replays = a.replays;
    opts.max_findings = a.max_findings.unwrap_or(usize::MAX);
    anyhow::ensure!(a.hang_timeout_ms >= 1, "--hang-timeout-ms must be at least 1");
    opts.hang_timeout = std::time::Duration::from_millis(a.hang_timeout_ms);
    opts.max_rss_growth_kib = (a.max_rss_growth_mib > 0).then_some(a.max_rss_growth_mib * 1024);
    if let Some(dir) = a.corpus {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading the corpus {}", dir.display()))? {
            let path = entry.with_context(|| format!("reading the corpus {}", dir.display()))?.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                // A saved message; a recording: its messages seed the message cases; anything
                // else is a frame.
                if path.extension().is_some_and(|e| e == "msg") {
                    opts.messages.push(bytes);
                    continue;
                }
                match serde_json::from_slice::<live::Recording>(&bytes) {
                    Ok(rec) => {
                        let case = rec.case(&target).with_context(|| format!("reading {}", path.display()))?;
                        // Whole, as the session it recorded (a coverage campaign sends it
                        // first), and its messages or writes as seeds of the mutation cases.
                        opts.seed_cases.push(case.clone());
                        match case.session {
                            Some(_) => opts.messages.extend(case.writes),
                            None => opts.corpus.extend(case.writes),
                        }
                    }
                    Err(_) => opts.corpus.push(bytes),
                }
            }
        }
    }
    let backend = native_backend()?;
    let stats = match a.stats {
        Some(path) => {
            let mut f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            writeln!(f, "elapsed_s,cases,cases_per_s,edges,corpus,findings,restarts")
                .with_context(|| format!("writing {}", path.display()))?;
            Some(std::sync::Mutex::new((f, 0u64)))
        }
        None => None,
    };
    eprintln!("fuzzing {} with seed {} for {} s on {} job(s)", target.name, opts.seed, a.duration, opts.jobs);
    let total = a.duration as f64;
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let every = std::time::Duration::from_millis(if terminal { 250 } else { 5000 });
    let last_print = std::sync::Mutex::new(std::time::Instant::now());
    let campaign = live::fuzz(&backend, &target, &opts, |c| {
        // A stats line for every second the campaign has run.
        if let (Some(stats), Some(last)) = (&stats, c.timeline.last()) {
            if let Ok(mut s) = stats.lock() {
                let second = last.elapsed_ms / 1000;
                if second > s.1 {
                    s.1 = second;
                    let rate = last.cases as f64 / (last.elapsed_ms as f64 / 1000.0).max(0.001);
                    let edges = last.edges.map(|e| e.to_string()).unwrap_or_default();
                    let _ = writeln!(
                        s.0,
                        "{second},{},{rate:.0},{edges},{},{},{}",
                        last.cases, last.corpus, last.findings, last.restarts
                    );
                }
            }
        }
        // On a terminal, a progress line redrawn at most four times a second; elsewhere (a CI
        // log) a plain status line every 5 s, never carriage-return frames.
        let due = last_print.lock().is_ok_and(|mut t| {
            let due = t.elapsed() >= every;
            if due {
                *t = std::time::Instant::now();
            }
            due
        });
        if due {
            let secs = (c.elapsed_ms as f64 / 1000.0).max(0.001);
            let done = (secs / total.max(0.001)).min(1.0);
            let bar: String = (0..20).map(|i| if (i as f64) < done * 20.0 { '#' } else { '.' }).collect();
            let edges = c.edges.map(|e| format!(", {e} edges, {} inputs", c.covered_inputs)).unwrap_or_default();
            let status = format!(
                "{} cases, {:.0}/s{edges}, {} findings, {} unconfirmed, {} restarts, {:.0} s left",
                c.cases,
                c.cases as f64 / secs,
                c.findings.len(),
                c.unconfirmed.len(),
                c.restarts,
                (total - secs).max(0.0)
            );
            if terminal {
                eprint!("\r[{bar}] {status}   ");
            } else {
                eprintln!("fuzzing: {:.0} s: {status}", secs);
            }
        }
    })?;
    if terminal {
        eprintln!();
    }
    if let Some(dir) = a.save_corpus {
        save_corpus(dir, &campaign)?;
    }
    if !campaign.findings.is_empty() {
        std::fs::create_dir_all(a.out).with_context(|| format!("creating {}", a.out.display()))?;
    }
    let mut saved = Vec::new();
    for r in &campaign.findings {
        let file = a.out.join(r.file_name());
        std::fs::write(&file, serde_json::to_string_pretty(r).context("formatting a reproducer")?)
            .with_context(|| format!("writing {}", file.display()))?;
        saved.push(file);
    }
    if a.format == PageFormat::Json {
        println!("{}", serde_json::to_string_pretty(&campaign).context("formatting the campaign")?);
        return Ok(u8::from(!campaign.findings.is_empty()));
    }
    if a.format == PageFormat::Html {
        use pipe_harness::engine::html::{render, Part};
        let replays: Vec<String> =
            saved.iter().map(|f| format!("pipe-harness replay {} {}", f.display(), a.plan.display())).collect();
        let settings = settings_of(a, &opts);
        let part = Part::Campaign { target: &target.name, campaign: &campaign, settings: &settings, replays: &replays };
        print!("{}", render(&format!("pipe-harness fuzz: {}", target.name), &[part]));
        return Ok(u8::from(!campaign.findings.is_empty()));
    }
    for (r, file) in campaign.findings.iter().zip(&saved) {
        let repeat = if r.repeat > 1 { format!(", sent {} times", r.repeat) } else { String::new() };
        use pipe_harness::wrap::{wrap, COLUMNS};
        let item = |text: String| wrap(&text, COLUMNS, "         ", "           ");
        println!(
            "{}",
            wrap(
                &format!(
                    "FINDING  case {} ({}), found after {:.1} s: {}",
                    r.index,
                    r.original.kind,
                    r.found_after_ms as f64 / 1000.0,
                    r.outcome.describe()
                ),
                COLUMNS,
                "",
                "           "
            )
        );
        println!(
            "{}",
            item(format!(
                "bucket: {}  (detector: {}; {} hit(s); replayed {} of {} on fresh servers)",
                r.bucket,
                r.outcome.detector(),
                r.hits,
                r.replays.matched,
                r.replays.of
            ))
        );
        println!(
            "{}",
            item(format!(
                "minimised to {} write(s), {} bytes{repeat}: {}",
                r.case.writes.len(),
                r.case.len(),
                r.case.writes_hex()
            ))
        );
        // Paths and the command whole: copied as printed.
        println!("         saved: {}", file.display());
        println!("         replay: pipe-harness replay {} {}", file.display(), a.plan.display());
    }
    if !a.verbose && !campaign.unconfirmed.is_empty() {
        let hits: u64 = campaign.unconfirmed.iter().map(|u| u.hits).sum();
        let line = format!(
            "UNCONFIRMED  {} bucket(s), {hits} hit(s), not reproduced on a fresh server: not findings (--verbose lists them)",
            campaign.unconfirmed.len()
        );
        println!("{}", pipe_harness::wrap::wrap(&line, pipe_harness::wrap::COLUMNS, "", "             "));
    }
    for u in campaign.unconfirmed.iter().filter(|_| a.verbose) {
        let tried: Vec<String> = u.tried.iter().map(|t| format!("{} of {}", t.matched, t.of)).collect();
        println!(
            "UNCONFIRMED  {}: {} hit(s), not reproduced on a fresh server (replays in the bucket: {}); not a finding\n         first: case {} ({}): {}",
            u.bucket,
            u.hits,
            if tried.is_empty() { "none made".to_string() } else { tried.join(", ") },
            u.index,
            u.case.kind,
            u.outcome.describe()
        );
    }
    let say = |text: &str| println!("{}", pipe_harness::wrap::wrap(text, pipe_harness::wrap::COLUMNS, "", "    "));
    for e in &campaign.ended_early {
        say(&format!("ENDED EARLY  {e} (the findings above stand; the campaign fuzzed for less than it was asked)"));
    }
    say(&format!("detection: {}", campaign.liveness));
    match campaign.edges {
        Some(edges) => say(&format!(
            "coverage: {edges} edges reached, {} inputs kept for reaching new ones (the server was built with pipe-harness cc)",
            campaign.covered_inputs
        )),
        None => say("coverage: none (fuzzed black-box; a server built with pipe-harness cc and coverage = true in the plan reports edges)"),
    }
    say(&format!(
        "{} cases in {:.1} s ({:.0}/s) on {} job(s), {} distinct findings, {} unconfirmed, {} more cases hit a known bucket, {} server starts (+{} to replay)",
        campaign.cases,
        campaign.elapsed_ms as f64 / 1000.0,
        campaign.cases as f64 * 1000.0 / campaign.elapsed_ms.max(1) as f64,
        opts.jobs,
        campaign.findings.len(),
        campaign.unconfirmed.len(),
        campaign.duplicates,
        campaign.restarts,
        campaign.replay_starts
    ));
    Ok(u8::from(!campaign.findings.is_empty()))
}

fn list(sddl: bool, format: Format, filter: Option<&str>) -> anyhow::Result<u8> {
    let mut all = pipe_harness::inventory::list(sddl).context("listing this machine's endpoints")?;
    if let Some(f) = filter {
        all.retain(|e| e.name.contains(f));
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&all).context("formatting JSON")?),
        Format::Human => {
            for e in &all {
                let pids = e.server_pids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
                let instances = match e.instances {
                    Some((n, Some(255))) => format!("  instances {n}/unlimited"),
                    Some((n, Some(max))) => format!("  instances {n}/{max}"),
                    Some((n, None)) => format!("  instances {n}"),
                    None => String::new(),
                };
                println!(
                    "{}  owner {}  server pid {}{instances}  {}",
                    e.name,
                    e.owner.as_deref().unwrap_or("?"),
                    if pids.is_empty() { "?" } else { &pids },
                    e.protection.as_deref().unwrap_or("")
                );
                for f in &e.flags {
                    println!("    ! {f}");
                }
            }
            let flagged = all.iter().filter(|e| !e.flags.is_empty()).count();
            eprintln!("{} endpoints, {flagged} flagged", all.len());
        }
    }
    Ok(0)
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64 & 0xFFFF_FFFF)
}

fn init(out: &std::path::Path, name: Option<&str>, wait_ms: u64, command: &[String]) -> anyhow::Result<u8> {
    use pipe_harness::engine::starter;
    let (program, args) = command.split_first().context("init needs the program to start, after --")?;
    let program = std::path::Path::new(program);
    let program = if program.components().count() > 1 {
        std::fs::canonicalize(program).with_context(|| format!("{}: no such program", program.display()))?
    } else {
        std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join(program)).find(|f| f.is_file()))
            .with_context(|| format!("{}: not found on PATH", program.display()))?
    };
    anyhow::ensure!(!out.exists(), "{} exists: not overwritten (give another --out)", out.display());
    let name = name.map_or_else(
        || program.file_name().map_or_else(|| "target".into(), |f| f.to_string_lossy().into_owned()),
        str::to_string,
    );
    let backend = native_backend()?;
    let seen = starter::observe(&backend, &program, args, std::time::Duration::from_millis(wait_ms))
        .with_context(|| format!("starting {} to see what it listens on", program.display()))?;
    let text = starter::plan(&name, &program, args, &seen);
    std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("{} listened on {}; plan written to {}", program.display(), seen.endpoint, out.display());
    Ok(0)
}

fn replay(reproducer: &std::path::Path, plan: &std::path::Path, times: u32, format: PageFormat) -> anyhow::Result<u8> {
    use pipe_harness::engine::live;
    anyhow::ensure!(times >= 1, "--times must be at least 1");
    let bytes = std::fs::read(reproducer).with_context(|| format!("reading {}", reproducer.display()))?;
    let (target, _) = pipe_harness::engine::plan::load(plan)?;
    let backend = native_backend()?;
    if !serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.is_object()) {
        // Not a JSON file of ours: an input of the live libFuzzer target (crash-<sha1>...).
        anyhow::ensure!(
            format == PageFormat::Human,
            "--format {format:?} is for reproducers; {} is a libFuzzer input",
            reproducer.display()
        );
        let case = live::libfuzzer::case_from_input(&target, &bytes);
        let outcomes = live::replay_case(&backend, &target, &case, times).context("replaying")?;
        let findings = outcomes.iter().filter(|o| o.is_finding()).count();
        println!(
            "replayed the libFuzzer input {} as {} ({} write(s): {}) against {} on {} fresh server(s): {} ended in a finding",
            reproducer.display(),
            case.kind,
            case.writes.len(),
            case.writes_hex(),
            target.name,
            outcomes.len(),
            findings
        );
        for o in &outcomes {
            println!("  {}", o.describe());
        }
        return Ok(u8::from(findings > 0));
    }
    let text = String::from_utf8_lossy(&bytes);
    if let Ok(rec) = serde_json::from_str::<live::Recording>(&text) {
        anyhow::ensure!(
            format == PageFormat::Human,
            "--format {format:?} is for reproducers; {} is a recording (replayed as text)",
            reproducer.display()
        );
        let case = rec.case(&target).with_context(|| format!("reading {}", reproducer.display()))?;
        let outcomes = live::replay_case(&backend, &target, &case, times).context("replaying")?;
        let findings = outcomes.iter().filter(|o| o.is_finding()).count();
        println!(
            "replayed {} ({} message(s){}) against {} on {} fresh server(s): {} ended in a finding",
            case.kind,
            case.writes.len(),
            if case.session.is_some_and(|s| s.steps > 0) { ", after the plan's session" } else { "" },
            target.name,
            outcomes.len(),
            findings
        );
        for o in &outcomes {
            println!("  {}", o.describe());
        }
        return Ok(u8::from(findings > 0));
    }
    let r: live::Reproducer = serde_json::from_str(&text)
        .with_context(|| format!("{}: neither a pipe-harness reproducer nor a recording", reproducer.display()))?;
    let replays = live::replay_reproducer(&backend, &target, &r, times).context("replaying")?;
    match format {
        PageFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&replays).context("formatting the replays")?);
            return Ok(u8::from(replays.matched > 0));
        }
        PageFormat::Html => {
            use pipe_harness::engine::html::{render, Part};
            let command = format!("pipe-harness replay {} {}", reproducer.display(), plan.display());
            let part = Part::Replay {
                target: &target.name,
                reproducer: &r,
                matched: replays.matched,
                of: replays.of,
                command: &command,
            };
            print!("{}", render(&format!("pipe-harness replay: {}", target.name), &[part]));
            return Ok(u8::from(replays.matched > 0));
        }
        PageFormat::Human => {}
    }
    println!(
        "replayed {} ({} write(s), {} bytes{}) against {} on {} fresh server(s): {} of {} in the bucket {}",
        r.case.kind,
        r.case.writes.len(),
        r.case.len(),
        if r.repeat > 1 { format!(", {} times each", r.repeat) } else { String::new() },
        target.name,
        replays.of,
        replays.matched,
        replays.of,
        r.bucket
    );
    for other in &replays.others {
        println!("  other outcome: {other}");
    }
    println!("when found: {}", r.outcome.describe());
    Ok(u8::from(replays.matched > 0))
}

/// Whether `compiler` is clang (its `--version` says so): clang links a sanitizer runtime by
/// itself when it is given `-fsanitize-coverage` alone, and gcc does not.
fn is_clang(compiler: &str) -> bool {
    std::process::Command::new(compiler)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("clang"))
}

/// The flags `pipe-harness cc` adds to the user's: SanitizerCoverage (edges and comparison
/// operands); and, for clang when the user asked for no sanitizer and the command links,
/// `-fno-sanitize-link-runtime`, so that a plain build stays plain (without it clang links its
/// UBSan runtime to serve the coverage callbacks, which catches SIGSEGV, SIGBUS and SIGFPE and
/// exits 1 with a report of its own). Also for clang, every comparison is traced, those of
/// loop back edges too (`-sanitizer-coverage-prune-blocks=0`): a magic compared a byte at a
/// time in a loop is compared on a back edge, which clang's pass leaves out by default.
fn cc_flags(args: &[String], clang: bool) -> Vec<String> {
    let mut flags = vec!["-fsanitize-coverage=trace-pc,trace-cmp".to_string()];
    if clang {
        flags.extend(["-mllvm".into(), "-sanitizer-coverage-prune-blocks=0".into()]);
    }
    let links = !args.iter().any(|a| a == "-c" || a == "-S" || a == "-E");
    if clang && links && !asks_for_a_sanitizer(args) {
        flags.push("-fno-sanitize-link-runtime".into());
    }
    // Library comparisons stay calls, which the runtime (or a sanitizer's interceptors) sees:
    // not expanded inline, not merged from byte comparisons by the optimiser.
    flags.extend(LIBRARY_COMPARISONS.iter().map(|f| format!("-fno-builtin-{f}")));
    flags
}

/// The library calls whose operands the runtime logs (harness/runtime/ph_cov.c).
const LIBRARY_COMPARISONS: [&str; 7] = ["memcmp", "bcmp", "strcmp", "strncmp", "strcasecmp", "strncasecmp", "memmem"];

/// The flags the runtime is compiled with: not instrumented, no builtins (its own comparison
/// loops stay loops), and, when the user asked for a sanitizer that intercepts the library
/// comparisons (address, memory, thread), `PH_SANITIZER_HOOKS`: the runtime then leaves the
/// calls to the sanitizer's interceptors and logs from their hooks.
fn runtime_flags(args: &[String]) -> Vec<String> {
    let mut flags: Vec<String> = ["-c", "-O2", "-fPIC", "-fno-builtin"].map(String::from).to_vec();
    let intercepting = args
        .iter()
        .filter_map(|a| a.strip_prefix("-fsanitize="))
        .any(|list| list.split(',').any(|s| matches!(s, "address" | "hwaddress" | "memory" | "thread" | "fuzzer")));
    if intercepting {
        flags.push("-DPH_SANITIZER_HOOKS".into());
    }
    flags
}

/// Whether the user asked for a sanitizer (`-fsanitize=address`, `-fsanitize=undefined`...;
/// `-fsanitize-coverage=` is not one).
fn asks_for_a_sanitizer(args: &[String]) -> bool {
    args.iter().any(|a| a.starts_with("-fsanitize="))
}

fn cc(args: &[String]) -> anyhow::Result<u8> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    let compiler = std::env::var("CC").ok().filter(|c| !c.is_empty()).unwrap_or_else(|| {
        if on_path("clang") {
            "clang".into()
        } else {
            "cc".into()
        }
    });
    // A fresh directory only root can write (random name, made exclusively, 0700), so the
    // source compiled and the object linked are the harness's own.
    let dir = tempfile::Builder::new().prefix("pipe-harness-cc-").tempdir().context("creating the build directory")?;
    let source = dir.path().join("ph_cov.c");
    let object = dir.path().join("ph_cov.o");
    std::io::Write::write_all(
        &mut std::fs::File::create_new(&source).with_context(|| format!("creating {}", source.display()))?,
        pipe_harness::engine::live::coverage::RUNTIME_C.as_bytes(),
    )
    .with_context(|| format!("writing {}", source.display()))?;
    // The runtime itself is not instrumented.
    let status = std::process::Command::new(&compiler)
        .args(runtime_flags(args))
        .arg("-o")
        .arg(&object)
        .arg(&source)
        .status()
        .with_context(|| format!("running {compiler}"))?;
    anyhow::ensure!(status.success(), "{compiler} could not build the coverage runtime ({status})");
    let links = !args.iter().any(|a| a == "-c" || a == "-S" || a == "-E");
    let mut cmd = std::process::Command::new(&compiler);
    cmd.args(cc_flags(args, is_clang(&compiler))).args(args);
    if links {
        cmd.arg(&object);
    }
    let status = cmd.status().with_context(|| format!("running {compiler}"))?;
    drop(dir);
    Ok(status.code().map_or(2, |c| c.clamp(0, 255) as u8))
}

fn record(
    plan: &std::path::Path,
    listen: &str,
    out: &std::path::Path,
    connections: usize,
    timeout: u64,
) -> anyhow::Result<u8> {
    use pipe_harness::engine::live;
    use pipe_harness::engine::Backend as _;
    anyhow::ensure!(connections >= 1, "--connections must be at least 1");
    let (target, _) = pipe_harness::engine::plan::load(plan)?;
    let backend = native_backend()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // The real server: the running one the plan attaches to, or one started as it says.
    let started = match &target.attach {
        Some(_) => None,
        None => Some(live::start(&backend, &target).context("starting the plan's server")?),
    };
    let server = started.as_ref().map_or_else(|| target.attach.clone().unwrap_or_default(), |s| s.endpoint.clone());
    let listen = backend.endpoint(&listen.parse().context("--listen")?);
    eprintln!("recording: serving {listen} for the client, relaying to {server}");
    let opts = live::RecordOptions { connections, timeout: std::time::Duration::from_secs(timeout) };
    let mut saved = Vec::new();
    live::record(&backend, &target, &listen, &server, &opts, |r| {
        let file = out.join(format!("{}-conn{}.json", target.name, r.connection));
        match serde_json::to_string_pretty(r).map_err(anyhow::Error::from).and_then(|t| Ok(std::fs::write(&file, t)?)) {
            Ok(()) => {
                println!(
                    "connection {}: {} message(s) from the client, {} reply(ies); saved {}",
                    r.connection,
                    r.messages.len(),
                    r.replies.len(),
                    file.display()
                );
                saved.push(file);
            }
            Err(e) => eprintln!("connection {}: not saved: {e}", r.connection),
        }
    })
    .context("recording")?;
    anyhow::ensure!(saved.len() == connections, "{} of {connections} recordings saved", saved.len());
    Ok(0)
}

/// The registry, one block per scenario.
fn scenario_list() -> String {
    let rules = |r: Option<&[pipe_harness::probe::Rule]>| match r {
        None => "not applicable".to_string(),
        Some([]) => "-".to_string(),
        Some(rs) => rs.iter().map(|r| r.id()).collect::<Vec<_>>().join(", "),
    };
    pipe_harness::scenarios::SCENARIOS
        .iter()
        .map(|s| {
            format!(
                "{}\n  {}\n  Windows: {}\n  Unix:    {}\n  needs:   {}\n",
                s.id,
                s.title,
                rules(s.windows),
                rules(s.unix),
                s.needs.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn audit_plan(
    plan: &std::path::Path,
    scenarios: &[String],
    format: ReportFormat,
    out: Option<&std::path::Path>,
    seed: Option<u64>,
    strict: bool,
    unmet: pipe_harness::scenarios::Unmet,
) -> anyhow::Result<u8> {
    use pipe_harness::engine::report::AuditReport;
    use std::sync::{Arc, Mutex};
    let (target, policy) = pipe_harness::engine::plan::load(plan)?;
    note_containment();
    let chosen = scenarios
        .iter()
        .map(|name| name.parse::<pipe_harness::scenarios::ScenarioId>())
        .collect::<Result<Vec<_>, _>>()?;
    let seed = seed.unwrap_or_else(clock_seed);
    let backend = native_backend()?;
    let plan_name = plan.display().to_string();
    let source = pipe_harness::engine::plan::source_file(plan, 1);
    let title = format!("pipe-harness audit of {}", target.name);
    // The human report to standard output is printed check by check as each is reached;
    // any other goes where it was asked at the end, with a line per check on stderr meanwhile.
    let streaming = matches!(format, ReportFormat::Human) && out.is_none();
    let shell = AuditReport::new(pipe_harness::scenarios::platform(&backend), seed, Vec::new());
    let judged: Arc<Mutex<(Vec<pipe_harness::engine::CheckResult>, usize)>> = Arc::default();
    // Ctrl-C, SIGTERM, SIGHUP: what was judged so far, written as asked, marked interrupted
    // (the signal cleanup runs this, then ends the process with 128 + the signal).
    let on_signal = {
        let (judged, shell, plan_name, source, title) =
            (judged.clone(), shell.clone(), plan_name.clone(), source.clone(), title.clone());
        let out = out.map(std::path::Path::to_path_buf);
        pipe_harness::tree::register_cleanup(Box::new(move || {
            let (results, total) = judged.lock().map(|j| j.clone()).unwrap_or_default();
            let mut report = shell.clone();
            report.interrupted = Some(format!(
                "{} after {} of {total} checks",
                pipe_harness::supervise::ending_signal().unwrap_or("a termination signal"),
                results.len()
            ));
            report.results = results;
            report.name_plan(&plan_name);
            report.locate(source.clone());
            let text = if streaming { report.human_summary() } else { render_report(&report, format, None, &title) };
            let _ = write_report(out.as_deref(), &text);
        }))
    };
    if streaming {
        print!("{}", shell.human_header());
        let _ = std::io::stdout().flush();
    }
    // On a terminal, a progress line on stderr under the verdicts (rewritten in place, cleared
    // before each verdict is printed); in a log, the verdicts alone are the progress.
    let progress_line = streaming && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if progress_line {
        eprint!("\r\x1b[K[0 checks judged] the first check is running");
    }
    let mut report = pipe_harness::scenarios::audit_with(
        &backend,
        &target,
        &policy,
        seed,
        &chosen,
        unmet,
        &mut |r, (done, total)| {
            if pipe_harness::supervise::is_ending() {
                // Ended by a signal: a check cut short by it is not a verdict.
                return;
            }
            let mut one = AuditReport::new(String::new(), seed, vec![r.clone()]);
            one.name_plan(&plan_name);
            let r = one.results.remove(0);
            // Recorded before it is shown: whatever was shown, a signal's report has.
            let line = if streaming {
                AuditReport::human_check_wrapped(&r, pipe_harness::wrap::COLUMNS)
            } else {
                format!("[{done}/{total}] {} {} ({} ms)", r.verdict.kind().to_uppercase(), r.scenario, r.duration_ms)
            };
            if let Ok(mut j) = judged.lock() {
                j.0.push(r);
                j.1 = total;
            }
            if streaming {
                if progress_line {
                    eprint!("\r\x1b[K");
                }
                print!("{line}");
                let _ = std::io::stdout().flush();
                if progress_line && done < total {
                    eprint!("\r\x1b[K[{done}/{total} checks judged] the next check is running");
                }
            } else {
                eprintln!("{line}");
            }
        },
    );
    if pipe_harness::supervise::is_ending() {
        // A signal ended the checks: its cleanup writes what was judged before, marked
        // interrupted, and ends the process (main waits for it in `settle`).
        return Ok(2);
    }
    pipe_harness::tree::release_cleanup(on_signal);
    report.name_plan(&plan_name);
    report.locate(source);
    let text = if streaming {
        report.human_summary()
    } else {
        render_report(&report, format, Some(pipe_harness::engine::Backend::probe(&backend)), &title)
    };
    write_report(out, &text)?;
    Ok(report.exit_code_with(strict))
}

/// An audit's report in `format`.
fn render_report(
    report: &pipe_harness::engine::report::AuditReport,
    format: ReportFormat,
    probe: Option<&pipe_harness::probe::ProbeReport>,
    title: &str,
) -> String {
    match format {
        ReportFormat::Human => report.to_human_wrapped(pipe_harness::wrap::COLUMNS),
        ReportFormat::Json => report.to_json() + "\n",
        ReportFormat::Sarif => report.to_sarif() + "\n",
        ReportFormat::Junit => report.to_junit(),
        ReportFormat::Html => {
            use pipe_harness::engine::html::{render, Part};
            render(title, &[Part::Audit { report, probe }])
        }
    }
}

/// Writes a report to `out`, or to standard output.
fn write_report(out: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing the report to {}", path.display())),
        None => {
            let mut stdout = std::io::stdout();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("writing the report to standard output")
        }
    }
}

#[cfg(windows)]
fn reach(pipe: &str, published: Option<&str>) -> anyhow::Result<u8> {
    use pipe_harness::windows::helper::{encode_reach, reach_here};
    let (found, connected) = reach_here(pipe, published).with_context(|| format!("reaching {pipe}"))?;
    Ok(encode_reach(found, connected))
}

#[cfg(not(windows))]
fn reach(_pipe: &str, _published: Option<&str>) -> anyhow::Result<u8> {
    anyhow::bail!("reach is the Windows cross-session helper; on Unix the harness uses a network namespace instead")
}
