//! Bad input gets a typed error that names the problem and where, never a panic: the plan
//! parser and the SDDL handling under proptest (the same properties as their cargo-fuzz
//! targets, `plan_parse` and `sddl`), and a server binary that does not exist, an endpoint
//! name the platform cannot take, a protection string that is not one.

use pipe_harness::engine::{plan, Backend, ServerUnderTest, Target};
use pipe_harness::fuzzing;
use proptest::prelude::*;
use std::path::Path;

const PLAN: &str = include_str!("../../fixtures/plans/unix-hardened.toml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_plan_or_an_error_naming_the_file(text in "\\PC{0,400}") {
        fuzzing::plan_parse(text.as_bytes());
    }

    #[test]
    fn a_damaged_plan_is_a_plan_or_an_error_with_a_place(at in 0usize..2000, cut in 0usize..40, insert in "[\\[\\]{}=\"'\\n#a-z0-9 ]{0,6}") {
        let at = at.min(PLAN.len());
        let at = (0..=at).rev().find(|i| PLAN.is_char_boundary(*i)).unwrap_or(0);
        let end = (at + cut).min(PLAN.len());
        let end = (end..=PLAN.len()).find(|i| PLAN.is_char_boundary(*i)).unwrap_or(PLAN.len());
        let damaged = format!("{}{insert}{}", &PLAN[..at], &PLAN[end..]);
        match plan::parse(Path::new("plans/x.toml"), &damaged) {
            Ok(_) => {}
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("plans/x.toml"), "{}", msg);
            }
        }
    }

    #[test]
    fn any_sddl_like_text_is_handled(text in "[OGDSAPNOICIO_()\\-;:0-9xWUYGRFLC]{0,120}") {
        fuzzing::sddl(text.as_bytes());
    }

    #[test]
    fn any_bytes_are_handled_as_sddl(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzzing::sddl(&bytes);
    }
}

fn backend() -> pipe_harness::NativeBackend {
    pipe_harness::native_backend().expect("backend")
}

#[test]
fn a_server_binary_that_does_not_exist_is_named() {
    let backend = backend();
    let t = Target::new("ghost", "/no/such/server", "ghost-{unique}");
    let err = ServerUnderTest::start(&backend, &t, "ghost").err().expect("no such binary").to_string();
    assert!(err.contains("target program") && err.contains("no/such/server"), "{err}");
}

#[test]
fn an_endpoint_the_platform_cannot_take_is_named() {
    let backend = backend();
    #[cfg(unix)]
    let bad = format!("{}/{}.sock", backend.dir().display(), "x".repeat(200));
    #[cfg(windows)]
    let bad = format!("bad\\{}", "x".repeat(300));
    let Err(err) = backend.listen(&bad, &Default::default()) else { panic!("{bad} was taken") };
    let err = err.to_string();
    assert!(err.contains("xxxx"), "the error names the endpoint: {err}");
}

#[test]
fn a_protection_string_that_is_not_one_is_named() {
    let err = "mode=09 uid=x".parse::<pipe_harness::protection::Protection>().expect_err("refused").to_string();
    assert!(err.contains("invalid protection") && err.contains("\"09\" is not an octal mode"), "{err}");
}
