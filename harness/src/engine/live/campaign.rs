//! The campaign: cases from a seed, on one server per job, until a case limit, a time limit or
//! enough findings; every crash bucketed; a bucket becomes a finding only once a case of it,
//! minimised, has ended fresh servers in the same bucket on every replay.
//!
//! When a case ends in a new bucket, the candidates for the blame are that case and the few
//! before it on the same server (the newest first; when the case's first connect failed,
//! the case before it first). The first candidate that reproduces the bucket on a fresh server
//! is minimised, and the minimised case must then reproduce it [`FuzzOptions::replays`] times
//! out of as many (else the unminimised candidate is tried the same way). A bucket no candidate
//! reproduces is reported apart, as unconfirmed, with its count and the case in flight.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::target::Target;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::case::{generate_for, Case};
use super::driver::{look_after, run_case, Blame, Liveness};
use super::minimize::{minimize, Budget};
use super::oracle::{BucketKey, Outcome};
use super::replay::{confirm, Replays};

/// A confirmed finding: enough to replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reproducer {
    /// The target's name.
    pub target: String,
    /// The campaign's seed.
    pub seed: u64,
    /// The index of the case that reproduced (the case generated from the seed and it).
    pub index: u64,
    /// The case as generated.
    pub original: Case,
    /// The case after minimisation (what to replay).
    pub case: Case,
    /// How many times to send `case` in a row to reproduce (1 but for memory growth, which
    /// shows over many cases: the last case, repeated as often as the cases that grew it).
    #[serde(default = "one")]
    pub repeat: u64,
    /// What the server did when it was found.
    pub outcome: Outcome,
    /// The bucket (crash state) it belongs to.
    pub bucket: BucketKey,
    /// The confirmation: replays of `case` on fresh servers, and how many ended in `bucket`.
    pub replays: Replays,
    /// Further cases of the campaign that ended in the same bucket.
    #[serde(default)]
    pub hits: u64,
    /// When, after the campaign started, it was first seen (ms).
    #[serde(default)]
    pub found_after_ms: u64,
    /// The hang timeout it was found and confirmed with (ms); replays use the same.
    #[serde(default = "two_seconds")]
    pub hang_timeout_ms: u64,
}

fn one() -> u64 {
    1
}

fn two_seconds() -> u64 {
    2000
}

impl Reproducer {
    /// The file name the command saves it under: `TARGET-seedS-caseI.json`.
    pub fn file_name(&self) -> String {
        format!("{}-seed{}-case{}.json", self.target, self.seed, self.index)
    }
}

/// A bucket seen in the campaign that no case could reproduce on a fresh server: not a
/// finding (it may depend on what came before, or on timing), reported apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unconfirmed {
    /// The bucket.
    pub bucket: BucketKey,
    /// What the server did the first time.
    pub outcome: Outcome,
    /// How many cases ended in it.
    pub hits: u64,
    /// How many of those hits were followed by replays of their candidates (at most
    /// [`UNCONFIRMED_ATTEMPTS`]; the later ones are only counted).
    pub attempts: u32,
    /// The index of the case in flight the first time.
    pub index: u64,
    /// That case.
    pub case: Case,
    /// The replays of the candidates, each on a fresh server, none of which reproduced it.
    pub tried: Vec<Replays>,
}

/// How many hits of an unconfirmed bucket are followed by replays of their candidates.
pub const UNCONFIRMED_ATTEMPTS: u32 = 3;

