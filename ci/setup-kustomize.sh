#!/usr/bin/env bash
# Make sure this machine has a kustomize for the tests of the generated Kubernetes
# manifests (tests/generator/test_gen_kubernetes.py builds both overlays with it): a
# standalone `kustomize`, or the one built into kubectl (`kubectl kustomize`). When
# neither command is there, install Debian's kubernetes-client (kubectl) with apt-get.
# Idempotent: with a kustomize present it only reports it.
#
# The overlays need kustomize v5 (kubectl 1.27 or newer embeds it). Debian 12's
# kubernetes-client is kubectl 1.20, whose built-in kustomize is v2 and cannot read them:
# when that is all there is, this script says so and exits 1, and the tests report it
# too (a failure with SERVEGEN_REQUIRE_DOCKER=1, a skip otherwise). The machines
# servegen's CI runs on come with kubectl 1.32 (kustomize v5.5) in /usr/bin.
#
# Usage: ci/setup-kustomize.sh
# Exit status: 0 when a kustomize v5 or newer is there, 1 otherwise.
set -euo pipefail

WANT_MAJOR=5

log() { printf '[setup-kustomize] %s\n' "$*"; }

# The version (vX.Y.Z) of the standalone kustomize, or nothing.
standalone_version() {
    kustomize version 2>/dev/null | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true
}

# The version of kubectl's built-in kustomize, or nothing (kubectl before 1.24 does not
# report it, and its kustomize is older than v4 anyway).
kubectl_version() {
    kubectl version --client -o json 2>/dev/null |
        sed -n 's/.*"kustomizeVersion": *"\(v[0-9][^"]*\)".*/\1/p' | head -n 1 || true
}

recent_enough() {
    local major=${1#v}
    major=${major%%.*}
    [[ $major =~ ^[0-9]+$ ]] && ((major >= WANT_MAJOR))
}

# Report every kustomize found; succeed when one is recent enough.
check() {
    local found=1 version
    if command -v kustomize >/dev/null 2>&1; then
        version=$(standalone_version)
        log "kustomize: $(command -v kustomize) (${version:-version unknown})"
        recent_enough "$version" && found=0
    fi
    if command -v kubectl >/dev/null 2>&1; then
        version=$(kubectl_version)
        log "kubectl kustomize: $(command -v kubectl) (built-in kustomize ${version:-too old to report})"
        recent_enough "$version" && found=0
    fi
    return "$found"
}

install_kubectl() {
    if ((EUID != 0)) || ! command -v apt-get >/dev/null 2>&1; then
        log "neither kustomize nor kubectl is here, and this is not root with apt-get to install one"
        return 1
    fi
    log "neither kustomize nor kubectl is here: installing Debian's kubernetes-client (apt-get)"
    local attempt apt_opts=(-qq -o DPkg::Lock::Timeout=300)
    for attempt in 1 2 3; do
        if apt-get "${apt_opts[@]}" update &&
            DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y kubernetes-client >/dev/null; then
            return 0
        fi
        ((attempt < 3)) && log "attempt $attempt failed; retrying in 5s" && sleep 5
    done
    log "apt-get install kubernetes-client failed"
    return 1
}

if ! command -v kustomize >/dev/null 2>&1 && ! command -v kubectl >/dev/null 2>&1; then
    install_kubectl || exit 1
fi
if check; then
    log "ready: a kustomize v$WANT_MAJOR or newer is on PATH"
    exit 0
fi
log "no kustomize v$WANT_MAJOR or newer: install kubectl 1.27+ or a kustomize v$WANT_MAJOR release binary"
exit 1
