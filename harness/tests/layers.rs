//! The library's layers, checked on its source: neutral types at the bottom, the platform
//! modules on them, the dispatching modules (probe, supervision, inventory) on those, and the
//! engine on top. A module names only modules of its own layer or below, and no two modules
//! depend on each other. (The picture is in `docs/platforms.md`.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bottom to top.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "neutral types",
        &[
            "error",
            "endpoint",
            "identity",
            "protection",
            "sddl",
            "sd_layout",
            "cmdline",
            "framing",
            "rules",
            "tree",
            "target",
            "backend",
            "calls",
            "wrap",
        ],
    ),
    ("platform", &["unix", "windows"]),
    // `native_backend`: the crate root's function that picks this platform's backend.
    ("dispatch", &["probe", "supervise", "inventory", "native_backend"]),
    ("engine", &["engine", "fuzzing"]),
];

/// Top-level module -> the top-level modules its code names (`crate::NAME`), comments aside.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let top = rel.components().next().expect("a file").as_os_str().to_string_lossy().replace(".rs", "");
            if top == "lib" || path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            let named = deps.entry(top.clone()).or_default();
            for line in text.lines().map(|l| l.split("//").next().unwrap_or("")) {
                let mut rest = line;
                while let Some(at) = rest.find("crate::") {
                    rest = &rest[at + "crate::".len()..];
                    let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if !name.is_empty() && name != top {
                        named.insert(name);
                    }
                }
            }
        }
    }
    deps
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|(_, mods)| mods.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer: add it to LAYERS (and to the picture in docs)"))
}

#[test]
fn every_module_names_only_its_own_layer_or_below() {
    for (module, named) in dependencies() {
        for dep in named {
            assert!(
                layer_of(&dep) <= layer_of(&module),
                "{module} ({}) names {dep} ({}), a layer above it",
                LAYERS[layer_of(&module)].0,
                LAYERS[layer_of(&dep)].0
            );
        }
    }
}

#[test]
fn no_two_modules_depend_on_each_other() {
    let deps = dependencies();
    for start in deps.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = deps[start].iter().collect();
        while let Some(m) = todo.pop() {
            assert!(m != start, "{start} depends on itself through {m}: a cycle");
            if seen.insert(m.clone()) {
                todo.extend(deps.get(m).into_iter().flatten());
            }
        }
    }
}