/// A campaign's result.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Campaign {
    /// Cases sent.
    pub cases: u64,
    /// Confirmed findings, one per bucket, minimised.
    pub findings: Vec<Reproducer>,
    /// Buckets no case reproduced on a fresh server.
    pub unconfirmed: Vec<Unconfirmed>,
    /// Further cases that ended in a bucket already found.
    pub duplicates: u64,
    /// How long it ran.
    pub elapsed_ms: u64,
    /// Servers started for the campaign's cases (the first of each job, and one after each
    /// finding); replays and minimisation start their own, counted in `replay_starts`.
    pub restarts: u64,
    /// Servers started to replay and minimise.
    pub replay_starts: u64,
    /// What the detection rested on (from the first job's server).
    pub liveness: String,
    /// Edges the server has reached (a server built with `pipe-harness cc`); `None`: fuzzed
    /// black-box.
    #[serde(default)]
    pub edges: Option<u64>,
    /// Inputs kept because they reached new edges.
    #[serde(default)]
    pub covered_inputs: u64,
    /// Jobs that ended before the campaign's limits, and why (a server that could not be
    /// started again after a finding): the findings stand, but the campaign fuzzed for less
    /// than it was asked to. A campaign whose every job ended so without a finding is an error
    /// instead.
    #[serde(default)]
    pub ended_early: Vec<String>,
    /// The campaign over time: a sample at its start, one a second, one at its end (what
    /// `--stats` writes and the HTML report draws).
    #[serde(default)]
    pub timeline: Vec<Sample>,
    /// The coverage corpus at the end: the messages that reached new edges, and the seed
    /// messages it started from (`fuzz --save-corpus`; a later campaign resumes from them).
    /// Empty black-box. Not part of the JSON report.
    #[serde(skip)]
    pub kept: Vec<Vec<u8>>,
}

/// The campaign at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Since the campaign started, ms.
    pub elapsed_ms: u64,
    /// Cases sent so far.
    pub cases: u64,
    /// Edges reached so far (`None`: black-box).
    pub edges: Option<u64>,
    /// The corpus: inputs kept for reaching new edges, or (black-box) the seed inputs.
    pub corpus: u64,
    /// Confirmed findings so far.
    pub findings: u64,
    /// Servers started for cases so far.
    pub restarts: u64,
}

impl Campaign {
    /// Adds a sample of now when the last one is a second old or more (or `always`);
    /// `seeds` is the black-box corpus size.
    fn sample(&mut self, seeds: u64, always: bool) {
        let due = self.timeline.last().is_none_or(|l| self.elapsed_ms / 1000 > l.elapsed_ms / 1000);
        if due || always {
            self.timeline.push(Sample {
                elapsed_ms: self.elapsed_ms,
                cases: self.cases,
                edges: self.edges,
                corpus: if self.edges.is_some() { self.covered_inputs } else { seeds },
                findings: self.findings.len() as u64,
                restarts: self.restarts,
            });
        }
    }
}

/// How a campaign runs.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// The campaign's seed.
    pub seed: u64,
    /// At most this many cases (over all jobs).
    pub max_cases: u64,
    /// At most this long (replays and minimisation of what is found meanwhile included).
    pub max_time: Duration,
    /// Stop after this many confirmed findings.
    pub max_findings: usize,
    /// Seed inputs (bytes as the server receives them) for the mutation cases; the target's
    /// ping, framed, is always added.
    pub corpus: Vec<Vec<u8>>,
    /// Seed messages (payloads, without framing; from recordings) that mutation cases send
    /// as messages: after the session and behind the message prefix, for a target with one.
    pub messages: Vec<Vec<u8>>,
    /// Whole cases (recorded connections, as sessions: [`super::Recording::case`]) that a
    /// coverage campaign sends once each at its start, with each of [`corpus`](Self::corpus)
    /// as a raw input after the session, so that what they reach seeds its corpus.
    pub seed_cases: Vec<Case>,
    /// Servers fuzzed in parallel, each with its own fuzzer thread.
    pub jobs: usize,
    /// Report a memory-growth finding when the server's resident size grows by more than this
    /// (KiB) over its baseline; `None`: do not watch memory.
    pub max_rss_growth_kib: Option<u64>,
    /// Read the resident size every this many cases (the baseline after the first such run of
    /// cases, so that start-up allocations are not counted as growth).
    pub rss_every: u64,
    /// Replays on fresh servers a minimised case must pass, all in its bucket, to be a finding.
    pub replays: u32,
    /// Minimisation's bounds per finding.
    pub minimize: Budget,
    /// How long a server may take to hang up after a case's end of stream, or to answer the
    /// ping, before it counts as hung.
    pub hang_timeout: Duration,
    /// Ping every this many cases (where the server hangs up after end of stream; else after
    /// every case).
    pub ping_every: u64,
    /// Cases before the one in flight that are candidates for the blame.
    pub blame_window: usize,
}

