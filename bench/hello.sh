#!/usr/bin/env bash
# bench/hello.sh - GET /hello on glasgow against two peers, same machine, same run:
#   glasgow   build/glasgow serve, 2 workers, routes/ from the repo
#   nginx     Debian nginx + lua-nginx-module, cjson.encode{message="hello"},
#             run from a private root extracted under bench/.cache (the
#             system's packages are not touched)
#   fastapi   Debian python3-fastapi + python3-uvicorn, 2 workers
# Each server is loaded with wrk in turn (glasgow, nginx, fastapi, repeated
# ROUNDS times), after a short warm-up. Prints req/s, p99, glasgow's ratio to
# each peer per round and the median, and glasgow's idle and peak RSS.
#
# Environment overrides:
#   DURATION (10s)  CONNECTIONS (64)  THREADS (2)  ROUNDS (2)  WARMUP (2s)
#   SERVERS ("glasgow nginx fastapi")  GLASGOW_BIN (build/glasgow)
#   GLASGOW_ACCESS_LOG (false, like the nginx config)
#   STARTUP_TIMEOUT (20, seconds per server)
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-2s}
SERVERS=${SERVERS:-glasgow nginx fastapi}
GLASGOW_BIN=${GLASGOW_BIN:-build/glasgow}
# nginx runs with access_log off; glasgow does the same unless asked
GLASGOW_ACCESS_LOG=${GLASGOW_ACCESS_LOG:-false}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-20}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")
CACHE=$BENCH_DIR/.cache
NGX_ROOT=$CACHE/nginx-root
RUN=$CACHE/run
PY=/usr/bin/python3
EXPECTED='{"message":"hello"}'
WORKERS=2

# Targets printed beside the figures.
TARGET_NGINX_RATIO=1.0
TARGET_IDLE_RSS_MIB=20

# Packages extracted into the private nginx root (never installed).
NGX_PKGS=(nginx nginx-common libnginx-mod-http-ndk libnginx-mod-http-lua
          lua-resty-core lua-resty-lrucache lua-cjson)

