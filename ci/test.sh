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
LOG_NAME=test.sh
cd "$REPO"
# shellcheck source=ci/lib.sh
. "$REPO/ci/lib.sh"

ensure_venv
install_servegen
setup_engine || note "docker tests will be skipped"

failed=()
run_check() {
    local name=$1 rc=0
    shift
    stage "$name: $*"
    "$@" || rc=$?
    if ((rc == 0)); then
        note "$name passed"
    elif [[ $name == pytest && $rc == 5 ]]; then
        # pytest exits 5 when it collected nothing: a run that tested nothing proves nothing.
        note "pytest collected no tests: counted as a failure"
        failed+=("$name (no tests collected)")
    else
        note "$name FAILED (exit $rc)"
        failed+=("$name")
    fi
}

run_check "ruff check" ruff check .
# Every shell script servegen ships for its own CI and demo.
mapfile -t shell_scripts < <(find ci -type f -name '*.sh' | sort; echo .ci/run)
run_check shellcheck shellcheck -x "${shell_scripts[@]}"
run_check "ruff format" ruff format --check .
run_check mypy mypy
# --durations keeps the slowest tests in view: CI has a fixed time budget.
run_check pytest python -m pytest --durations=10 "$@"

stage "summary"
if ((${#failed[@]})); then
    note "failed: ${failed[*]}"
    exit 1
fi
note "all checks passed (ruff check, shellcheck, ruff format, mypy, pytest)"
