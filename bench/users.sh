#!/usr/bin/env bash
# bench/users.sh - the database benchmark: glasgow against its peers on the
# same machine in the same run, over a throwaway PostgreSQL 15 (.ci/pg) that
# holds 10,000 seeded users.
#
# Workload "read": GET one user by a random id among the 10,000 (wrk picks the
# id per request from a list made with psql), the statement being
#   SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = $1
#   glasgow       GET /bench/users/:id, a bench-only route (bench/users_glasgow.lua)
#                 doing exactly that SELECT through glasgow.db
#   glasgow-auth  the real GET /v1/users/:id with an admin bearer token: the same
#                 SELECT after the token check, answered from the worker's token
#                 cache once the first lookup has stored it (glasgow.authcache)
#   nginx         Debian nginx + lua-nginx-module + LuaDBI (lua-dbi-postgresql),
#                 bench/users_nginx.lua, run from a private root under bench/.cache.
#                 LuaDBI blocks: each of the 2 workers waits for its own query
#   fastapi       Debian FastAPI + uvicorn + psycopg 3 AsyncConnectionPool,
#                 bench/users_fastapi.py
#   pgbench       the same SELECT (bench/users_pgbench.sql), -M prepared -j 2:
#                 the database's own ceiling, no HTTP
# Workload "write": POST /bench/users {"email","name"} -> INSERT ... RETURNING
# the same columns with a fixed dummy password_hash (no scrypt, no auth), unique
# emails per request (bench/users_wrk_post.lua); glasgow, nginx, fastapi and
# pgbench (bench/users_pgbench_insert.sql, informative). Rows written by a run
# are deleted (and the table vacuumed) before the next measured run.
#
# Each contender gets a wrk (or pgbench) warm-up and then a measured run, in
# turn, ROUNDS times. Prints req/s, p99, errors (non-2xx and socket errors; for
# pgbench failed transactions), glasgow's ratio to each peer per round and the
# median, and the targets.
#
# Environment overrides:
#   DURATION (10s)  CONNECTIONS (64)  THREADS (2)  ROUNDS (2)  WARMUP (2s)
#   WORKLOADS ("read write")  POOL_SIZE (8: database connections per worker for
#   glasgow and fastapi)  GLASGOW_BIN (build/glasgow)  STARTUP_TIMEOUT (20)
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-2s}
WORKLOADS=${WORKLOADS:-read write}
POOL_SIZE=${POOL_SIZE:-8}
GLASGOW_BIN=${GLASGOW_BIN:-build/glasgow}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-20}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")
CACHE=$BENCH_DIR/.cache
NGX_ROOT=$CACHE/users-nginx-root
DEBS=$CACHE/users-debs
RUN=$CACHE/users-run
PGDIR=$RUN/pg
PY=/usr/bin/python3
WORKERS=2
PGBENCH_JOBS=2
USERS=10000
PROBE_N=42 # the seeded user every contender is asked for before measuring
MISSING_ID=00000000-0000-4000-8000-999999999999

READ_CONTENDERS=(glasgow glasgow-auth nginx fastapi pgbench)
WRITE_CONTENDERS=(glasgow nginx fastapi pgbench)

# Targets printed beside the figures (glasgow's req/s over the peer's).
TARGET_NGINX=1.0
TARGET_FASTAPI=5
TARGET_PGBENCH=0.5
TARGET_AUTH=0.9 # glasgow-auth over glasgow's bench route: the cost of authentication

# Packages extracted into the private nginx root (never installed).
NGX_PKGS=(nginx nginx-common libnginx-mod-http-ndk libnginx-mod-http-lua
          lua-resty-core lua-resty-lrucache lua-cjson lua-dbi-common lua-dbi-postgresql)

log() { printf '[users.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- arguments
valid_duration() { [[ $1 =~ ^[0-9]+[smh]?$ ]]; }
to_seconds() {
    local n=${1%[smh]}
    case ${1#"$n"} in
        m) echo $((n * 60)) ;;
        h) echo $((n * 3600)) ;;
        *) echo "$n" ;;
    esac
}
for v in CONNECTIONS THREADS ROUNDS POOL_SIZE STARTUP_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
valid_duration "$DURATION" || die "DURATION must look like 10s, 1m (got '$DURATION')"
valid_duration "$WARMUP" || die "WARMUP must look like 2s (got '$WARMUP')"
((THREADS <= CONNECTIONS)) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"
((CONNECTIONS >= PGBENCH_JOBS)) || die "CONNECTIONS must be at least $PGBENCH_JOBS (pgbench -j)"
# .ci/pg allows 200 connections (3 kept for superusers): glasgow and fastapi
# hold POOL_SIZE per worker, nginx 1 per worker, pgbench CONNECTIONS, psql 1.
((2 * WORKERS * POOL_SIZE + WORKERS + CONNECTIONS + 1 <= 197)) ||
    die "CONNECTIONS ($CONNECTIONS) and POOL_SIZE ($POOL_SIZE) need more than the 197 database connections available"
