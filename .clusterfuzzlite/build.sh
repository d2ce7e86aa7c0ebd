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
