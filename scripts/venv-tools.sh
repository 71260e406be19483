# Sourced by scripts/check-infra.sh and scripts/sfn-engine.sh (which set ROOT): installs pinned
# Python tools into the git-ignored .tools/venv without prompts, once. Each caller keeps its own
# stamp file listing what it installed, so neither undoes the other's and a second run installs
# nothing; the stamp is written last, so an interrupted install is redone.

# venv_install STAMP TOOL==VERSION...
venv_install() {
    local venv=$ROOT/.tools/venv stamp=$ROOT/.tools/venv/.$1 want
    shift
    want=$(printf '%s\n' "$@")
    if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    printf '\n==> installing %s into .tools/venv\n' "$*"
    if [[ ! -x $venv/bin/python ]]; then
        python3 -m venv "$venv" || {
            echo "python3 -m venv $venv did not work (on Debian/Ubuntu: apt-get install python3-venv)" >&2
            return 1
        }
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@" </dev/null || {
        echo "pip could not install $* (is PyPI reachable?)" >&2
        return 1
    }
    printf '%s\n' "$want" >"$stamp"
}
