#!/usr/bin/env bash
# Checks what gets deployed: the SAM template (cfn-lint, checkov), the state machine definition
# (asl-validator) and an arm64 build of every Lambda function (cargo lambda, zip), with the
# release settings less the optimisation (profile lambda-check in Cargo.toml: 3 min, not 14).
#
# Installs its tools itself, without prompts, into the git-ignored .tools/ folder:
#   .tools/venv  Python venv with cfn-lint, checkov, cargo-lambda and ziglang (zig for cargo-lambda)
#   .tools/node  npm prefix with asl-validator
# A stamp file records what was installed, so a second run installs nothing.
#
# Usage: scripts/check-infra.sh [--no-build]
#   --no-build  skip the (slow) arm64 build, e.g. while editing the template.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Pinned: a new checkov or cfn-lint release adds checks, and CI must not turn red by itself.
# Bump deliberately, then run this script and fix or justify what the new version reports.
PY_TOOLS=(cfn-lint==1.58.0 checkov==3.3.30 cargo-lambda==1.9.2 ziglang==0.17.1)
NODE_TOOLS=(asl-validator@4.0.0)

TEMPLATE=infra/template.yaml
ASL=statemachine/sync.asl.json
TOOLS=$ROOT/.tools
VENV=$TOOLS/venv
NODE_PREFIX=$TOOLS/node

build=true
for arg in "$@"; do
    case $arg in
        --no-build) build=false ;;
        -h | --help)
            sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "check-infra: unknown argument $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }
fail() {
    printf '\ncheck-infra: FAILED: %s\n' "$*" >&2
    exit 1
}
started=$SECONDS

# --- tools -------------------------------------------------------------------------------

# True when $1 (a stamp file) holds exactly $2.
stamp_matches() { [[ -f $1 && "$(cat "$1")" == "$2" ]]; }

install_node_tools() {
    local stamp=$NODE_PREFIX/.zdsync-tools want
    want=$(printf '%s\n' "${NODE_TOOLS[@]}")
    if [[ -x $NODE_PREFIX/node_modules/.bin/asl-validator ]] && stamp_matches "$stamp" "$want"; then
        return
    fi
    command -v npm >/dev/null || fail "npm is needed for asl-validator (install Node.js 20 or newer)"
    step "installing ${NODE_TOOLS[*]} into .tools/node"
    mkdir -p "$NODE_PREFIX"
    npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --no-progress --loglevel=error \
        "${NODE_TOOLS[@]}" </dev/null ||
        fail "npm could not install ${NODE_TOOLS[*]} (is the npm registry reachable?)"
    printf '%s\n' "$want" >"$stamp"
}

# shellcheck source=scripts/venv-tools.sh
source "$ROOT/scripts/venv-tools.sh"
venv_install zdsync-tools "${PY_TOOLS[@]}" || fail "could not install ${PY_TOOLS[*]}"
install_node_tools
# The venv's python3 first: cargo-lambda finds zig through `python3 -m ziglang`.
export PATH="$VENV/bin:$NODE_PREFIX/node_modules/.bin:$PATH"

# --- template ----------------------------------------------------------------------------

step "cfn-lint $TEMPLATE (errors and warnings both fail)"
# cfn-lint's exit code is a bit mask of what it found (2 errors, 4 warnings, 8 informational):
# any finding fails. A rule that must be ignored is listed in the template's Metadata with
# the reason next to it.
cfn-lint --format parseable "$TEMPLATE" || fail "cfn-lint reported the findings above in $TEMPLATE"
echo "no findings"

step "checkov -f $TEMPLATE --framework cloudformation"
# Every skip is an inline `checkov:skip=CKV_…:reason` comment; one without a reason fails.
if grep -nE 'checkov:skip=[A-Z0-9_]+[[:space:]]*(:[[:space:]]*)?$' "$TEMPLATE"; then
    fail "the checkov skips above have no reason (write checkov:skip=CKV_…:why)"
fi
# --skip-download: no calls to the Prisma Cloud API (guidelines, severities); the checks
# themselves ship with checkov.
checkov -f "$TEMPLATE" --framework cloudformation --skip-download --compact --quiet ||
    fail "checkov failed the checks above; fix them or add a skip comment with a real reason"
