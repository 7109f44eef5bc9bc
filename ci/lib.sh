#!/usr/bin/env bash
# Shared set-up for ci/test.sh and ci/demo.sh (sourced, not run): a virtual environment
# with servegen and its dev extra, and the container engine with the stand-in images.
# The caller sets REPO (repository root) and LOG_NAME (prefix of its log lines).

VENV=${SERVEGEN_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}
REQUIRE_DOCKER=${SERVEGEN_REQUIRE_DOCKER:-0}

stage() { printf '\n==> [%s %4ss] %s\n' "$LOG_NAME" "$SECONDS" "$*"; }
note() { printf '    %s\n' "$*"; }
fatal() {
    printf '==> [%s] SET-UP FAILED: %s\n' "$LOG_NAME" "$*" >&2
    exit 2
}

# Create $VENV when missing and put it first on PATH.
ensure_venv() {
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
}

# Install servegen with its dev extra. An editable install follows code changes by
# itself, so it is redone only when pyproject.toml changes; the regular install that
# serves as fallback (when the editable one fails) is always redone.
install_servegen() {
    stage "install servegen with its dev extra"
    local stamp=$VENV/.servegen-install want
    want="editable $REPO $(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
    if [[ -f $stamp && $(<"$stamp") == "$want" ]] &&
        python -c 'import importlib.metadata as m; m.version("servegen")' 2>/dev/null; then
        note "up to date (pyproject.toml unchanged since the editable install)"
    elif python -m pip install --quiet -e "${REPO}[dev]"; then
        printf '%s\n' "$want" >"$stamp"
        note "installed (editable)"
    else
        note "editable install failed; trying a regular install"
        rm -f "$stamp"
        python -m pip install --quiet "${REPO}[dev]" || fatal "pip install '.[dev]' failed"
        note "installed (regular)"
    fi
}

# Run ci/setup-engine.sh where this machine allows it. Returns 0 when the engine and the
# images are ready, 1 otherwise (after saying why); with SERVEGEN_REQUIRE_DOCKER=1 a
# failure stops the caller instead.
setup_engine() {
    stage "container engine and stand-in images"
    local why
    if { ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; } || docker info >/dev/null 2>&1; then
        if bash "$REPO/ci/setup-engine.sh" --python "$VENV/bin/python"; then
            return 0
        fi
        why="ci/setup-engine.sh failed"
    elif ((EUID != 0)); then
        why="not root and no engine answers, so none can be installed or started here"
    else
        why="no apt-get and no engine answers, so none can be installed here"
    fi
    if [[ $REQUIRE_DOCKER == 1 ]]; then
        fatal "$why (SERVEGEN_REQUIRE_DOCKER=1: the docker tests must run)"
    fi
    note "$why"
    return 1
}
