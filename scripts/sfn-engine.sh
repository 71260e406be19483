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
# Its own stamp: check-infra.sh keeps one for its list, and neither must undo the other's.
STAMP=$VENV/.zdsync-sfn-engine-tools

fail() {
    printf '\nsfn-engine: FAILED: %s\n' "$*" >&2
    exit 1
}

want=$(printf '%s\n' "${PY_TOOLS[@]}")
if [[ -x $VENV/bin/python && -f $STAMP && "$(cat "$STAMP")" == "$want" ]]; then
    echo "==> tools in .tools/venv are installed"
else
    echo "==> installing ${PY_TOOLS[*]} into .tools/venv"
    if [[ ! -x $VENV/bin/python ]]; then
        python3 -m venv "$VENV" ||
            fail "python3 -m venv $VENV did not work (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        "${PY_TOOLS[@]}" </dev/null ||
        fail "pip could not install ${PY_TOOLS[*]} (is PyPI reachable?)"
    # Written last: an interrupted install is redone on the next run.
    printf '%s\n' "$want" >"$STAMP"
fi

# The venv first: the test looks for moto_server and cargo-lambda there, and cargo-lambda finds
# zig through `python3 -m ziglang`.
export PATH="$VENV/bin:$PATH"

echo "==> cargo test -p zdsync-e2e --test sfn_engine"
cargo test -p zdsync-e2e --test sfn_engine --locked -- --include-ignored --nocapture