read -r -a WORKLOAD_LIST <<<"$WORKLOADS"
((${#WORKLOAD_LIST[@]} > 0)) || die "WORKLOADS is empty"
for w in "${WORKLOAD_LIST[@]}"; do
    case $w in read | write) ;; *) die "unknown workload '$w' in WORKLOADS (read, write)" ;; esac
done

cd "$ROOT_DIR"
mkdir -p "$CACHE"
# A previous run killed before its clean-up may have left its server running.
[[ -f $PGDIR/data/PG_VERSION ]] && bash .ci/pg stop "$PGDIR"
rm -rf "$RUN"
mkdir -p "$RUN"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- private nginx root
ngx_libdirs() {
    local d dirs=()
    for d in "$NGX_ROOT"/lib/*-linux-gnu* "$NGX_ROOT"/usr/lib/*-linux-gnu* "$NGX_ROOT"/lib "$NGX_ROOT"/usr/lib; do
        [[ -d $d ]] && dirs+=("$d")
    done
    local IFS=:
    echo "${dirs[*]}"
}

# Shared libraries that nginx, its modules or the LuaDBI driver cannot resolve.
ngx_missing_libs() {
    local f
    for f in "$NGX_ROOT"/usr/sbin/nginx "$NGX_ROOT"/usr/lib/nginx/modules/*.so \
        "$NGX_ROOT"/usr/lib/*/liblua5.1-dbi-postgresql.so.*.*; do
        [[ -e $f ]] || continue
        LD_LIBRARY_PATH=$(ngx_libdirs) ldd "$f" 2>/dev/null | awk '/not found/ {print $1}'
    done | sort -u
}

lib_package() {
    case $1 in
        libluajit-5.1.so.*) echo libluajit2-5.1-2 ;;
        libpcre.so.3) echo libpcre3 ;;
        libpcre2-8.so.*) echo libpcre2-8-0 ;;
        libssl.so.3 | libcrypto.so.3) echo libssl3 ;;
        libz.so.*) echo zlib1g ;;
        libcrypt.so.*) echo libcrypt1 ;;
        libpq.so.5) echo libpq5 ;;
        libldap-2.5.so.* | liblber-2.5.so.*) echo libldap-2.5-0 ;;
        libgssapi_krb5.so.2) echo libgssapi-krb5-2 ;;
        libkrb5.so.3) echo libkrb5-3 ;;
        libk5crypto.so.3) echo libk5crypto3 ;;
        libkrb5support.so.0) echo libkrb5support0 ;;
        libcom_err.so.2) echo libcom-err2 ;;
        libsasl2.so.2) echo libsasl2-2 ;;
        *) return 1 ;;
    esac
}

