#!/usr/bin/env bash
# The benchmark: builds the release binaries (the CLI and the nine Lambda functions, for this
# machine), then `zdsync bench` runs the whole sync at each size with every stage as its own
# function process against a sandbox in its own process. Arguments go to `zdsync bench`
# (`--accounts 10000,50000,200000` is the default; `--help` lists the rest).
#
#   scripts/bench.sh                                # 10 k, 50 k, 200 k accounts
#   scripts/bench.sh --accounts 50000 --existing-orgs 0 --rate-limit 700   # a first run, real limits
#   scripts/bench.sh --accounts 200000 --runs 5 --quiet-runs 2 --changes 100 --full-last  # first, two quiet, 100 changed, full reconcile
#
# First the long run of the incremental gathers' property test (PROPTEST_CASES, default 200).
# Results: a Markdown table on stdout, JSON in target/bench/results.json (docs/BENCHMARKS.md
# keeps the latest table).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --workspace --bins
# The long version of the property test CI runs a few cases of: delta gathers and full gathers
# give the same artifacts and the same Zendesk over random changes (tests/incremental.rs).
PROPTEST_CASES="${PROPTEST_CASES:-200}" cargo test --release --locked -p zdsync-e2e \
  --test incremental delta_gathers_and_full_gathers
exec target/release/zdsync bench "$@"