printf 'checkov: 0 failed checks; %s skips, each with its reason in %s\n' \
    "$(grep -c 'checkov:skip=' "$TEMPLATE")" "$TEMPLATE"

# --- state machine -----------------------------------------------------------------------

step "asl-validator $ASL (definition substitutions resolved to dummy ARNs)"
resolved=$(mktemp --suffix=.asl.json)
trap 'rm -f "$resolved"' EXIT
# `${Name}` → a well-formed Lambda ARN, as CloudFormation's DefinitionSubstitutions will do,
# so the validator checks the Resource ARNs too. tests/infra.rs checks that every name has a
# substitution in the template.
python3 - "$ASL" "$resolved" <<'EOF' || fail "could not resolve the substitutions of $ASL"
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
pattern = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
names = sorted(set(pattern.findall(text)))
text = pattern.sub(lambda m: "arn:aws:lambda:us-east-1:123456789012:function:" + m.group(1), text)
if "${" in text:
    sys.exit("a ${...} placeholder is not a plain name")
open(sys.argv[2], "w", encoding="utf-8").write(text)
print("substituted:", ", ".join(names))
EOF
asl-validator --json-path "$resolved" || fail "asl-validator rejected $ASL (messages above)"

# --- arm64 build -------------------------------------------------------------------------

if ! $build; then
    printf '\ncheck-infra: template and state machine OK; build skipped (--no-build) [%ss]\n' \
        $((SECONDS - started))
    exit 0
fi

# Every functions/*/Cargo.toml is one Lambda binary, named like its package.
packages=()
for manifest in functions/*/Cargo.toml; do
    name=$(sed -n 's/^name[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n 1)
    [[ -n $name ]] || fail "no package name in $manifest"
    packages+=("$name")
done
[[ ${#packages[@]} -gt 0 ]] || fail "no functions/*/Cargo.toml found"

step "cargo lambda build --profile lambda-check --arm64 --output-format zip (${packages[*]})"
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') ||
    fail "cargo metadata failed (is Cargo.lock up to date?)"
# cargo-lambda adds the aarch64-unknown-linux-gnu target through rustup when it is missing,
# and cross-links with zig (from .tools/venv), so no cross toolchain is needed.
marker=$(mktemp)
build_log=$(mktemp)
trap 'rm -f "$resolved" "$marker" "$build_log"' EXIT
# One cargo lambda build of some functions; on failure, the errors again without rustc's
# linker command lines (each tens of kilobytes, they bury the linker's own message).
lambda_build() {
    # pipefail (set above) gives the pipeline cargo's status.
    if cargo lambda build --profile lambda-check --arm64 --output-format zip --locked \
        "${@/#/--package=}" 2>&1 | tee "$build_log"; then
        return 0
    fi
    printf '\ncheck-infra: the build'"'"'s errors, linker command lines left out:\n' >&2
    grep -v -e '^[[:space:]]*= note: *"' "$build_log" |
        grep -i -A6 -e 'error' -e 'ld.lld' -e 'no space' -e 'killed' | cut -c1-400 >&2 || true
    df -h "$target_dir" >&2 || true
    fail "cargo lambda build failed for: $*"
}
# The first function alone: its link fills zig's global cache (aarch64 glibc stubs,
# compiler_rt). Two first links at once race on a cold cache and both fail (seen in CI on a
# fresh machine); after one link they only read it. The first build compiles every shared
# dependency, so the second only compiles and links the other functions' thin mains.
lambda_build "${packages[0]}"
lambda_build "${packages[@]:1}"

printf '\n%-26s %12s  %s\n' function "zip bytes" path
missing=()
for name in "${packages[@]}"; do
    zip=$target_dir/lambda/$name/bootstrap.zip
    if [[ ! -f $zip || ! $zip -nt $marker ]]; then
        missing+=("$name")
        printf '%-26s %12s  %s\n' "$name" MISSING "$zip"
        continue
    fi
    printf '%-26s %12s  %s (%s)\n' "$name" "$(stat -c %s "$zip")" "$zip" \
        "$(numfmt --to=iec --suffix=B "$(stat -c %s "$zip")")"
done
[[ ${#missing[@]} -eq 0 ]] || fail "no fresh bootstrap.zip for: ${missing[*]}"

printf '\ncheck-infra: all infrastructure checks passed [%ss]\n' $((SECONDS - started))