impl FuzzOptions {
    /// One job, no case limit, at most 60 s, no corpus, memory watched every 25 cases with a
    /// 64 MiB growth limit, 3 confirming replays, minimisation in at most 300 tries and 15 s,
    /// a 2 s hang timeout, a ping every 16 cases, 4 earlier cases as candidates.
    pub fn new(seed: u64) -> Self {
        FuzzOptions {
            seed,
            max_cases: u64::MAX,
            max_time: Duration::from_secs(60),
            max_findings: usize::MAX,
            corpus: Vec::new(),
            messages: Vec::new(),
            seed_cases: Vec::new(),
            jobs: 1,
            max_rss_growth_kib: Some(64 * 1024),
            rss_every: 25,
            replays: 3,
            minimize: Budget { tries: 300, time: Duration::from_secs(15) },
            hang_timeout: Duration::from_secs(2),
            ping_every: 16,
            blame_window: 4,
        }
    }
}

/// The resident-memory watch of one server.
struct MemoryWatch {
    baseline: Option<u64>,
    since: u64,
}

impl MemoryWatch {
    fn new() -> Self {
        MemoryWatch { baseline: None, since: 0 }
    }

    /// Called after each case; a growth finding when the limit is passed. `pid` is asked only
    /// when the size is read (a managed server's process is its manager's answer).
    fn check(&mut self, pid: impl FnOnce() -> u32, opts: &FuzzOptions) -> Option<Outcome> {
        let limit = opts.max_rss_growth_kib?;
        self.since += 1;
        if self.since % opts.rss_every.max(1) != 0 {
            return None;
        }
        let now = crate::supervise::resident_kib(pid()).ok()?;
        match self.baseline {
            None => {
                self.baseline = Some(now);
                self.since = 0;
                None
            }
            Some(baseline) if now > baseline.saturating_add(limit) => {
                Some(Outcome::MemoryGrowth { baseline_kib: baseline, now_kib: now, cases: self.since })
            }
            Some(_) => None,
        }
    }
}

/// What the jobs share.
struct Shared {
    campaign: Mutex<Campaign>,
    next: AtomicU64,
    stop: AtomicBool,
    /// Buckets being confirmed by some job now, with the other jobs' hits there meanwhile.
    pending: Mutex<std::collections::BTreeMap<BucketKey, u64>>,
    /// What coverage has shown so far, shared by the jobs.
    covered: Mutex<Covered>,
}

/// The coverage corpus: the edges seen, the inputs (messages) that reached new ones, the
/// comparison tokens.
#[derive(Default)]
struct Covered {
    seen: super::coverage::Seen,
    /// Each input with the comparisons it ran into.
    corpus: Vec<super::coverage::Entry>,
    tokens: Vec<super::coverage::Token>,
    /// The two above as the jobs read them, rebuilt when they change.
    snapshot: std::sync::Arc<CoverageSnapshot>,
    /// Input-to-state candidates, tried before any other case: a new input with each of its
    /// comparisons' operands put where the other one was.
    queue: VecDeque<Vec<u8>>,
    /// The corpus's cases (recorded sessions, raw corpus files), sent once each first.
    seeds: VecDeque<Case>,
}

/// How long a case's coverage waits for the server to be back waiting for input, at most
/// (a server still busy then is read as it is; a hang has its own detector).
pub(crate) const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Candidates queued per new input at most.
const MAX_CANDIDATES: usize = 64;

/// Candidates from library comparisons (memcmp, strcmp...) queued per new input at most, beside
/// those of [`MAX_CANDIDATES`].
const MAX_LIBRARY_CANDIDATES: usize = 16;

