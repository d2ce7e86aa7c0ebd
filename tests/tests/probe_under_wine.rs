//! The platform probe, run for real. Under Wine it must report exactly what
//! docs/platforms.md says Wine ignores: each rule Wine ignores as not holding (or untestable
//! where no measurement is possible), the rules Wine honours as holding.

#![cfg(windows)]

use pipe_harness::probe::{Rule, Status};

#[test]
fn probe_matches_what_wine_is_known_to_do() {
    let report = pipe_harness::probe::run();
    assert_eq!(report.results.len(), Rule::ALL.len());
    for r in &report.results {
        assert!(!r.evidence.is_empty(), "{:?} has no evidence", r.rule);
    }
    if report.platform.wine_version.is_none() {
        eprintln!("not under Wine: the table is what this Windows machine does\n{}", report.to_table());
        return;
    }
    let expected = [
        (Rule::FirstInstanceFlagEnforced, Status::DoesNotHold),
        (Rule::ClientOpenDaclEnforced, Status::DoesNotHold),
        (Rule::InstanceCreateDaclEnforced, Status::DoesNotHold),
        (Rule::NullSdGetsDefaultDacl, Status::DoesNotHold),
        (Rule::SdSharedAcrossInstances, Status::Holds),
        (Rule::SdReleasedWithLastInstance, Status::Holds),
        (Rule::ImpersonationRequiresRead, Status::DoesNotHold),
        (Rule::SqosLevelHonoured, Status::DoesNotHold),
        (Rule::RestrictedTokenHonoured, Status::Holds),
        (Rule::IntegrityLevelSettable, Status::DoesNotHold),
        (Rule::LogonChecksCredentials, Status::DoesNotHold),
        (Rule::SessionIdsReal, Status::DoesNotHold),
        (Rule::PipeEnumeration, Status::DoesNotHold),
        // Wine 8.0 assigns a second process to a job of ActiveProcessLimit 1 and commits past
        // JobMemoryLimit: the memory and process limits of the server are not enforced there.
        (Rule::JobLimitsEnforced, Status::DoesNotHold),
        // Wine's pipes keep a flush pending until the other end has read everything, from
        // either end (the live fuzzer ends a case over a pipe on it).
        (Rule::FlushWaitsForReader, Status::Holds),
    ];
    for (rule, status) in expected {
        let got = report.result(rule).expect("every rule is measured");
        assert_eq!(got.status, status, "{}: {:?}", rule.id(), got.evidence);
    }
    // Wine has one user and no network redirector: these cannot be shown at all.
    for rule in [Rule::DistinctIdentityReachesServer, Rule::RemoteClientsRejected] {
        assert!(
            matches!(report.status(rule), Status::Untestable | Status::DoesNotHold),
            "{}: {:?}",
            rule.id(),
            report.result(rule)
        );
        assert!(!report.holds(rule));
    }
}
