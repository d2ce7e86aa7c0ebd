//! The docs read the registry: `docs/scenarios.md` carries the table the registry renders, and
//! a section for every scenario.

use pipe_harness_scenarios::{catalogue_markdown, SCENARIOS};
use std::path::Path;

const BEGIN: &str = "<!-- registry: begin (generated: pipe-harness scenarios --markdown) -->\n";
const END: &str = "<!-- registry: end -->";

#[test]
fn docs_scenarios_md_carries_the_registry_and_a_section_per_scenario() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenarios.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let table = text
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(table, _)| table)
        .unwrap_or_else(|| panic!("{}: no registry markers", path.display()));
    assert_eq!(
        table,
        catalogue_markdown(),
        "{}: the table differs from the registry; paste `pipe-harness scenarios --markdown` between the markers",
        path.display()
    );
    for s in SCENARIOS {
        assert!(text.contains(&format!("\n## `{}`\n", s.id)), "{}: no section for {}", path.display(), s.id);
    }
}
