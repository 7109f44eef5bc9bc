#!/usr/bin/env bash
# servegen's test command: from a fresh clone, set up everything the checks need and run
# them all: a virtual environment in .venv with the package and its dev extra, the
# container engine and stand-in images (ci/setup-engine.sh, when this machine allows it),
# then ruff (lint and format), mypy and pytest. Extra arguments go to pytest.
#
# Usage: ci/test.sh [PYTEST_ARGS...]
# Environment: PYTHON (interpreter for the venv, default python3), SERVEGEN_VENV (default
# .venv), SERVEGEN_REQUIRE_DOCKER=1 (engine set-up must succeed; docker tests never skip).
# Exit status: 0 when every check passed, 1 when any failed, 2 when set-up failed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
VENV=${SERVEGEN_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}
REQUIRE_DOCKER=${SERVEGEN_REQUIRE_DOCKER:-0}

stage() { printf '\n==> [test.sh %4ss] %s\n' "$SECONDS" "$*"; }
note() { printf '    %s\n' "$*"; }
fatal() {
    printf '==> [test.sh] SET-UP FAILED: %s\n' "$*" >&2
    exit 2
}

# --- set-up ------------------------------------------------------------------------
stage "virtual environment: $VENV"
if [[ ! -x $VENV/bin/python ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 || fatal "no $PYTHON to create the virtual environment"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        fatal "$PYTHON is $("$PYTHON" -V 2>&1); servegen needs Python 3.11 or newer"
    "$PYTHON" -m venv "$VENV" || fatal "python -m venv $VENV failed"
    note "created with $("$VENV/bin/python" -V)"
else
    note "exists ($("$VENV/bin/python" -V))"
fi
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
export PIP_DISABLE_PIP_VERSION_CHECK=1

# An editable install follows code changes by itself, so it is redone only when the
# dependencies (pyproject.toml) change. A regular install (the fallback) is always redone.
stage "install servegen with its dev extra"
stamp=$VENV/.servegen-install
want="editable $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ -f $stamp && $(<"$stamp") == "$want" ]] && python -c 'import generator' 2>/dev/null; then
    note "up to date (pyproject.toml unchanged since the editable install)"
elif python -m pip install --quiet -e '.[dev]'; then
    printf '%s\n' "$want" >"$stamp"
    note "installed (editable)"
else
    note "editable install failed; trying a regular install"
    rm -f "$stamp"
    python -m pip install --quiet '.[dev]' || fatal "pip install '.[dev]' failed"
    note "installed (regular)"
fi

stage "container engine and stand-in images"
engine_setup_failed() {
    if [[ $REQUIRE_DOCKER == 1 ]]; then
        fatal "$1 (SERVEGEN_REQUIRE_DOCKER=1: the docker tests must run)"
    fi
    note "$1; docker tests will be skipped"
}
if { ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; } || docker info >/dev/null 2>&1; then
    bash ci/setup-engine.sh --python "$VENV/bin/python" ||
        engine_setup_failed "ci/setup-engine.sh failed"
elif ((EUID != 0)); then
    engine_setup_failed "not root and no engine answers: cannot install or start one"
else
    engine_setup_failed "no apt-get and no engine answers: cannot install one"
fi

# --- checks ------------------------------------------------------------------------
failed=()
run_check() {
    local name=$1 rc=0
    shift
    stage "$name: $*"
    "$@" || rc=$?
    if ((rc == 0)); then
        note "$name passed"
    elif [[ $name == pytest && $rc == 5 ]]; then
        # pytest exits 5 when it collected nothing: a suite that ran no test has proven nothing.
        note "pytest collected no tests: counted as a failure"
        failed+=("$name (no tests collected)")
    else
        note "$name FAILED (exit $rc)"
        failed+=("$name")
    fi
}

run_check "ruff check" ruff check .
run_check "ruff format" ruff format --check .
run_check mypy mypy
run_check pytest python -m pytest "$@"

stage "summary"
if ((${#failed[@]})); then
    note "failed: ${failed[*]}"
    exit 1
fi
note "all checks passed (ruff check, ruff format, mypy, pytest)"