/// Places in one input where one operand is put, at most.
const MAX_PLACES: usize = 8;

/// What a job generates its next covered case from.
type CoverageSnapshot = (Vec<super::coverage::Entry>, Vec<super::coverage::Token>);

impl Covered {
    fn refresh(&mut self) {
        self.snapshot = std::sync::Arc::new((self.corpus.clone(), self.tokens.clone()));
    }
}

/// Tokens kept at most (the newest).
const MAX_TOKENS: usize = 512;

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Campaign> {
        self.campaign.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Fuzzes `target`: cases from `opts.seed`, until `opts.max_cases`, `opts.max_time` or
/// `opts.max_findings`, on `opts.jobs` servers in parallel, each job taking the next case index
/// not yet taken. `progress` is called after each case with the campaign so far.
pub fn fuzz<B: Backend>(
    backend: &B,
    target: &Target,
    opts: &FuzzOptions,
    progress: impl Fn(&Campaign) + Sync,
) -> Result<Campaign> {
    let t0 = Instant::now();
    let _accounts = crate::supervise::TestAccounts::create(&target.create_accounts)?;
    if let Some(m) = &target.managed {
        if opts.jobs > 1 {
            return Err(Error::invalid(
                "jobs",
                format!(
                    "{m} is one server on one endpoint: --jobs {} needs a program the harness starts once per job",
                    opts.jobs
                ),
            ));
        }
    }
    let endpoint = backend.endpoint_for(target);
    let _service = crate::engine::service::ServiceGuard::new(target, &endpoint, &backend.endpoint_path(&endpoint))?;
    // The target's ping is a well-formed request of its protocol: always a corpus entry.
    let mut with_ping = opts.clone();
    if let Some(ping) = &target.ping {
        with_ping.corpus.extend(target.framing.encode(&ping.request).ok().filter(|p| !opts.corpus.contains(p)));
    }
    let opts = &with_ping;
    let shared = Shared {
        campaign: Mutex::new(Campaign::default()),
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        pending: Mutex::new(std::collections::BTreeMap::new()),
        covered: Mutex::new(Covered::default()),
    };
    // A server built for coverage gets a coverage file per job, named in its environment.
    let jobs = opts.jobs.max(1);
    let files: Vec<super::coverage::CoverageFile> = if target.coverage {
        (0..jobs).map(|_| super::coverage::CoverageFile::create(target.run_as.as_ref())).collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    let targets: Vec<Target> = (0..jobs)
        .map(|j| {
            let mut t = target.clone();
            if let Some(f) = files.get(j) {
                t.env.push((super::coverage::VAR.to_string(), f.path().display().to_string()));
            }
            t
        })
        .collect();
    if target.coverage {
        let mut c = shared.covered.lock().unwrap_or_else(PoisonError::into_inner);
        c.corpus.extend(opts.messages.iter().map(|m| (m.clone(), Vec::new())));
        c.seeds.extend(opts.seed_cases.iter().cloned());
        let steps = target.session.len();
        c.seeds.extend(opts.corpus.iter().map(|raw| Case {
            writes: vec![raw.clone()],
            on: Vec::new(),
            kind: "a corpus file, as it is".into(),
            session: (steps > 0).then_some(super::case::SessionUse { steps, messages: false, prefix: false }),
        }));
        if let Some(ping) = &target.ping {
            c.corpus.push((ping.request.clone(), Vec::new()));
        }
        c.refresh();
        drop(c);
        shared.lock().edges = Some(0);
    }
    shared.lock().sample((opts.corpus.len() + opts.messages.len()) as u64, true);
    // Each job's end: how long after the start, and the error that ended it early, if one did.
    let results: Vec<(Duration, Result<()>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|j| {
                let (t, file, shared, progress) = (&targets[j], files.get(j), &shared, &progress);
                scope.spawn(move || {
                    let r = Job::new(backend, t, opts, shared, t0).and_then(|job| job.run(file, progress));
                    (t0.elapsed(), r)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| (t0.elapsed(), Err(Error::Peer("a fuzzing job panicked".into())))))
            .collect()
    });
    let kept =
        shared.covered.lock().unwrap_or_else(PoisonError::into_inner).corpus.iter().map(|(m, _)| m.clone()).collect();
    let mut campaign = shared.campaign.into_inner().unwrap_or_else(PoisonError::into_inner);
    campaign.kept = kept;
    campaign.elapsed_ms = t0.elapsed().as_millis() as u64;
    campaign.sample((opts.corpus.len() + opts.messages.len()) as u64, true);
    campaign.findings.sort_by_key(|r| r.index);
    // A job that could not (re)start its server fails the campaign only if nothing was found:
    // a server that stops starting after a finding is itself worth the report.
    let mut errors = results.into_iter().enumerate().filter_map(|(j, (at, r))| r.err().map(|e| (j, at, e)));
    if campaign.findings.is_empty() && campaign.unconfirmed.is_empty() {
        if let Some((_, _, e)) = errors.next() {
            return Err(e);
        }
    }
    campaign.ended_early = errors
        .map(|(j, at, e)| format!("job {} of {jobs} ended after {:.1} s: {e}", j + 1, at.as_secs_f64()))
        .collect();
    Ok(campaign)
}

/// One job: a server, the cases it takes, and what it found.
struct Job<'a, B: Backend> {
    backend: &'a B,
    target: &'a Target,
    opts: &'a FuzzOptions,
    shared: &'a Shared,
    t0: Instant,
    live: Liveness,
    server: crate::engine::ServerUnderTest,
    /// Cases this server has had, for the ping's cadence.
    served: u64,
    memory: MemoryWatch,
    /// The last cases on this server, newest last.
    history: VecDeque<(u64, Case)>,
}

impl<'a, B: Backend> Job<'a, B> {
    fn new(backend: &'a B, target: &'a Target, opts: &'a FuzzOptions, shared: &'a Shared, t0: Instant) -> Result<Self> {
        let server = super::driver::start_proved(backend, target, opts.hang_timeout)?;
        let live = Liveness::measure(backend, target, &server, opts.hang_timeout, opts.ping_every);
        {
            let mut c = shared.lock();
            c.restarts += 1;
            if c.liveness.is_empty() {
                c.liveness = live.describe(target.ping.is_some());
            }
        }
        Ok(Job {
            backend,
            target,
            opts,
            shared,
            t0,
            live,
            server,
            served: 0,
            memory: MemoryWatch::new(),
            history: VecDeque::new(),
        })
    }

    fn out_of_time(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed) || self.t0.elapsed() >= self.opts.max_time
    }

    fn run(
        mut self,
        coverage: Option<&super::coverage::CoverageFile>,
        progress: &(impl Fn(&Campaign) + Sync),
    ) -> Result<()> {
        loop {
            if self.out_of_time() {
                return self.last_look(progress);
            }
            let index = self.shared.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.opts.max_cases {
                return self.last_look(progress);
            }
            let mut candidate = false;
            let case = match coverage {
                Some(file) => {
                    let (seed_case, queued) = {
                        let mut c = self.shared.covered.lock().unwrap_or_else(PoisonError::into_inner);
                        match c.seeds.pop_front() {
                            Some(seed_case) => (Some(seed_case), None),
                            None => (None, c.queue.pop_front()),
                        }
                    };
                    // A fresh server's start is not the case's: cleared once it waits for input
                    // (a server that served a case was waited for after it).
                    if self.served == 0 {
                        crate::supervise::wait_until_idle(self.server.pid(), IDLE_TIMEOUT);
                    }
                    let _ = file.clear();
                    match (seed_case, queued) {
                        (Some(seed_case), _) => seed_case,
                        (None, Some(m)) => {
                            candidate = true;
                            let all = self.target.session.len();
                            Case {
                                writes: vec![m],
                                on: Vec::new(),
                                kind: "an input-to-state candidate (a comparison's operand put in place)".into(),
                                session: Some(super::case::SessionUse { steps: all, messages: true, prefix: all > 0 }),
                            }
                        }
                        (None, None) => {
                            let snapshot = std::sync::Arc::clone(
                                &self.shared.covered.lock().unwrap_or_else(PoisonError::into_inner).snapshot,
                            );
                            let _ = file.clear();
                            super::case::generate_covered(
                                self.target,
                                self.opts.seed,
                                index,
                                &self.opts.corpus,
                                &snapshot.0,
                                &snapshot.1,
                            )
                        }
                    }
                }
                None => generate_for(self.target, self.opts.seed, index, &self.opts.corpus, &self.opts.messages),
            };
            let (mut outcome, blame) =
                run_case(self.backend, self.target, &mut self.server, &case, &self.live, self.served);
            if let Some(file) = coverage {
                // The server is done with the case once it is back waiting for input: only
                // then is its map whole.
                crate::supervise::wait_until_idle(self.server.pid(), IDLE_TIMEOUT);
                let reached = self.learn(file, &case, candidate);
                if candidate && !reached && outcome.is_finding() {
                    // The server died before the candidate reached its code (an earlier case
                    // ended it; the map is empty): it never ran, and goes first again, on the
                    // fresh server the finding brings. (Lost, a magic's next byte was never
                    // tried: the Rust fixture's magic was missed for a minute in 3 of 20 runs.)
                    let mut c = self.shared.covered.lock().unwrap_or_else(PoisonError::into_inner);
                    c.queue.push_front(case.writes[0].clone());
                }
            }
            self.served += 1;
            if !outcome.is_finding() {
                let server = &self.server;
                outcome = self.memory.check(|| server.pid(), self.opts).unwrap_or(outcome);
            }
            self.history.push_back((index, case));
            while self.history.len() > self.opts.blame_window + 1 {
                self.history.pop_front();
            }
            if outcome.is_finding() {
                self.found(outcome, blame)?;
            }
            let mut c = self.shared.lock();
            c.cases += 1;
            c.elapsed_ms = self.t0.elapsed().as_millis() as u64;
            c.sample((self.opts.corpus.len() + self.opts.messages.len()) as u64, false);
            progress(&c);
        }
    }

    /// What a case's coverage taught: its messages join the corpus if it reached a new edge
    /// (or a new hit count), its comparisons join the tokens.
    ///
    /// An input-to-state `candidate` that got further is also queued with a byte more: a parser
    /// that checks the length before each byte of a magic stops at the end of the input, and
    /// the next comparison, the one the next candidate needs, only runs on a longer one.
    ///
    /// `false` when the server recorded nothing (the case never reached its code).
    fn learn(&self, file: &super::coverage::CoverageFile, case: &Case, candidate: bool) -> bool {
        let Ok(trace) = file.read() else { return true };
        if trace.map.iter().all(|b| *b == 0) {
            return false;
        }
        let found = trace.tokens();
        let mut c = self.shared.covered.lock().unwrap_or_else(PoisonError::into_inner);
        let before = (c.corpus.len(), c.tokens.len());
        if c.seen.merge(&trace.map) > 0 {
            // The last comparisons are the deepest: an input keeps up to 64, then the first 16
            // of its library comparisons (memcmp, strcmp...: logged apart, so their order
            // among the others is not known; a gate, a magic or a verb, most often). Each kind
            // has its own candidate budget, so neither crowds the other out.
            let cmps = super::coverage::tokens(&trace.cmps);
            let own_cmps = cmps.len().min(64);
            let own: Vec<super::coverage::Token> = cmps[cmps.len() - own_cmps..]
                .iter()
                .cloned()
                .chain(trace.library_tokens().into_iter().take(16))
                .collect();
            let messages: Vec<Vec<u8>> = match case.session {
                Some(use_) if use_.messages => case.writes.clone(),
                _ => {
                    // Raw writes: the frames in them, as messages.
                    let mut out = Vec::new();
                    if let Ok(mut d) = self.target.framing.decoder() {
                        for w in &case.writes {
                            d.push(w);
                        }
                        while let Ok(Some(m)) = d.next_reply() {
                            out.push(m.to_vec());
                        }
                    }
                    out
                }
            };
            for m in messages {
                if !c.corpus.iter().any(|(e, _)| *e == m) {
                    let mut queued = [0, 0];
                    // Every place the operand occurs, not only the first: a byte compared
                    // late in a message (a magic's last byte) often equals one before it, and
                    // replacing that one instead undoes what was solved.
                    for (n, (from, to)) in own.iter().enumerate() {
                        let kind = usize::from(n >= own_cmps);
                        let budget = [MAX_CANDIDATES, MAX_LIBRARY_CANDIDATES][kind];
                        for i in super::coverage::occurrences(&m, from).take(MAX_PLACES) {
                            if queued[kind] >= budget {
                                break;
                            }
                            let mut candidate = m.clone();
                            candidate.splice(i..i + from.len(), to.iter().copied());
                            if !c.queue.contains(&candidate) {
                                c.queue.push_back(candidate);
                                queued[kind] += 1;
                            }
                        }
                    }
                    if candidate && m.len() < super::case::GROW_BELOW {
                        let mut longer = m.clone();
                        longer.push(0);
                        if !c.queue.contains(&longer) {
                            c.queue.push_back(longer);
                        }
                    }
                    c.corpus.push((m, own.clone()));
                }
            }
        }
        for t in found {
            if !c.tokens.contains(&t) {
                c.tokens.push(t);
            }
        }
        if c.tokens.len() > MAX_TOKENS {
            let extra = c.tokens.len() - MAX_TOKENS;
            c.tokens.drain(..extra);
        }
        if (c.corpus.len(), c.tokens.len()) != before || c.tokens.len() == MAX_TOKENS {
            c.refresh();
        }
        let (edges, inputs) = (c.seen.edges(), c.corpus.len() as u64);
        drop(c);
        let mut campaign = self.shared.lock();
        campaign.edges = Some(edges);
        campaign.covered_inputs = inputs;
        true
    }

    /// After the last case: one more look (the case may have ended the server after its
    /// connections closed), blamed on it.
    fn last_look(&mut self, progress: &(impl Fn(&Campaign) + Sync)) -> Result<()> {
        if self.history.is_empty() {
            return Ok(());
        }
        let outcome = look_after(self.backend, self.target, &mut self.server, &self.live);
        if outcome.is_finding() && !self.shared.stop.load(Ordering::Relaxed) {
            self.found(outcome, Blame::Before)?;
            progress(&self.shared.lock());
        }
        Ok(())
    }

    /// A case ended in `outcome`: a duplicate of a known bucket, or a new one to confirm.
    fn found(&mut self, outcome: Outcome, blame: Blame) -> Result<()> {
        let bucket = outcome.bucket();
        let found_after_ms = self.t0.elapsed().as_millis() as u64;
        let known = {
            let mut c = self.shared.lock();
            let mut pending = self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(f) = c.findings.iter_mut().find(|f| f.bucket == bucket) {
                f.hits += 1;
                true
            } else if let Some(u) =
                c.unconfirmed.iter_mut().find(|u| u.bucket == bucket && u.attempts >= UNCONFIRMED_ATTEMPTS)
            {
                // Tried often enough: counted, not replayed again.
                u.hits += 1;
                true
            } else if let Some(meanwhile) = pending.get_mut(&bucket) {
                *meanwhile += 1;
                true
            } else {
                pending.insert(bucket.clone(), 0);
                false
            }
        };
        if known {
            self.shared.lock().duplicates += 1;
        } else {
            let result = self.confirm_bucket(&outcome, &bucket, blame, found_after_ms);
            let meanwhile =
                self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&bucket).unwrap_or(0);
            let mut c = self.shared.lock();
            match result {
                Ok(Ok(mut r)) => {
                    r.hits += meanwhile;
                    c.findings.push(r)
                }
                Ok(Err(tried)) => match c.unconfirmed.iter_mut().find(|u| u.bucket == bucket) {
                    Some(u) => {
                        u.hits += 1 + meanwhile;
                        u.attempts += 1;
                        u.tried.extend(tried);
                    }
                    None => {
                        let (index, case) =
                            self.history.back().cloned().unwrap_or((0, Case::single(Vec::new(), String::new())));
                        c.unconfirmed.push(Unconfirmed {
                            bucket: bucket.clone(),
                            outcome,
                            hits: 1 + meanwhile,
                            attempts: 1,
                            index,
                            case,
                            tried,
                        })
                    }
                },
                Err(e) => return Err(e),
            }
            if c.findings.len() >= self.opts.max_findings {
                self.shared.stop.store(true, Ordering::Relaxed);
            }
        }
        // A fresh server after any finding (a hung or leaking one would mislead the next case).
        self.restart()
    }

    fn restart(&mut self) -> Result<()> {
        // The old one first: the two must not overlap on the endpoint.
        self.server.stop();
        self.server = super::driver::start_again(self.backend, self.target)?;
        self.memory = MemoryWatch::new();
        self.served = 0;
        self.history.clear();
        self.shared.lock().restarts += 1;
        Ok(())
    }

    /// Finds the case of the history that reproduces `bucket`, minimises it and confirms it.
    /// `Ok(Err(tried))`: no candidate reproduced it.
    fn confirm_bucket(
        &mut self,
        outcome: &Outcome,
        bucket: &BucketKey,
        blame: Blame,
        found_after_ms: u64,
    ) -> Result<std::result::Result<Reproducer, Vec<Replays>>> {
        let repeat = match outcome {
            Outcome::MemoryGrowth { cases, .. } => *cases,
            _ => 1,
        };
        let growth = match outcome {
            Outcome::MemoryGrowth { baseline_kib, now_kib, .. } => Some(now_kib.saturating_sub(*baseline_kib) / 2),
            _ => None,
        };
        let mut candidates: Vec<(u64, Case)> = self.history.iter().rev().cloned().collect();
        if blame == Blame::Before && candidates.len() > 1 {
            candidates.remove(0);
        }
        let (b, t, live) = (self.backend, self.target, self.live.clone());
        let mut tried = Vec::new();
        let mut starts = 0u64;
        for (index, case) in candidates {
            if self.t0.elapsed() >= self.opts.max_time + self.opts.minimize.time {
                break;
            }
            let first = confirm(b, t, &case, repeat, bucket, 1, &live, growth, true)?;
            starts += 1;
            if !first.all() {
                tried.push(first);
                continue;
            }
            // Hangs cost a timeout per try and memory growth many cases: kept as found.
            let minimised = match outcome {
                Outcome::Crashed(_) | Outcome::Unreachable { .. } => {
                    minimize(b, t, &case, bucket, &live, self.opts.minimize)
                }
                _ => case.clone(),
            };
            let mut replays = confirm(b, t, &minimised, repeat, bucket, self.opts.replays, &live, growth, false)?;
            let mut kept = minimised;
            if !replays.all() && kept != case {
                replays = confirm(b, t, &case, repeat, bucket, self.opts.replays, &live, growth, false)?;
                kept = case.clone();
            }
            starts += u64::from(replays.of);
            if !replays.all() {
                tried.push(replays);
                continue;
            }
            self.shared.lock().replay_starts += starts;
            return Ok(Ok(Reproducer {
                target: t.name.clone(),
                seed: self.opts.seed,
                index,
                original: case,
                case: kept,
                repeat,
                outcome: outcome.clone(),
                bucket: bucket.clone(),
                replays,
                hits: 1,
                found_after_ms,
                hang_timeout_ms: live.hang_timeout.as_millis() as u64,
            }));
        }
        self.shared.lock().replay_starts += starts;
        Ok(Err(tried))
    }
}
