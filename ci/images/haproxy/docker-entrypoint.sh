#!/bin/sh
# The official haproxy image's entrypoint: options alone (`-c -f FILE`) run haproxy
# with them, and haproxy runs in the foreground in master-worker mode (-W -db), where
# SIGUSR2 reloads the configuration and SIGUSR1 stops softly.
set -e

case $1 in
-*) set -- haproxy "$@" ;;
esac

if [ "$1" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi

exec "$@"