setup_nginx_root() {
    local stamp=$NGX_ROOT/.complete deb lib pkg pkgs missing pass
    if [[ ! -f $stamp ]]; then
        log "extracting nginx + lua module + LuaDBI into $NGX_ROOT (no system install)"
        rm -rf "$NGX_ROOT" "$DEBS"
        mkdir -p "$NGX_ROOT"
        apt_download "${NGX_PKGS[@]}"
        for deb in "$DEBS"/*.deb; do dpkg -x "$deb" "$NGX_ROOT"; done
        # Libraries the binaries need but the system lacks go into the private
        # root too (a library may itself need more: a few passes).
        for pass in 1 2 3; do
            missing=$(ngx_missing_libs)
            [[ -n $missing ]] || break
            pkgs=()
            for lib in $missing; do
                pkg=$(lib_package "$lib") || die "nginx needs $lib and no package is known for it"
                pkgs+=("$pkg")
            done
            log "extracting libraries (pass $pass): ${pkgs[*]}"
            apt_download "${pkgs[@]}"
            for deb in "$DEBS"/*.deb; do dpkg -x "$deb" "$NGX_ROOT"; done
        done
        (cd "$DEBS" && ls -- *.deb) >"$stamp"
    fi
    missing=$(ngx_missing_libs)
    [[ -z $missing ]] || die "nginx libraries unresolved: $missing"
}

write_nginx_conf() {
    local port=$1 dir=$RUN/nginx lua51
    # cjson.so and dbd/postgresql.so (a relative symlink, resolved inside the root)
    lua51=$(find "$NGX_ROOT/usr/lib" -path '*/lua/5.1/dbd/postgresql.so' -printf '%h\n' -quit)
    [[ -n $lua51 ]] || die "dbd/postgresql.so not found in $NGX_ROOT"
    lua51=${lua51%/dbd}
    [[ -e $lua51/cjson.so ]] || die "cjson.so not found beside dbd/ in $lua51"
    mkdir -p "$dir/tmp" "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
# Generated by bench/users.sh
load_module $NGX_ROOT/usr/lib/nginx/modules/ndk_http_module.so;
load_module $NGX_ROOT/usr/lib/nginx/modules/ngx_http_lua_module.so;

worker_processes $WORKERS;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
env DATABASE_URL;

events {
    worker_connections 4096;
}

http {
    access_log off;
    keepalive_requests 1000000;

    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    lua_package_path "$BENCH_DIR/?.lua;$NGX_ROOT/usr/share/lua/5.1/?.lua;$NGX_ROOT/usr/share/lua/5.1/?/init.lua;;";
    lua_package_cpath "$lua51/?.so;;";

    init_by_lua_block {
        require "cjson"
        require "DBI"
        require "dbd.postgresql"
        require "users_nginx"
    }
    # One blocking LuaDBI connection per worker, with its prepared statements.
    init_worker_by_lua_block {
        local ok, err = require("users_nginx").connect()
        if not ok then
            ngx.log(ngx.ERR, "users_nginx: connect failed (retried per request): ", tostring(err))
        end
    }

    server {
        listen 127.0.0.1:$port;
        server_name localhost;
        client_max_body_size 8k;
        client_body_buffer_size 8k;

        location ~ "^/bench/users/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\$" {
            content_by_lua_block {
                require("users_nginx").get(ngx.var[1])
            }
        }
        location = /bench/users {
            content_by_lua_block {
                require("users_nginx").create()
            }
        }
    }
}
EOF
}


