#!/bin/bash
# Entrypoint of the MySQL stand-in (Debian's MariaDB). It honours the interface of the
# official mysql image, so a compose file written for `mysql:8.4` runs unchanged:
#   MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD,
#   MYSQL_ROOT_HOST (default %), MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD, each also as
#   <NAME>_FILE (read from a file, as compose secrets deliver them); scripts in
#   /docker-entrypoint-initdb.d (*.sh, *.sql, *.sql.gz); data in /var/lib/mysql,
#   initialised only on the first start (when it holds no `mysql` schema).
# Ref: the official image's documented environment variables and entrypoint behaviour,
#      https://hub.docker.com/_/mysql ("Environment Variables", "Docker Secrets").
set -euo pipefail

DATADIR=/var/lib/mysql
RUNDIR=/run/mysqld
# The temporary server used for initialisation listens on its own socket and not on TCP,
# so neither `mysqladmin ping -h 127.0.0.1` nor a ping on the default socket succeeds
# before the real server is up: health checks cannot report a half-initialised database.
INIT_SOCKET=$RUNDIR/init.sock

log() { printf '%s [Entrypoint]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
die() {
    log "ERROR: $*" >&2
    exit 1
}

# file_env NAME [DEFAULT]: set NAME from NAME or from the file named by NAME_FILE.
file_env() {
    local var=$1 file_var="${1}_FILE" default=${2:-} val
    val=$default
    if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
        die "both $var and $file_var are set; use only one"
    fi
    if [[ -n ${!var:-} ]]; then
        val=${!var}
    elif [[ -n ${!file_var:-} ]]; then
        [[ -r ${!file_var} ]] || die "$file_var names ${!file_var}, which cannot be read"
        # $(< file) drops trailing newlines, which secret files usually end with.
        val=$(<"${!file_var}")
    fi
    export "$var=$val"
    unset "$file_var"
}

# SQL literals: quotes are doubled and backslashes escaped (default sql_mode).
sql_str() {
    local s=${1//\\/\\\\}
    s=${s//\'/\'\'}
    printf "'%s'" "$s"
}
# shellcheck disable=SC2016 # the backquotes are SQL quoting, not command substitution
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

# Run a command as the mysql user when started as root (the official image uses gosu;
# setpriv from util-linux does the same without an extra package).
as_mysql() {
    if ((EUID == 0)); then
        exec setpriv --reuid=mysql --regid=mysql --init-groups -- "$@"
    fi
    exec "$@"
}

# `docker run image --some-option` passes options to the server, as in the official image.
if [[ ${1:-} == -* ]]; then
    set -- mariadbd "$@"
fi
# Anything other than the server (`mysql`, `bash`, ...) runs as given.
if [[ ${1:-} != mariadbd && ${1:-} != mysqld ]]; then
    exec "$@"
fi
set -- mariadbd "${@:2}"

if ((EUID == 0)); then
    mkdir -p "$DATADIR" "$RUNDIR"
    # A bind-mounted data dir may belong to another user; the server runs as mysql.
    find "$DATADIR" "$RUNDIR" \! -user mysql -exec chown mysql:mysql '{}' +
fi

temp_pid=
stop_temp_server() {
    if [[ -n $temp_pid ]] && kill -0 "$temp_pid" 2>/dev/null; then
        kill -TERM "$temp_pid"
        wait "$temp_pid" || true
    fi
}

initialise() {
    file_env MYSQL_ROOT_PASSWORD
    file_env MYSQL_DATABASE
    file_env MYSQL_USER
    file_env MYSQL_PASSWORD
    file_env MYSQL_ROOT_HOST '%'

    if [[ -z $MYSQL_ROOT_PASSWORD && -z ${MYSQL_ALLOW_EMPTY_PASSWORD:-} && -z ${MYSQL_RANDOM_ROOT_PASSWORD:-} ]]; then
        die "database is uninitialised and no root password option is set: give one of MYSQL_ROOT_PASSWORD, MYSQL_ROOT_PASSWORD_FILE, MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD"
    fi
    if [[ $MYSQL_USER == root ]]; then
        die "MYSQL_USER=root is not allowed: root is configured through MYSQL_ROOT_PASSWORD"
    fi
    if [[ -n ${MYSQL_RANDOM_ROOT_PASSWORD:-} && -z $MYSQL_ROOT_PASSWORD ]]; then
        MYSQL_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
        log "GENERATED ROOT PASSWORD: $MYSQL_ROOT_PASSWORD"
    fi

    log "initialising database files in $DATADIR"
    local install_args=(--datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=normal)
    if ((EUID == 0)); then
        install_args+=(--user=mysql)
    fi
    mariadb-install-db "${install_args[@]}" >/dev/null

    log "starting a temporary server without networking"
    trap 'stop_temp_server; exit 143' TERM INT
    (as_mysql "$@" --skip-networking --socket="$INIT_SOCKET") &
    temp_pid=$!
    local i
    for ((i = 0; i < 60; i++)); do
        if mariadb-admin --socket="$INIT_SOCKET" -uroot --silent ping >/dev/null 2>&1; then
            break
        fi
        kill -0 "$temp_pid" 2>/dev/null || die "the temporary server exited during initialisation"
        sleep 1
    done
    ((i < 60)) || die "the temporary server did not answer within 60 s"

    local client=(mariadb --protocol=socket --socket="$INIT_SOCKET" -uroot --batch --skip-column-names)
    # MariaDB creates anonymous ''@'localhost' accounts, which shadow a new user who
    # connects over the socket, and root accounts for the host name; neither exists in
    # the official image. Ref: https://mariadb.com/kb/en/mariadb-install-db/ (anonymous users)
    local drops
    drops=$("${client[@]}" -e "SELECT CONCAT('DROP USER ', QUOTE(User), '@', QUOTE(Host), ';') FROM mysql.user WHERE User = '' OR (User = 'root' AND Host <> 'localhost')")

    local root_pw root_host sql
    root_pw=$(sql_str "$MYSQL_ROOT_PASSWORD")
    root_host=$(sql_str "$MYSQL_ROOT_HOST")
    sql="SET @@SESSION.SQL_LOG_BIN = 0;
$drops
ALTER USER 'root'@'localhost' IDENTIFIED BY $root_pw;"
    if [[ $MYSQL_ROOT_HOST != localhost ]]; then
        sql+="
CREATE USER 'root'@$root_host IDENTIFIED BY $root_pw;
GRANT ALL ON *.* TO 'root'@$root_host WITH GRANT OPTION;"
    fi
    if [[ -n $MYSQL_DATABASE ]]; then
        log "creating database $MYSQL_DATABASE"
        sql+="
CREATE DATABASE IF NOT EXISTS $(sql_ident "$MYSQL_DATABASE");"
    fi
    if [[ -n $MYSQL_USER && -n $MYSQL_PASSWORD ]]; then
        log "creating user $MYSQL_USER"
        sql+="
CREATE USER $(sql_str "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_str "$MYSQL_PASSWORD");"
        if [[ -n $MYSQL_DATABASE ]]; then
            # In GRANT, _ and % in a database name are wildcards: escape them.
            local grant_db=${MYSQL_DATABASE//_/\\_}
            grant_db=${grant_db//%/\\%}
            sql+="
GRANT ALL ON $(sql_ident "$grant_db").* TO $(sql_str "$MYSQL_USER")@'%';"
        fi
    elif [[ -n $MYSQL_USER || -n $MYSQL_PASSWORD ]]; then
        log "WARNING: MYSQL_USER and MYSQL_PASSWORD must both be set; no user created"
    fi
    sql+="
FLUSH PRIVILEGES;"
    "${client[@]}" <<<"$sql"

    # From here on root needs its password; MYSQL_PWD keeps it off the command line.
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        [[ -e $f ]] || continue
        local db_args=()
        [[ -n $MYSQL_DATABASE ]] && db_args=(--database="$MYSQL_DATABASE")
        case $f in
        *.sh)
            log "running $f"
            if [[ -x $f ]]; then "$f"; else
                # shellcheck disable=SC1090
                . "$f"
            fi
            ;;
        *.sql)
            log "running $f"
            MYSQL_PWD=$MYSQL_ROOT_PASSWORD "${client[@]}" "${db_args[@]}" <"$f"
            ;;
        *.sql.gz)
            log "running $f"
            gzip -dc "$f" | MYSQL_PWD=$MYSQL_ROOT_PASSWORD "${client[@]}" "${db_args[@]}"
            ;;
        *) log "ignoring $f" ;;
        esac
    done

    log "stopping the temporary server"
    kill -TERM "$temp_pid"
    wait "$temp_pid"
    temp_pid=
    trap - TERM INT
    log "initialisation complete"
}

if [[ ! -d $DATADIR/mysql ]]; then
    initialise "$@"
else
    log "database already initialised; skipping initialisation"
fi
# The server replaces this script as PID 1, so `docker stop` (SIGTERM) shuts it down cleanly.
log "starting the server"
as_mysql "$@"
