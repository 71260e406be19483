#!/usr/bin/env bash
# Runs statemachine/sync.asl.json in a real Step Functions engine (moto's server) with the real
# Lambda functions (`cargo lambda watch` behind `zdsync lambda-proxy`): tests/sfn_engine.rs.
#
# Installs its tools itself, without prompts, into the git-ignored .tools/venv (the Python venv
# scripts/check-infra.sh uses too): moto[server], cargo-lambda, ziglang, and awscli for the
# README's by-hand walkthrough. A stamp file records what was installed, so a second run
# installs nothing.
#
# The test is #[ignore]d in a plain `cargo test` (it needs these tools), so it is run here with
# --include-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Pinned, so the engine's behaviour changes only when bumped on purpose. cargo-lambda and
# ziglang are the versions scripts/check-infra.sh pins.
PY_TOOLS=("moto[server]==5.2.5" cargo-lambda==1.9.2 ziglang==0.17.1 awscli==1.46.3)
VENV=$ROOT/.tools/venv

fail() {
    printf '\nsfn-engine: FAILED: %s\n' "$*" >&2
    exit 1
}

# shellcheck source=scripts/venv-tools.sh
source "$ROOT/scripts/venv-tools.sh"
venv_install zdsync-sfn-engine-tools "${PY_TOOLS[@]}" || fail "could not install ${PY_TOOLS[*]}"

# The venv first: the test looks for moto_server and cargo-lambda there, and cargo-lambda finds
# zig through `python3 -m ziglang`.
export PATH="$VENV/bin:$PATH"

# The flags of scripts/test.sh's `cargo test` (--workspace --all-features): the same feature
# resolution, so the test binary reuses what that step compiled instead of rebuilding the graph.
echo "==> cargo test --workspace --all-features --test sfn_engine"
cargo test --workspace --all-features --locked --test sfn_engine -- --include-ignored --nocapture
