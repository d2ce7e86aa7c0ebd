//! Corpus minimisation, as afl-cmin does it for edges: every input of a corpus is sent once to a
//! fresh server built for coverage (`pipe-harness cc`, `coverage = true`), smallest first, and
//! kept only if it reaches an edge (or a hit-count class of one) that no input kept before it
//! reached. A fresh server per input: what a long-lived server reaches depends on what came
//! before (a pass over the same corpus on one server lost 2 of 66 edges when minimised again), so
//! each input's edges are its own and what is kept reaches every edge the whole corpus reaches.

use super::case::{Case, SessionUse};
use super::coverage::{CoverageFile, Seen, VAR};
use super::driver::{run_case, Liveness};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::target::Target;
use std::time::Duration;

/// What a minimisation kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Minimized {
    /// The inputs kept, smallest first.
    pub kept: Vec<Vec<u8>>,
    /// Inputs given (duplicates counted once).
    pub given: usize,
    /// Edges the kept inputs (and so the whole corpus) reach.
    pub edges: u64,
    /// Inputs that ended the server (or hung it: a finding of the live fuzzer's).
    pub crashed: usize,
}

/// Whether `target` can have a corpus minimised against it: built for coverage, on a platform
/// with the coverage runtime.
pub fn can_minimize(target: &Target) -> Result<()> {
    if !target.coverage {
        return Err(Error::invalid(
            "plan",
            "corpus minimisation needs a server built with pipe-harness cc and coverage = true in the plan",
        ));
    }
    Ok(())
}

/// Minimises `messages` (payloads, sent as messages after the target's session, as the live
/// fuzzer's corpus is) against `target`, which must be built for coverage.
pub fn minimize_corpus<B: Backend>(backend: &B, target: &Target, messages: &[Vec<u8>]) -> Result<Minimized> {
    can_minimize(target)?;
    let mut inputs: Vec<Vec<u8>> = messages.to_vec();
    inputs.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    inputs.dedup();
    let file = CoverageFile::create(target.run_as.as_ref())?;
    let mut t = target.clone();
    t.env.push((VAR.to_string(), file.path().display().to_string()));
    let hang = Duration::from_secs(2);
    let all = t.session.len();
    let mut seen = Seen::default();
    let mut out = Minimized { given: inputs.len(), ..Minimized::default() };
    for (i, m) in inputs.into_iter().enumerate() {
        let mut server = super::driver::start_proved(backend, &t, hang)?;
        let live = Liveness::measure(backend, &t, &server, hang, 16);
        // What the start and the measure ran is not the input's: cleared once the server is
        // back waiting for input.
        crate::supervise::wait_until_idle(server.pid(), super::campaign::IDLE_TIMEOUT);
        file.clear()?;
        let case = Case {
            writes: vec![m],
            on: Vec::new(),
            kind: "a corpus input".into(),
            session: Some(SessionUse { steps: all, messages: true, prefix: all > 0 }),
        };
        let (outcome, _) = run_case(backend, &t, &mut server, &case, &live, i as u64);
        crate::supervise::wait_until_idle(server.pid(), super::campaign::IDLE_TIMEOUT);
        let trace = file.read()?;
        if seen.merge(&trace.map) > 0 {
            out.kept.extend(case.writes);
        }
        if outcome.is_finding() {
            out.crashed += 1;
        }
    }
    out.edges = seen.edges();
    Ok(out)
}
