#!/usr/bin/env bash
# Every test zdsync has, in the order a failure is cheapest to find: format, lints, tests,
# then the infrastructure checks and the state machine in a real Step Functions engine.
# Safe on a fresh machine and in CI (CI=true, no stdin): it installs what it needs itself.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo test"
cargo test --workspace --all-features --locked

step "infrastructure: cfn-lint, checkov, asl-validator, arm64 build of every function"
scripts/check-infra.sh

step "the state machine in a real Step Functions engine (moto) with the functions under cargo lambda watch"
scripts/sfn-engine.sh

printf '\nAll checks passed.\n'
