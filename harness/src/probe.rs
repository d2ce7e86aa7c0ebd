//! The platform probe: which of the rules the scenarios rest on hold on the machine at hand.
//!
//! Every answer is measured (try the thing, look at the effect), never read off a return value
//! alone: Wine, for one, returns success from several security calls that do nothing. A
//! scenario asks the [`ProbeReport`] before it judges, and returns *unverifiable* with the
//! probe's evidence when the rule it rests on does not hold here.
//!
//! The measurements live in the platform modules (`windows::probe`, `unix::probe`); the types
//! they report in are [`crate::rules`] (re-exported here); this module is the one place that
//! picks the platform's probe.

pub use crate::rules::*;

/// This machine's probe, measured once per process: the first call runs [`run`], later ones
/// return the same report. What [`NativeBackend`](crate::NativeBackend)'s constructors use,
/// so a test binary that builds many backends probes once.
pub fn measured() -> &'static ProbeReport {
    #[cfg(windows)]
    {
        crate::windows::probe::measured()
    }
    #[cfg(unix)]
    {
        crate::unix::probe::measured()
    }
}

/// Measures every rule on this machine.
///
/// On Windows (and under Wine) this creates real pipes, tokens and processes; on Linux, real
/// sockets, threads under other uids and network namespaces. About a second either way. The
/// other platform's rules are reported as not applicable.
pub fn run() -> ProbeReport {
    #[cfg(windows)]
    {
        crate::windows::probe::run()
    }
    #[cfg(unix)]
    {
        crate::unix::probe::run()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_reported_and_the_other_platforms_rules_are_not_applicable() {
        let report = run();
        assert_eq!(report.results.len(), Rule::ALL.len());
        for r in &report.results {
            assert!(!r.evidence.is_empty(), "{:?}", r.rule);
            if r.rule.is_unix() != cfg!(unix) {
                assert_eq!(r.status, Status::NotApplicable, "{:?}", r.rule);
            }
        }
    }
}