PG_STARTED=0
LOAD_PID=
cleanup() {
    local name
    if [[ -n $LOAD_PID ]]; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
        LOAD_PID=
    fi
    for name in "${!PID[@]}"; do stop "$name"; done
    if ((PG_STARTED)); then
        bash .ci/pg stop "$PGDIR" || true
        cp "$PGDIR/server.log" "$RUN/postgres.log" 2>/dev/null || true
        rm -rf "$PGDIR"
        PG_STARTED=0
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- database
sql() { timeout 120 psql "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

uuid_of() { printf '00000000-0000-4000-8000-%012d' "$1"; }

setup_database() {
    local port=$1 raw
    log "starting PostgreSQL on 127.0.0.1:$port ($PGDIR)"
    PG_STARTED=1
    PG_THROWAWAY=1 bash .ci/pg start "$PGDIR" "$port" || die "could not start PostgreSQL (see $PGDIR/server.log)"
    DATABASE_URL=$(bash .ci/pg url "$PGDIR" "$port")
    export PGCONNECT_TIMEOUT=10
    DATABASE_URL=$DATABASE_URL timeout 60 "$GLASGOW_BIN" migrate >"$RUN/migrate.log" 2>&1 ||
        { cat "$RUN/migrate.log" >&2; die "glasgow migrate failed"; }
    # Seeded ids are 00000000-0000-4000-8000-<n, 12 digits> so that pgbench,
    # which has no string variables, can name a random user by its number.
    log "seeding $USERS users"
    sql <<EOF || die "seeding failed"
ALTER ROLE glasgow SET timezone = 'UTC';
INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
       'user' || n || '@bench.example', 'Bench User ' || n, 'user', 'bench-dummy-hash',
       now() - make_interval(secs => $USERS - n), now() - make_interval(secs => $USERS - n)
  FROM generate_series(1, $USERS) AS n;
INSERT INTO users (email, name, role, password_hash)
VALUES ('admin@bench.example', 'Bench Admin', 'admin', 'bench-dummy-hash');
VACUUM ANALYZE users;
EOF
    sql -c "SELECT id FROM users WHERE email LIKE 'user%@bench.example' ORDER BY id" >"$RUN/ids.txt" ||
        die "could not list the ids"
    [[ $(wc -l <"$RUN/ids.txt") -eq $USERS ]] || die "expected $USERS ids in $RUN/ids.txt"
    PG_VERSION=$(sql -c "SHOW server_version")
    # An admin token for GET /v1/users/:id: the client sends base64url(raw)
    # without padding, the table keeps sha256(raw) (routes/_auth.lua).
    raw=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
    [[ ${#raw} -eq 64 ]] || die "could not read 32 random bytes"
    (
        umask 077
        sql >"$RUN/token" <<EOF
INSERT INTO auth_tokens (token_hash, user_id, expires_at)
SELECT sha256('\\x$raw'::bytea), id, now() + interval '1 day' FROM users WHERE email = 'admin@bench.example';
SELECT translate(rtrim(encode('\\x$raw'::bytea, 'base64'), '='), '+/', '-_');
EOF
    ) || die "could not create the admin token"
    [[ $(tr -d '\n' <"$RUN/token" | wc -c) -eq 43 ]] || die "the admin token is not 43 characters"
}

# Deletes what the write workload inserted, so each run starts from the same table.
reset_writes() {
    sql -c "DELETE FROM users WHERE email LIKE 'w-%'" -c "VACUUM ANALYZE users" ||
        die "could not delete the written rows"
}

# ---------------------------------------------------------------- checks
# check_json NAME FILE CODE WANT_CODE PYTHON-CONDITION(d = the decoded body)
check_json() {
    local name=$1 file=$2 code=$3 want=$4 cond=$5 body
    body=$(head -c 600 "$file")
    [[ $code == "$want" ]] || die "$name: answered HTTP $code, want $want: $body"
    "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
' "$file" "$cond" || die "$name: unexpected body: $body"
}

# verify_read NAME BASE_URL PREFIX [TOKEN_FILE]
verify_read() {
    local name=$1 base=$2 prefix=$3 token_file=${4:-} id code hdr=()
    [[ -n $token_file ]] && hdr=(-H "Authorization: Bearer $(cat "$token_file")")
    id=$(uuid_of "$PROBE_N")
    code=$(curl -sS --max-time 5 "${hdr[@]}" -o "$RUN/$name.read.body" -w '%{http_code}' "$base$prefix$id") ||
        die "$name: GET $prefix$id failed"
    check_json "$name" "$RUN/$name.read.body" "$code" 200 \
        "str(d.get('id')) == '$id' and d.get('email') == 'user$PROBE_N@bench.example' and d.get('name') == 'Bench User $PROBE_N' and d.get('role') == 'user' and set(d) == {'id','email','name','role','created_at','updated_at'}"
    log "$name: GET $prefix$id -> 200 $(head -c 300 "$RUN/$name.read.body")"
    code=$(curl -sS --max-time 5 "${hdr[@]}" -o "$RUN/$name.missing.body" -w '%{http_code}' "$base$prefix$MISSING_ID") ||
        die "$name: GET $prefix$MISSING_ID failed"
    [[ $code == 404 ]] || die "$name: a missing user answered HTTP $code, want 404"
    if [[ -n $token_file ]]; then
        code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$base$prefix$id") ||
            die "$name: GET without a token failed"
        [[ $code == 401 ]] || die "$name: GET without a token answered HTTP $code, want 401"
    fi
}

verify_write() {
    local name=$1 base=$2 email code n
    email="w-verify-${name}@bench.example"
    code=$(curl -sS --max-time 5 -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"name\":\"Verify\"}" -o "$RUN/$name.write.body" -w '%{http_code}' \
        "$base/bench/users") || die "$name: POST /bench/users failed"
    check_json "$name" "$RUN/$name.write.body" "$code" 201 \
        "d.get('email') == '$email' and d.get('name') == 'Verify' and d.get('role') == 'user' and len(str(d.get('id'))) == 36 and set(d) == {'id','email','name','role','created_at','updated_at'}"
    n=$(sql -c "SELECT count(*) FROM users WHERE email = '$email' AND id = '$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$RUN/$name.write.body")'")
    [[ $n == 1 ]] || die "$name: the inserted row is not in the table"
    code=$(curl -sS --max-time 5 -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"name\":\"Verify\"}" -o "$RUN/$name.dup.body" -w '%{http_code}' \
        "$base/bench/users") || die "$name: second POST /bench/users failed"
    [[ $code == 409 ]] || die "$name: a duplicate email answered HTTP $code, want 409"
    log "$name: POST /bench/users -> 201 $(head -c 300 "$RUN/$name.write.body")"
}

# The pgbench scripts run through psql with fixed values for their variables.
verify_pgbench() {
    local out
    out=$(grep -v -e '^\\set' -e '^--' "$BENCH_DIR/users_pgbench.sql" | sql -F ' ' -v n="$PROBE_N") ||
        die "pgbench: the read script fails under psql"
    [[ $out == "$(uuid_of "$PROBE_N") user$PROBE_N@bench.example "* ]] ||
        die "pgbench: the read script returned '$out'"
    log "pgbench: read script for n=$PROBE_N -> $out"
    out=$(grep -v -e '^\\set' -e '^--' "$BENCH_DIR/users_pgbench_insert.sql" | sql -F ' ' -v client_id=0 -v r=1) ||
        die "pgbench: the insert script fails under psql"
    [[ $out == *" w-pgbench-0-1@bench.example Bench writer user "* ]] ||
        die "pgbench: the insert script returned '$out'"
    log "pgbench: insert script -> $out"
}

# ---------------------------------------------------------------- load
# run_bg LIMIT_S OUTFILE CMD... : a bounded load generator in the background,
# so that a signal to this script is handled at once.
run_bg() {
    local limit=$1 out=$2
    shift 2
    timeout --signal=INT --kill-after=5 "$limit" "$@" >"$out" 2>&1 &
    LOAD_PID=$!
    if ! wait "$LOAD_PID"; then
        LOAD_PID=
        return 1
    fi
    LOAD_PID=
}

# wrk_run WORKLOAD CONTENDER DURATION OUTFILE
wrk_run() {
    local workload=$1 c=$2 d=$3 out=$4 args=()
    if [[ $workload == read ]]; then
        args=(-s "$BENCH_DIR/users_wrk_get.lua" "${BASE[$c]}" -- "$RUN/ids.txt" "${READ_PREFIX[$c]}")
        [[ $c == glasgow-auth ]] && args+=("$RUN/token")
    else
        TAG_N=$((TAG_N + 1))
        args=(-s "$BENCH_DIR/users_wrk_post.lua" "${BASE[$c]}" -- /bench/users "${c//[^a-z]/}$TAG_N")
    fi
    run_bg $(($(to_seconds "$d") + 30)) "$out" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency "${args[@]}" ||
        { cat "$out" >&2; die "wrk against $c failed"; }
}
TAG_N=0

# pgbench_run WORKLOAD DURATION OUTFILE LOGPREFIX
pgbench_run() {
    local workload=$1 d=$2 out=$3 logp=$4 script=users_pgbench.sql
    [[ $workload == write ]] && script=users_pgbench_insert.sql
    # -l with a 10% sample gives the latencies for p99 without logging every transaction.
    if ! run_bg $(($(to_seconds "$d") + 60)) "$out" \
        env PGPASSWORD="$(cat "$PGDIR/password")" \
        pgbench -n -h 127.0.0.1 -p "$PG_PORT" -U glasgow -f "$BENCH_DIR/$script" -M prepared \
        -c "$CONNECTIONS" -j "$PGBENCH_JOBS" -T "$(to_seconds "$d")" \
        -l --sampling-rate=0.1 --log-prefix="$logp" glasgow; then
        # A client that hit an error aborts pgbench's run (exit 2) but the
        # figures are still printed; anything else is fatal.
        grep -q '^tps = ' "$out" || { cat "$out" >&2; die "pgbench failed"; }
        log "pgbench reported an error (see $out)"
    fi
}

# Prints "req/s p99_ms errors requests" from wrk's output.
parse_wrk() {
    awk '
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" {
            v = $2
            if (v ~ /us$/) p99 = v * 0.001
            else if (v ~ /ms$/) p99 = v * 1
            else if (v ~ /m$/) p99 = v * 60000
            else if (v ~ /h$/) p99 = v * 3600000
            else if (v ~ /s$/) p99 = v * 1000
        }
        / requests in / { n = $1 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
        END {
            if (rps == "" || p99 == "" || n == "") exit 1
            printf "%s %.3f %d %d\n", rps, p99, err, n
        }' "$1"
}

# Prints "tps p99_ms errors transactions" from pgbench's output and its sampled latency logs.
parse_pgbench() {
    local out=$1 logp=$2 tps errs p99 n
    tps=$(awk '/^tps = / {print $3; exit}' "$out")
    n=$(awk '/^number of transactions actually processed:/ {print $6; exit}' "$out")
    [[ -n $tps && -n $n ]] || return 1
    errs=$(awk '/^number of failed transactions:/ {print $5} /aborted in command/ {a++} END {print a + 0}' "$out" |
        awk '{s += $1} END {print s + 0}')
    # Column 3 of a log line is the transaction's latency in microseconds.
    p99=$(cat "$logp".* 2>/dev/null | awk '{print $3}' | sort -n |
        awk '{v[NR] = $1} END {if (NR == 0) exit 1; i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; printf "%.3f", v[i] / 1000}') ||
        return 1
    echo "$tps $p99 $errs $n"
}

postmaster_pid() { head -n 1 "$PGDIR/data/postmaster.pid"; }

declare -A RPS=() P99=() ERRS=() SRV_US=() PG_US=()
declare -A SERVER_OF=([glasgow]=glasgow [glasgow-auth]=glasgow [nginx]=nginx [fastapi]=fastapi)

# measure WORKLOAD CONTENDER ROUND
measure() {
    local workload=$1 c=$2 r=$3 key=$1:$2:$3 out=$RUN/$1-$2-$3 result rps p99 errs n
    local pgpid srv=${SERVER_OF[$2]:-} pg0 pg1 srv0=0 srv1=0
    log "$workload round $r/$ROUNDS: $c (warm-up $WARMUP, then $DURATION)"
    pgpid=$(postmaster_pid)
    if [[ $c == pgbench ]]; then
        pgbench_run "$workload" "$WARMUP" "$out-warmup.txt" "$out-warmup.log"
        [[ $workload == write ]] && reset_writes
        pg0=$(tree_ticks "$pgpid")
        pgbench_run "$workload" "$DURATION" "$out.txt" "$out.lat"
        sleep 1 # let the postmaster reap pgbench's backends (their time moves to it)
        pg1=$(tree_ticks "$pgpid")
        result=$(parse_pgbench "$out.txt" "$out.lat") || die "could not parse $out.txt"
    else
        wrk_run "$workload" "$c" "$WARMUP" "$out-warmup.txt"
        [[ $workload == write ]] && reset_writes
        pg0=$(tree_ticks "$pgpid")
        srv0=$(tree_ticks "${PID[$srv]}")
        wrk_run "$workload" "$c" "$DURATION" "$out.txt"
        srv1=$(tree_ticks "${PID[$srv]}")
        pg1=$(tree_ticks "$pgpid")
        result=$(parse_wrk "$out.txt") || die "could not parse $out.txt"
    fi
    read -r rps p99 errs n <<<"$result"
    RPS[$key]=$rps
    P99[$key]=$p99
    ERRS[$key]=$errs
    PG_US[$key]=$(us_per $((pg1 - pg0)) "$n")
    if [[ -n $srv ]]; then
        SRV_US[$key]=$(us_per $((srv1 - srv0)) "$n")
    else
        SRV_US[$key]=-
    fi
    if [[ $workload == write ]]; then
        log "  $c: $(sql -c "SELECT count(*) FROM users WHERE email LIKE 'w-%'") rows inserted by the measured run"
    fi
}

# ---------------------------------------------------------------- main
want() { [[ " $WORKLOADS " == *" $1 "* ]]; }

ensure_pkgs wrk curl postgresql-15 postgresql-client-15 python3-fastapi python3-uvicorn \
    python3-psycopg python3-psycopg-pool
setup_nginx_root
if [[ ! -x $GLASGOW_BIN ]]; then
    [[ -f Makefile ]] || die "$GLASGOW_BIN is missing and there is no Makefile to build it"
    log "building glasgow (make)"
    make >"$RUN/make.log" 2>&1 || { tail -n 30 "$RUN/make.log" >&2; die "make failed"; }
    [[ -x $GLASGOW_BIN ]] || die "make did not produce $GLASGOW_BIN"
fi
[[ -d routes ]] || die "routes/ is missing in $ROOT_DIR"

pick_ports 5
PG_PORT=${PORTS[0]}
declare -A PORT=([glasgow]=${PORTS[1]} [nginx]=${PORTS[3]} [fastapi]=${PORTS[4]})
GLASGOW_ADMIN_PORT=${PORTS[2]}
declare -A BASE=(
    [glasgow]=http://127.0.0.1:${PORT[glasgow]}
    [glasgow-auth]=http://127.0.0.1:${PORT[glasgow]}
    [nginx]=http://127.0.0.1:${PORT[nginx]}
    [fastapi]=http://127.0.0.1:${PORT[fastapi]}
)
declare -A READ_PREFIX=(
    [glasgow]=/bench/users/ [glasgow-auth]=/v1/users/ [nginx]=/bench/users/ [fastapi]=/bench/users/
)

setup_database "$PG_PORT"
PROBE_URL=/bench/users/$(uuid_of 1)

# glasgow serves the repo's routes plus the bench routes, from a private copy.
mkdir -p "$RUN/routes"
cp routes/*.lua "$RUN/routes/"
cp "$BENCH_DIR/users_glasgow.lua" "$RUN/routes/bench_users.lua"
start glasgow env DATABASE_URL="$DATABASE_URL" GLASGOW_LISTEN="127.0.0.1:${PORT[glasgow]}" \
    GLASGOW_ADMIN_LISTEN="127.0.0.1:$GLASGOW_ADMIN_PORT" GLASGOW_WORKERS=$WORKERS \
    GLASGOW_DB_POOL_SIZE="$POOL_SIZE" GLASGOW_ROUTES_DIR="$RUN/routes" GLASGOW_ACCESS_LOG=false \
    "$GLASGOW_BIN" serve
wait_ready glasgow "${BASE[glasgow]}$PROBE_URL"

write_nginx_conf "${PORT[nginx]}"
NGX_CMD=(env "DATABASE_URL=$DATABASE_URL" "LD_LIBRARY_PATH=$(ngx_libdirs)" "$NGX_ROOT/usr/sbin/nginx"
    -p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" -e "$RUN/nginx/logs/error.log")
"${NGX_CMD[@]}" -t -q >"$RUN/nginx-test.log" 2>&1 ||
    { cat "$RUN/nginx-test.log" >&2; die "nginx rejected $RUN/nginx/nginx.conf"; }
start nginx "${NGX_CMD[@]}"
wait_ready nginx "${BASE[nginx]}$PROBE_URL"

start fastapi env DATABASE_URL="$DATABASE_URL" BENCH_POOL_SIZE="$POOL_SIZE" \
    "$PY" -m uvicorn --app-dir "$BENCH_DIR" users_fastapi:app \
    --host 127.0.0.1 --port "${PORT[fastapi]}" --workers "$WORKERS" \
    --log-level warning --no-access-log
wait_ready fastapi "${BASE[fastapi]}$PROBE_URL"

# Every contender must answer correctly before it is measured.
for c in glasgow glasgow-auth nginx fastapi; do
    if [[ $c == glasgow-auth ]]; then
        verify_read "$c" "${BASE[$c]}" "${READ_PREFIX[$c]}" "$RUN/token"
    else
        verify_read "$c" "${BASE[$c]}" "${READ_PREFIX[$c]}"
    fi
done
for c in glasgow nginx fastapi; do verify_write "$c" "${BASE[$c]}"; done
verify_pgbench
reset_writes

for w in "${WORKLOAD_LIST[@]}"; do
    if [[ $w == read ]]; then
        contenders=("${READ_CONTENDERS[@]}")
    else
        contenders=("${WRITE_CONTENDERS[@]}")
    fi
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in "${contenders[@]}"; do measure "$w" "$c" "$r"; done
    done
    [[ $w == write ]] && reset_writes
done
cleanup

# ---------------------------------------------------------------- report
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
verdict() { awk -v m="$1" -v t="$2" 'BEGIN {print (m >= t) ? "met" : "MISSED"}'; }

declare -A MED=()
# ratios WORKLOAD GLASGOW_CONTENDER PEER...
ratios() {
    local w=$1 g=$2 p r x vals
    shift 2
    for p in "$@"; do
        vals=()
        printf '  %-24s' "$g / $p"
        for ((r = 1; r <= ROUNDS; r++)); do
            x=$(ratio "${RPS[$w:$g:$r]}" "${RPS[$w:$p:$r]}")
            vals+=("$x")
            printf ' %7sx' "$x"
        done
        MED[$w:$g:$p]=$(median "${vals[@]}")
        printf ' %7.2fx\n' "${MED[$w:$g:$p]}"
    done
}

echo
echo "users benchmark: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency per contender (warm-up $WARMUP), $ROUNDS rounds, taking turns"
echo "pgbench: -c $CONNECTIONS -j $PGBENCH_JOBS -M prepared -T $(to_seconds "$DURATION") (p99 from a 10% sample of transactions)"
echo "host: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "PostgreSQL $PG_VERSION (fsync=off), $USERS seeded users; wrk, the servers and PostgreSQL share the same CPUs"
echo "server_us/req, pg_us/req: CPU time (user+system) of the server's processes and of all PostgreSQL processes"
echo "  during the measured run, per request: less affected than req/s by other load on the machine"
echo "workers: $WORKERS per server; database connections: glasgow and fastapi $POOL_SIZE per worker, nginx 1 per worker (blocking), pgbench $CONNECTIONS"

for w in "${WORKLOAD_LIST[@]}"; do
    echo
    if [[ $w == read ]]; then
        contenders=("${READ_CONTENDERS[@]}")
        echo "== read: GET one user by a random id (SELECT ... FROM users WHERE id = \$1)"
        echo "   glasgow-auth is the real GET /v1/users/:id: the token check (cached), then the same SELECT"
    else
        contenders=("${WRITE_CONTENDERS[@]}")
        echo "== write: POST /bench/users -> INSERT ... RETURNING (dummy password_hash: no scrypt, no auth)"
    fi
    printf '  %-13s %5s %12s %10s %8s %14s %14s\n' contender run req/s p99_ms errors server_us/req pg_us/req
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in "${contenders[@]}"; do
            printf '  %-13s %5d %12.0f %10.2f %8d %14s %14s\n' "$c" "$r" "${RPS[$w:$c:$r]}" "${P99[$w:$c:$r]}" \
                "${ERRS[$w:$c:$r]}" "${SRV_US[$w:$c:$r]}" "${PG_US[$w:$c:$r]}"
        done
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in "${contenders[@]}"; do
            if [[ ${ERRS[$w:$c:$r]} -gt 0 ]]; then
                echo "  WARNING: $c run $r had ${ERRS[$w:$c:$r]} errors: see $RUN/$w-$c-$r.txt"
            fi
        done
    done
    echo
    printf '  %-24s' ratio
    for ((r = 1; r <= ROUNDS; r++)); do printf ' %8s' "run$r"; done
    printf ' %8s\n' median
    ratios "$w" glasgow nginx fastapi pgbench
    [[ $w == read ]] && ratios "$w" glasgow-auth glasgow nginx fastapi pgbench
done

echo
echo "targets (median of glasgow's same-round ratios):"
for w in "${WORKLOAD_LIST[@]}"; do
    printf '  %-6s glasgow >= %.1fx nginx+LuaDBI   %5.2fx   %s\n' "$w" "$TARGET_NGINX" \
        "${MED[$w:glasgow:nginx]}" "$(verdict "${MED[$w:glasgow:nginx]}" "$TARGET_NGINX")"
    printf '  %-6s glasgow >= %.1fx FastAPI        %5.2fx   %s\n' "$w" "$TARGET_FASTAPI" \
        "${MED[$w:glasgow:fastapi]}" "$(verdict "${MED[$w:glasgow:fastapi]}" "$TARGET_FASTAPI")"
    if [[ $w == read ]]; then
        printf '  %-6s glasgow >= %.1fx pgbench        %5.2fx   %s\n' "$w" "$TARGET_PGBENCH" \
            "${MED[$w:glasgow:pgbench]}" "$(verdict "${MED[$w:glasgow:pgbench]}" "$TARGET_PGBENCH")"
    fi
done
if want read; then
    printf '  %-6s glasgow-auth >= %.1fx glasgow  %5.2fx   %s\n' read "$TARGET_AUTH" \
        "${MED[read:glasgow-auth:glasgow]}" "$(verdict "${MED[read:glasgow-auth:glasgow]}" "$TARGET_AUTH")"
    echo "  (the other targets use glasgow's bench route, which does the peers' work; glasgow-auth's ratios are above)"
fi
echo
echo "wrk and pgbench outputs, server logs: $RUN"
