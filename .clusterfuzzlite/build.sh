#!/bin/bash -eu
# Builds every cargo-fuzz target of pipe-harness into $OUT, with its seed corpus and dictionary,
# as ClusterFuzzLite and OSS-Fuzz expect. Checked locally by ci/check-fuzz-build.
cd "$SRC/pipe-harness/fuzz"
cargo fuzz build -O ${PH_CARGO_FUZZ_ARGS:-}
release=target/x86_64-unknown-linux-gnu/release
for target in $(cargo fuzz list); do
  cp "$release/$target" "$OUT/$target"
  if [ -d "corpus/$target" ]; then
    (cd "corpus/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
  fi
  dict=$(awk -v t="$target" '$1 == t { print $2 }' dicts/by-target)
  if [ -n "$dict" ]; then cp "dicts/$dict" "$OUT/$target.dict"; fi
done
# The live target fuzzes a running server: stateful-bugs-c, built with the coverage runtime by
# `pipe-harness cc` (PH_CLI, else built here), goes beside it with its plan as live.toml (the
# target reads NAME.toml beside its binary), the plan's program made relative to it.
cli=${PH_CLI:-}
if [ -z "$cli" ]; then
  (cd .. && env -u RUSTFLAGS cargo build -q -p pipe-harness --locked)
  cli=$SRC/pipe-harness/target/debug/pipe-harness
fi
env -u CFLAGS -u CXXFLAGS "$cli" cc -O1 -o "$OUT/stateful-bugs-c" ../fixtures/c/stateful-bugs.c
sed -e 's|^program = .*|program = "stateful-bugs-c"|' ../fixtures/plans/stateful-bugs-c.toml > "$OUT/live.toml"
