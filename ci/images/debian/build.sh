#!/usr/bin/env bash
# Build the Debian 12 base stand-in: a minbase root file system from the host's own apt
# sources, imported as an image. The official debian images are made the same way.
# Usage: build.sh IMAGE_NAME LABEL_KEY LABEL_VALUE
# Ref: mmdebstrap(1), "Create a system that can be used with docker".
set -euo pipefail

image=$1
label_key=$2
label_value=$3

# The host's active apt sources: mmdebstrap accepts sources files as MIRROR arguments.
# Passing them explicitly matters because with no MIRROR mmdebstrap reads the sources
# from standard input whenever it is not a terminal (as in CI, where it is empty).
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    if [[ -s $f ]]; then
        sources+=("$f")
    fi
done
if ((${#sources[@]} == 0)); then
    echo "build.sh: no apt sources found under /etc/apt" >&2
    exit 1
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

# Leave out manual pages, documentation and translations, as the official "slim" Debian
# images do; the dpkg options stay in the image, so later apt installs skip them too.
# The hook is single-quoted on purpose: mmdebstrap passes the root's path as "$1".
# shellcheck disable=SC2016
mmdebstrap \
    --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm "$workdir/rootfs.tar" "${sources[@]}" </dev/null

docker import \
    --change "LABEL ${label_key}=${label_value}" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    "$workdir/rootfs.tar" "$image" >/dev/null