log() { printf '[hello.sh] %s\n' "$*" >&2; }
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
for v in CONNECTIONS THREADS ROUNDS STARTUP_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
valid_duration "$DURATION" || die "DURATION must look like 10s, 1m (got '$DURATION')"
valid_duration "$WARMUP" || die "WARMUP must look like 2s (got '$WARMUP')"
((THREADS <= CONNECTIONS)) || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"
read -r -a SERVER_LIST <<<"$SERVERS"
((${#SERVER_LIST[@]} > 0)) || die "SERVERS is empty"
for s in "${SERVER_LIST[@]}"; do
    case $s in glasgow | nginx | fastapi) ;; *) die "unknown server '$s' in SERVERS" ;; esac
done
want() { [[ " $SERVERS " == *" $1 "* ]]; }

cd "$ROOT_DIR"
mkdir -p "$CACHE"
rm -rf "$RUN"
mkdir -p "$RUN"

DEBS=$CACHE/debs
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

# Shared libraries that nginx or its Lua modules cannot resolve.
ngx_missing_libs() {
    local f
    for f in "$NGX_ROOT"/usr/sbin/nginx "$NGX_ROOT"/usr/lib/nginx/modules/*.so; do
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
        *) return 1 ;;
    esac
}

setup_nginx_root() {
    local stamp=$NGX_ROOT/.complete deb lib pkg pkgs=() missing
    if [[ ! -f $stamp ]]; then
        log "extracting nginx + lua module into $NGX_ROOT (no system install)"
        rm -rf "$NGX_ROOT" "$DEBS"
        mkdir -p "$NGX_ROOT"
        apt_download "${NGX_PKGS[@]}"
        for deb in "$CACHE"/debs/*.deb; do dpkg -x "$deb" "$NGX_ROOT"; done
        # Libraries the binary needs but the system lacks go into the private root too.
        missing=$(ngx_missing_libs)
        if [[ -n $missing ]]; then
            for lib in $missing; do
                pkg=$(lib_package "$lib") || die "nginx needs $lib and no package is known for it"
                pkgs+=("$pkg")
            done
            log "extracting libraries: ${pkgs[*]}"
            apt_download "${pkgs[@]}"
            for deb in "$CACHE"/debs/*.deb; do dpkg -x "$deb" "$NGX_ROOT"; done
        fi
        (cd "$DEBS" && ls -- *.deb) >"$stamp"
    fi
    missing=$(ngx_missing_libs)
    [[ -z $missing ]] || die "nginx libraries unresolved: $missing"
}

write_nginx_conf() {
    local port=$1 dir=$RUN/nginx cjson_dir sys_cjson_dir
    cjson_dir=$(find "$NGX_ROOT/usr/lib" -path '*/lua/5.1/cjson.so' -printf '%h\n' -quit)
    [[ -n $cjson_dir ]] || die "cjson.so not found in $NGX_ROOT"
    sys_cjson_dir=${cjson_dir#"$NGX_ROOT"}
    mkdir -p "$dir/tmp" "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
# Generated by bench/hello.sh
load_module $NGX_ROOT/usr/lib/nginx/modules/ndk_http_module.so;
load_module $NGX_ROOT/usr/lib/nginx/modules/ngx_http_lua_module.so;

worker_processes $WORKERS;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    # Keep wrk's connections open (glasgow and uvicorn do not cap requests
    # per connection; nginx's default is 1000).
    keepalive_requests 1000000;

    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    lua_package_path "$NGX_ROOT/usr/share/lua/5.1/?.lua;$NGX_ROOT/usr/share/lua/5.1/?/init.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;";
    lua_package_cpath "$cjson_dir/?.so;$sys_cjson_dir/?.so;;";

    init_by_lua_block {
        require "cjson"
    }

    server {
        listen 127.0.0.1:$port;
        server_name localhost;

        location = /hello {
            default_type application/json;
            content_by_lua_block {
                local cjson = require "cjson"
                ngx.print(cjson.encode{message = "hello"})
            }
        }
    }
}
EOF
}


WRK_PID=
cleanup() {
    local name
    if [[ -n $WRK_PID ]]; then
        kill -TERM "$WRK_PID" 2>/dev/null || true
        wait "$WRK_PID" 2>/dev/null || true
        WRK_PID=
    fi
    for name in "${!PID[@]}"; do stop "$name"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

verify() {
    local name=$1 url=$2 out code ctype body
    out=$(curl -sS --max-time 2 -o "$RUN/$name.body" -w '%{http_code} %{content_type}' "$url") ||
        die "$name: request to $url failed"
    code=${out%% *}
    ctype=${out#* }
    body=$(tr -d ' \t\r\n' <"$RUN/$name.body")
    [[ $code == 200 ]] || die "$name: GET /hello answered HTTP $code"
    [[ $ctype == application/json* ]] || die "$name: Content-Type is '$ctype', want application/json"
    [[ $body == "$EXPECTED" ]] || die "$name: body is '$body', want '$EXPECTED'"
    log "$name answers $url: 200, $ctype, $body"
}

# ---------------------------------------------------------------- memory
# Sum of a /proc/PID/status field (kB) over the given PIDs.
status_sum() {
    local field=$1 p total=0 v
    shift
    for p in "$@"; do
        v=$(awk -v k="$field:" '$1 == k {print $2}' "/proc/$p/status" 2>/dev/null) || v=
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

pss_sum() {
    local p total=0 v
    for p in "$@"; do
        v=$(awk '$1 == "Pss:" {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || v=
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

declare -A IDLE_RSS=() IDLE_PSS=() NPROC=() PEAK_HWM=() MAIN_RSS=() MAIN_HWM=()

measure_idle() {
    local name=$1 pids
    mapfile -t pids < <(tree_pids "${PID[$name]}")
    NPROC[$name]=${#pids[@]}
    MAIN_RSS[$name]=$(status_sum VmRSS "${PID[$name]}")
    IDLE_RSS[$name]=$(status_sum VmRSS "${pids[@]}")
    IDLE_PSS[$name]=$(pss_sum "${pids[@]}")
}

measure_peak() {
    local name=$1 pids
    mapfile -t pids < <(tree_pids "${PID[$name]}")
    MAIN_HWM[$name]=$(status_sum VmHWM "${PID[$name]}")
    PEAK_HWM[$name]=$(status_sum VmHWM "${pids[@]}")
}

# ---------------------------------------------------------------- load
# wrk NAME URL DURATION OUTFILE
run_wrk() {
    local limit
    limit=$(($(to_seconds "$3") + 30))
    # In the background so that a signal to this script is handled at once.
    timeout --signal=INT --kill-after=5 "$limit" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$3" --latency "$2" >"$4" 2>&1 &
    WRK_PID=$!
    if ! wait "$WRK_PID"; then
        WRK_PID=
        cat "$4" >&2
        die "wrk against $1 failed"
    fi
    WRK_PID=
}

# Prints "req/s p99_ms errors" from wrk's output.
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
        /Non-2xx or 3xx responses:/ { err += $NF }
        /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
        END {
            if (rps == "" || p99 == "") exit 1
            printf "%s %.3f %d\n", rps, p99, err
        }' "$1"
}

# ---------------------------------------------------------------- main
ensure_pkgs wrk curl
want fastapi && ensure_pkgs python3-fastapi python3-uvicorn
want nginx && setup_nginx_root

if want glasgow; then
    if [[ ! -x $GLASGOW_BIN ]]; then
        [[ -f Makefile ]] || die "$GLASGOW_BIN is missing and there is no Makefile to build it"
        log "building glasgow (make)"
        make >"$RUN/make.log" 2>&1 || { tail -n 30 "$RUN/make.log" >&2; die "make failed"; }
        [[ -x $GLASGOW_BIN ]] || die "make did not produce $GLASGOW_BIN"
    fi
    [[ -d routes ]] || die "routes/ is missing in $ROOT_DIR"
fi

pick_ports 4
declare -A PORT=([glasgow]=${PORTS[0]} [nginx]=${PORTS[2]} [fastapi]=${PORTS[3]})
ADMIN_PORT=${PORTS[1]}
declare -A URL=()
for s in "${SERVER_LIST[@]}"; do URL[$s]=http://127.0.0.1:${PORT[$s]}/hello; done

if want glasgow; then
    start glasgow env GLASGOW_LISTEN="127.0.0.1:${PORT[glasgow]}" \
        GLASGOW_ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" GLASGOW_WORKERS=$WORKERS \
        GLASGOW_ROUTES_DIR=routes GLASGOW_ACCESS_LOG="$GLASGOW_ACCESS_LOG" "$GLASGOW_BIN" serve
    wait_ready glasgow "${URL[glasgow]}"
    verify glasgow "${URL[glasgow]}"
fi

if want nginx; then
    write_nginx_conf "${PORT[nginx]}"
    NGX_CMD=(env "LD_LIBRARY_PATH=$(ngx_libdirs)" "$NGX_ROOT/usr/sbin/nginx"
        -p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" -e "$RUN/nginx/logs/error.log")
    "${NGX_CMD[@]}" -t -q >"$RUN/nginx-test.log" 2>&1 ||
        { cat "$RUN/nginx-test.log" >&2; die "nginx rejected $RUN/nginx/nginx.conf"; }
    start nginx "${NGX_CMD[@]}"
    wait_ready nginx "${URL[nginx]}"
    verify nginx "${URL[nginx]}"
fi

if want fastapi; then
    start fastapi "$PY" -m uvicorn --app-dir "$BENCH_DIR" fastapi_hello:app \
        --host 127.0.0.1 --port "${PORT[fastapi]}" --workers "$WORKERS" \
        --log-level warning --no-access-log
    wait_ready fastapi "${URL[fastapi]}"
    verify fastapi "${URL[fastapi]}"
fi

# Let worker processes finish starting before taking the idle figures.
sleep 1
for s in "${SERVER_LIST[@]}"; do measure_idle "$s"; done

declare -A RPS=() P99=() ERRS=() CPU_US=() CS_K=()
for ((r = 1; r <= ROUNDS; r++)); do
    for s in "${SERVER_LIST[@]}"; do
        log "round $r/$ROUNDS: $s (warm-up $WARMUP, then $DURATION)"
        run_wrk "$s" "${URL[$s]}" "$WARMUP" "$RUN/wrk-$s-warmup-$r.txt"
        t0=$(tree_ticks "${PID[$s]}")
        c0=$(tree_switches "${PID[$s]}")
        run_wrk "$s" "${URL[$s]}" "$DURATION" "$RUN/wrk-$s-$r.txt"
        t1=$(tree_ticks "${PID[$s]}")
        c1=$(tree_switches "${PID[$s]}")
        read -r rps p99 errs < <(parse_wrk "$RUN/wrk-$s-$r.txt") ||
            die "could not parse $RUN/wrk-$s-$r.txt"
        RPS[$s:$r]=$rps
        P99[$s:$r]=$p99
        ERRS[$s:$r]=$errs
        nreq=$(awk '/requests in/ {print $1}' "$RUN/wrk-$s-$r.txt")
        CPU_US[$s:$r]=$(us_per $((t1 - t0)) "${nreq:-0}")
        CS_K[$s:$r]=$(awk -v c=$((c1 - c0)) -v n="${nreq:-0}" 'BEGIN {printf "%.0f", (n > 0) ? c * 1000 / n : 0}')
    done
done
for s in "${SERVER_LIST[@]}"; do measure_peak "$s"; done
cleanup

# ---------------------------------------------------------------- report
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }

echo
echo "GET /hello  wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency  (warm-up $WARMUP, $ROUNDS rounds)"
echo "host: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "workers: $WORKERS per server; wrk shares the same CPUs"
echo
printf '%-8s %5s %12s %10s %8s %12s %10s\n' server run req/s p99_ms errors cpu_us/req cs/kreq
for ((r = 1; r <= ROUNDS; r++)); do
    for s in "${SERVER_LIST[@]}"; do
        printf '%-8s %5d %12.0f %10.2f %8d %12s %10s\n' "$s" "$r" "${RPS[$s:$r]}" "${P99[$s:$r]}" \
            "${ERRS[$s:$r]}" "${CPU_US[$s:$r]}" "${CS_K[$s:$r]}"
    done
done
echo "(cpu_us/req: user+system CPU of the server's processes per request; steadier than req/s)"
echo "(cs/kreq: the server threads' context switches per 1000 requests: a server that"
echo " costs more CPU per request than wrk is preempted by it on most replies, and the"
echo " switches cost both of them CPU)"

for s in "${SERVER_LIST[@]}"; do
    for ((r = 1; r <= ROUNDS; r++)); do
        if [[ ${ERRS[$s:$r]} -gt 0 ]]; then
            echo "WARNING: $s run $r had ${ERRS[$s:$r]} errors (non-2xx or socket errors): see $RUN/wrk-$s-$r.txt"
        fi
    done
done

if want glasgow; then
    peers=()
    for s in nginx fastapi; do want "$s" && peers+=("$s"); done
    if ((${#peers[@]} > 0)); then
        echo
        # req/s: higher is better for glasgow; CPU per request: lower is
        printf '%-8s' "run"
        for p in "${peers[@]}"; do printf ' %16s %16s' "req/s g/$p" "cpu/req g/$p"; done
        echo
        declare -A RATIOS=() CPU_RATIOS=()
        for ((r = 1; r <= ROUNDS; r++)); do
            printf '%-8d' "$r"
            for p in "${peers[@]}"; do
                x=$(ratio "${RPS[glasgow:$r]}" "${RPS[$p:$r]}")
                c=$(ratio "${CPU_US[glasgow:$r]}" "${CPU_US[$p:$r]}")
                RATIOS[$p]="${RATIOS[$p]:-} $x"
                CPU_RATIOS[$p]="${CPU_RATIOS[$p]:-} $c"
                printf ' %15sx %15sx' "$x" "$c"
            done
            echo
        done
        printf '%-8s' median
        declare -A MED=() CPU_MED=()
        for p in "${peers[@]}"; do
            read -r -a vals <<<"${RATIOS[$p]}"
            MED[$p]=$(median "${vals[@]}")
            read -r -a vals <<<"${CPU_RATIOS[$p]}"
            CPU_MED[$p]=$(median "${vals[@]}")
            printf ' %15.2fx %15.2fx' "${MED[$p]}" "${CPU_MED[$p]}"
        done
        echo
    fi
fi

echo
printf '%-8s %6s %14s %14s %16s\n' server procs idle_RSS_MiB idle_PSS_MiB peak_HWM_MiB
for s in "${SERVER_LIST[@]}"; do
    printf '%-8s %6d %14s %14s %16s\n' "$s" "${NPROC[$s]}" "$(mib "${IDLE_RSS[$s]}")" \
        "$(mib "${IDLE_PSS[$s]}")" "$(mib "${PEAK_HWM[$s]}")"
done
echo "(RSS and HWM are summed over the server's process tree; PSS splits shared pages)"

echo
echo "targets:"
if want glasgow; then
    if want nginx; then
        verdict=$(awk -v m="${MED[nginx]}" -v t="$TARGET_NGINX_RATIO" 'BEGIN {print (m >= t) ? "met" : "MISSED"}')
        printf '  glasgow req/s >= %.1fx nginx+Lua    median %.2fx   %s\n' "$TARGET_NGINX_RATIO" "${MED[nginx]}" "$verdict"
        verdict=$(awk -v m="${CPU_MED[nginx]}" 'BEGIN {print (m <= 1.0) ? "met" : "MISSED"}')
        printf '  glasgow CPU/request <= 1.0x nginx+Lua   median %.2fx   %s\n' "${CPU_MED[nginx]}" "$verdict"
    fi
    # One process: its VmRSS. Several (forked workers): the sum over the tree,
    # which over-counts shared pages, so the main process and PSS are shown too.
    idle=$(mib "${IDLE_RSS[glasgow]}")
    verdict=$(awk -v m="$idle" -v t="$TARGET_IDLE_RSS_MIB" 'BEGIN {print (m < t) ? "met" : "MISSED"}')
    if ((NPROC[glasgow] == 1)); then
        how="VmRSS"
        peak_how="VmHWM"
    else
        how="VmRSS summed over ${NPROC[glasgow]} processes; main $(mib "${MAIN_RSS[glasgow]}"), PSS total $(mib "${IDLE_PSS[glasgow]}")"
        peak_how="VmHWM summed over ${NPROC[glasgow]} processes; main $(mib "${MAIN_HWM[glasgow]}")"
    fi
    printf '  glasgow idle RSS < %d MiB          %s MiB (%s)   %s\n' "$TARGET_IDLE_RSS_MIB" "$idle" "$how" "$verdict"
    printf '  glasgow peak RSS under load         %s MiB (%s)\n' "$(mib "${PEAK_HWM[glasgow]}")" "$peak_how"
else
    echo "  (glasgow not in SERVERS: no targets to check)"
fi
echo
echo "wrk outputs and server logs: $RUN"
