#!/usr/bin/env bash
# servegen's demo: render the default service into .demo/ and, where a container engine
# answers, prove it with `servegen test` (real build, real stack, HTTP and SQL probes).
# Without an engine it stops after rendering, with exit status 0.
#
# Usage: ci/demo.sh
# Environment: SERVEGEN_VENV, PYTHON (as for ci/test.sh); DEMO_WHEELHOUSE (default
# "auto": the host fills the project's wheelhouse, so the build needs no package index;
# set it empty to let the build use the index itself).
# Exit status: that of `servegen test` (0 passed, 3 environment, 4 build, 5 smoke), or 2
# when set-up or rendering failed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_NAME=demo.sh
cd "$REPO"
# shellcheck source=ci/lib.sh
. "$REPO/ci/lib.sh"

DEMO_DIR=$REPO/.demo
WHEELHOUSE=${DEMO_WHEELHOUSE-auto}

ensure_venv
install_servegen

stage "render the default service into $DEMO_DIR"
mkdir -p "$DEMO_DIR"
started=$(date +%s)
rc=0
servegen new --no-input --output-dir "$DEMO_DIR" --force || rc=$?
if ((rc == 6)); then
    # Rendering again keeps files that differ from what an earlier render recorded (a
    # hand edit, or a project rendered before servegen recorded hashes) and lists them.
    fatal "the demo project under $DEMO_DIR holds files servegen kept (listed above):" \
        "merge each *.servegen-new, or delete the project folder to render it afresh"
elif ((rc != 0)); then
    fatal "servegen new failed (exit $rc)"
fi
# The project is the folder whose answers file this render just wrote.
project=
for answers in "$DEMO_DIR"/*/.servegen-answers.yml; do
    [[ -f $answers ]] || continue
    if (($(stat -c %Y "$answers") >= started)); then
        project=$(dirname "$answers")
    fi
done
[[ -n $project ]] || fatal "servegen new reported success but no project appeared under $DEMO_DIR"
note "rendered $project"

engine=1
setup_engine || engine=0
if ((engine)) && ! docker info >/dev/null 2>&1; then
    engine=0
fi
if ((!engine)); then
    stage "no container engine answers here: the demo stops after rendering"
    note "to prove the project, run where an engine answers: servegen test $project"
    exit 0
fi

# The generated files name the official images; where those are not present locally
# (no registry here), the stand-ins enter through the override options.
args=()
if ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
    args+=(--base-image servegen-ci/python:3.11-slim)
fi
if ! docker image inspect mysql:8.4 >/dev/null 2>&1; then
    args+=(--db-image servegen-ci/mysql:8.4)
fi
if ! docker image inspect haproxy:3.0 >/dev/null 2>&1; then
    args+=(--proxy-image servegen-ci/haproxy:3.0)
fi
if [[ -n $WHEELHOUSE ]]; then
    args+=(--wheelhouse "$WHEELHOUSE")
fi
args+=(--json "$DEMO_DIR/report.json")

stage "servegen test $project ${args[*]}"
rc=0
servegen test "$project" "${args[@]}" || rc=$?
stage "servegen test exited with $rc (report: $DEMO_DIR/report.json)"
exit "$rc"
