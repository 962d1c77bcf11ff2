#!/usr/bin/env bash
# bench/files.sh - the object storage benchmark (issue 7): upload and
# download of a large file through glasgow, against the same store directly
# and against FastAPI + boto3, on the same machine in the same run, over a
# throwaway Ceph RGW (.ci/rgw, BlueStore on a file).
#
#   glasgow  PUT /bench/files/:name with body = "stream" -> s3.put(key, req);
#            GET -> s3.get(key) then obj:pipe (bench/files_glasgow.lua), no auth
#   direct   curl --aws-sigv4 straight to RGW: PUT -T with UNSIGNED-PAYLOAD,
#            GET to /dev/null (what the store itself can do over loopback)
#   fastapi  FastAPI + uvicorn + boto3 (bench/files_fastapi.py): upload_fileobj
#            from the request stream, get_object streamed back
#
# glasgow-parts is glasgow with its multipart threshold at 0, so that every
# upload goes in parts (8 MiB for SIZE_MIB up to 512: the old default), for
# uploads, to show what the multipart upload costs against glasgow's default
# (one PUT up to 5 GiB, like direct).
# Every contender downloads the same object (put directly once, at the start),
# and uploads to a key of its own. Each round takes turns: every contender's
# upload, then every contender's download. Per transfer it prints MB/s
# (10^6 bytes/s, curl's total time), the CPU seconds per GiB of the server and
# of the store's daemons and, for the servers, their peak RSS (the sum of
# VmHWM over the server's processes, each reset through /proc/PID/clear_refs
# before the transfer) and its growth over the RSS before the transfer. Then,
# each round: CONCURRENT uploads of CONCURRENT_MIB each at once through
# glasgow, with glasgow's total RSS growth, and the p99 of a paced GET /hello
# probe (bench/files_probe.py) during them, against the same probe on the
# idle server just before, and during a control: the same uploads straight
# to the store, which loads the machine alike without glasgow's own work.
# The targets are printed beside the figures; missing one does not fail.
#
# Environment overrides:
#   ROUNDS (3)  SIZE_MIB (256)  CONCURRENT (8)  CONCURRENT_MIB (64)
#   PROBE_INTERVAL_MS (10)  IDLE_PROBE_S (5)  GLASGOW_BIN (build/glasgow)
#   STARTUP_TIMEOUT (30)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-256}
CONCURRENT=${CONCURRENT:-8}
CONCURRENT_MIB=${CONCURRENT_MIB:-64}
PROBE_INTERVAL_MS=${PROBE_INTERVAL_MS:-10}
IDLE_PROBE_S=${IDLE_PROBE_S:-5}
GLASGOW_BIN=${GLASGOW_BIN:-build/glasgow}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-30}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")
CACHE=$BENCH_DIR/.cache
RUN=$CACHE/files-run
DEBS=$CACHE/files-debs
RGWDIR=$CACHE/files-rgw
PY=/usr/bin/python3
WORKERS=2
CONTENDERS=(glasgow direct fastapi)
# glasgow-parts: a second glasgow whose multipart threshold is 0, so the body
# goes in parts (uploads only: its downloads are glasgow's).
UP_CONTENDERS=(glasgow glasgow-parts direct fastapi)

# Targets printed beside the figures.
TARGET_RATIO=0.9         # glasgow MB/s over direct MB/s, each way
TARGET_GROWTH_MIB=16     # glasgow RSS growth during one transfer
TARGET_CONC_GROWTH_MIB=64 # glasgow RSS growth during the concurrent uploads, in all
TARGET_P99_FACTOR=2      # /hello p99 during the concurrent uploads over idle

log() { printf '[files.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for v in ROUNDS SIZE_MIB CONCURRENT CONCURRENT_MIB PROBE_INTERVAL_MS IDLE_PROBE_S STARTUP_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
((SIZE_MIB <= 1024 && CONCURRENT_MIB <= 1024)) || die "SIZE_MIB and CONCURRENT_MIB are at most 1024 (the route's max_body)"
((CONCURRENT <= 64)) || die "CONCURRENT is at most 64"

cd "$ROOT_DIR"
mkdir -p "$CACHE"
# A previous run killed before its clean-up may have left its store running.
[[ -d $RGWDIR ]] && { bash .ci/rgw destroy "$RGWDIR" >/dev/null 2>&1 || true; }
rm -rf "$RUN" "$RGWDIR"
mkdir -p "$RUN"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

RGW_STARTED=0
BG_PIDS=()
cleanup() {
    local name p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    BG_PIDS=()
    for name in "${!PID[@]}"; do stop "$name"; done
    if ((RGW_STARTED)); then
        cp "$RGWDIR"/log/*.log "$RUN/" 2>/dev/null || true
        bash .ci/rgw destroy "$RGWDIR" >>"$RUN/rgw.log" 2>&1 || true
        RGW_STARTED=0
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- the store
# s3 METHOD KEY [curl options]: a request signed by curl, straight to RGW. The
# keys go in through a config on stdin, never on a command line.
s3() {
    local m=$1 key=$2
    shift 2
    printf 'user = "%s:%s"\n' "$(cat "$S3_ACCESS_KEY_ID_FILE")" "$(cat "$S3_SECRET_ACCESS_KEY_FILE")" |
        curl -sS -K - --aws-sigv4 "aws:amz:$S3_REGION:s3" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
            -X "$m" "$@" "$S3_ENDPOINT/$S3_BUCKET/$key"
}

start_store() {
    local port=$1 line
    log "starting Ceph RGW on 127.0.0.1:$port ($RGWDIR, BlueStore on a file)"
    RGW_STARTED=1
    bash .ci/rgw start "$RGWDIR" "$port" >>"$RUN/rgw.log" 2>&1 ||
        { tail -n 20 "$RUN/rgw.log" >&2; die "could not start RGW (see $RUN/rgw.log)"; }
    while IFS= read -r line; do
        [[ $line == S3_*=* ]] && export "${line?}"
    done < <(bash .ci/rgw env "$RGWDIR" "$port")
    [[ -n ${S3_ENDPOINT:-} && -r ${S3_ACCESS_KEY_ID_FILE:-} ]] || die "bash .ci/rgw env gave no store settings"
}

# The store's daemons (monitor, OSD, gateway), for their CPU time.
store_pids() { cat "$RGWDIR"/run/*.pid 2>/dev/null; }
store_ticks() {
    local p s f total=0
    for p in $(store_pids); do
        { read -r s <"/proc/$p/stat"; } 2>/dev/null || continue
        s=${s##*) }
        read -r -a f <<<"$s"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
per_gib() { awk -v t="$1" -v hz="$CLK_TCK" -v b="$2" 'BEGIN {printf "%.2f", t / hz / (b / 1073741824)}'; }

# ---------------------------------------------------------------- memory
# rss_kib PID FIELD: VmRSS or VmHWM of one process, in KiB (0 if it is gone).
rss_kib() { awk -v f="$2:" '$1 == f {print $2; found = 1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }

declare -A RSS0=()
# hwm_reset NAME: remember each server process's RSS, and reset its peak to it.
hwm_reset() {
    local p
    RSS0=()
    for p in $(tree_pids "${PID[$1]}"); do
        RSS0[$p]=$(rss_kib "$p" VmRSS)
        echo 5 >"/proc/$p/clear_refs" 2>/dev/null || die "cannot reset VmHWM of pid $p (/proc/$p/clear_refs)"
    done
}

# hwm_read NAME: prints "peak_kib growth_kib": the sum of the processes' peaks
# since hwm_reset, and the sum of each one's peak minus its RSS at the reset.
hwm_read() {
    local p h peak=0 growth=0
    for p in "${!RSS0[@]}"; do
        h=$(rss_kib "$p" VmHWM)
        ((h > 0)) || continue
        peak=$((peak + h))
        growth=$((growth + h - RSS0[$p]))
    done
    echo "$peak $growth"
}

mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# ---------------------------------------------------------------- transfers
declare -A URL=()

# curl_transfer CONTENDER up|down KEY FILE OUT : prints "http_code seconds bytes".
curl_transfer() {
    local c=$1 dir=$2 key=$3 file=$4 out=$5 w
    if [[ $dir == up ]]; then
        w='%{http_code} %{time_total} %{size_upload}\n'
        if [[ $c == direct ]]; then
            s3 PUT "$key" --max-time 600 -T "$file" -o "$out" -w "$w"
        else
            curl -sS --max-time 600 -T "$file" -H 'Content-Type: application/octet-stream' \
                -o "$out" -w "$w" "${URL[$c]}/bench/files/${key#bench/}"
        fi
    else
        w='%{http_code} %{time_total} %{size_download}\n'
        if [[ $c == direct ]]; then
            s3 GET "$key" --max-time 600 -o "$out" -w "$w"
        else
            curl -sS --max-time 600 -o "$out" -w "$w" "${URL[$c]}/bench/files/${key#bench/}"
        fi
    fi
}

declare -A MBS=() PEAK=() GROWTH=() CPU=() STORE_CPU=()
# measure CONTENDER up|down ROUND
measure() {
    local c=$1 dir=$2 r=$3 key out res code secs bytes t0=0 t1=0 s0 s1 hw
    if [[ $dir == up ]]; then key=bench/up-$c; else key=bench/source; fi
    out=$RUN/$dir-$c-$r.out
    [[ $dir == down ]] && out=/dev/null
    log "round $r/$ROUNDS: $c $dir"
    if [[ $c != direct ]]; then
        hwm_reset "$c"
        t0=$(tree_ticks "${PID[$c]}")
    fi
    s0=$(store_ticks)
    res=$(curl_transfer "$c" "$dir" "$key" "$DATA" "$out") || die "$c $dir: curl failed ($res)"
    s1=$(store_ticks)
    read -r code secs bytes <<<"$res"
    [[ $code == 200 ]] || die "$c $dir answered HTTP $code: $(head -c 300 "$out" 2>/dev/null)"
    ((bytes == SIZE)) || die "$c $dir moved $bytes bytes, want $SIZE"
    MBS[$c:$dir:$r]=$(awk -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.1f", b / s / 1e6}')
    if [[ $c != direct ]]; then
        t1=$(tree_ticks "${PID[$c]}")
        read -r "PEAK[$c:$dir:$r]" "GROWTH[$c:$dir:$r]" <<<"$(hwm_read "$c")"
        CPU[$c:$dir:$r]=$(per_gib $((t1 - t0)) "$bytes")
    else
        PEAK[$c:$dir:$r]=-
        GROWTH[$c:$dir:$r]=-
        CPU[$c:$dir:$r]=-
    fi
    STORE_CPU[$c:$dir:$r]=$(per_gib $((s1 - s0)) "$bytes")
    hw=${PEAK[$c:$dir:$r]}
    log "  ${MBS[$c:$dir:$r]} MB/s, peak RSS ${hw} KiB"
}

# verify CONTENDER: a small upload and the big download must come back intact.
verify() {
    local c=$1 res code sum
    res=$(curl_transfer "$c" up "bench/check-$c" "$RUN/small" "$RUN/check-$c.out") || die "$c: check upload failed"
    read -r code _ _ <<<"$res"
    [[ $code == 200 ]] || die "$c: check upload answered HTTP $code: $(head -c 300 "$RUN/check-$c.out")"
    sum=$(s3 GET "bench/check-$c" --fail -o - | sha256sum) || die "$c: cannot read back bench/check-$c"
    [[ ${sum%% *} == "$SMALL_SUM" ]] || die "$c: the uploaded object differs from what was sent"
    res=$(curl_transfer "$c" down bench/source "" "$RUN/verify.bin") || die "$c: check download failed"
    read -r code _ _ <<<"$res"
    [[ $code == 200 ]] || die "$c: check download answered HTTP $code"
    sum=$(sha256sum "$RUN/verify.bin")
    rm -f "$RUN/verify.bin"
    [[ ${sum%% *} == "$DATA_SUM" ]] || die "$c: the downloaded object differs from the source"
    log "$c: upload and download checked (SHA-256)"
}

# probe SECONDS OUTFILE: the paced /hello probe in the background; its pid in PROBE_PID.
probe() {
    "$PY" "$BENCH_DIR/files_probe.py" 127.0.0.1 "${PORT[glasgow]}" "$PROBE_INTERVAL_MS" "$1" >"$2" 2>&1 &
    PROBE_PID=$!
    BG_PIDS+=("$PROBE_PID")
}

# burst CONTENDER TAG ROUND: CONCURRENT uploads of CONCURRENT_MIB at once
# through CONTENDER (glasgow or direct) while the probe runs against glasgow.
# Sets BURST_MBS (their total rate), BURST_P99 and BURST_N (the probe's p99
# and sample count); for glasgow, BURST_PEAK and BURST_GROWTH (its memory).
burst() {
    local c=$1 tag=$2 r=$3 i pids=() start secs res code n p99 errs
    [[ $c == glasgow ]] && hwm_reset glasgow
    probe 600 "$RUN/probe-$tag-$r.txt"
    start=$(date +%s.%N)
    for ((i = 1; i <= CONCURRENT; i++)); do
        curl_transfer "$c" up "bench/$tag-$i" "$CDATA" "$RUN/$tag-$r-$i.out" >"$RUN/$tag-$r-$i.res" &
        pids+=("$!")
        BG_PIDS+=("$!")
    done
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || die "$tag upload $((i + 1)) failed"; done
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {print e - s}')
    [[ $c == glasgow ]] && read -r BURST_PEAK BURST_GROWTH <<<"$(hwm_read glasgow)"
    kill -TERM "$PROBE_PID"
    wait "$PROBE_PID" || die "the probe failed: $(cat "$RUN/probe-$tag-$r.txt")"
    BG_PIDS=()
    for ((i = 1; i <= CONCURRENT; i++)); do
        read -r code _ res <"$RUN/$tag-$r-$i.res"
        [[ $code == 200 && $res == "$CSIZE" ]] ||
            die "$tag upload $i: HTTP $code, $res bytes: $(head -c 300 "$RUN/$tag-$r-$i.out")"
    done
    read -r n _ p99 _ errs <"$RUN/probe-$tag-$r.txt"
    ((errs == 0 && n > 0)) || die "the probe during the $tag uploads had $errs errors and $n answers"
    BURST_P99=$p99
    BURST_N=$n
    BURST_MBS=$(awk -v b=$((CSIZE * CONCURRENT)) -v s="$secs" 'BEGIN {printf "%.1f", b / s / 1e6}')
}

declare -A CONC_MBS=() CONC_PEAK=() CONC_GROWTH=() IDLE_P99=() BUSY_P99=() IDLE_N=() BUSY_N=()
declare -A CTRL_MBS=() CTRL_P99=() CTRL_N=()
BURST_MBS=0 BURST_P99=0 BURST_N=0 BURST_PEAK=0 BURST_GROWTH=0
# concurrent ROUND: the probe on the idle glasgow, then during the uploads
# through glasgow, then during the control: the same uploads straight to the
# store, glasgow idle but probed, so the machine is about as loaded minus
# glasgow's own work.
concurrent() {
    local r=$1 n p99 errs
    log "round $r/$ROUNDS: /hello probe on the idle server (${IDLE_PROBE_S}s)"
    probe "$IDLE_PROBE_S" "$RUN/probe-idle-$r.txt"
    wait "$PROBE_PID" || die "the idle probe failed: $(cat "$RUN/probe-idle-$r.txt")"
    BG_PIDS=()
    read -r n _ p99 _ errs <"$RUN/probe-idle-$r.txt"
    ((errs == 0 && n > 0)) || die "the idle probe had $errs errors and $n answers"
    IDLE_P99[$r]=$p99
    IDLE_N[$r]=$n
    log "round $r/$ROUNDS: $CONCURRENT concurrent uploads of $CONCURRENT_MIB MiB through glasgow"
    burst glasgow conc "$r"
    CONC_MBS[$r]=$BURST_MBS BUSY_P99[$r]=$BURST_P99 BUSY_N[$r]=$BURST_N
    CONC_PEAK[$r]=$BURST_PEAK CONC_GROWTH[$r]=$BURST_GROWTH
    log "round $r/$ROUNDS: control: the same uploads straight to the store"
    burst direct ctrl "$r"
    CTRL_MBS[$r]=$BURST_MBS CTRL_P99[$r]=$BURST_P99 CTRL_N[$r]=$BURST_N
}

# ---------------------------------------------------------------- main
ensure_pkgs curl python3-fastapi python3-uvicorn python3-boto3
command -v radosgw >/dev/null || die "radosgw is missing: run .ci/deps (it installs Ceph's packages)"
if [[ ! -x $GLASGOW_BIN ]]; then
    [[ -f Makefile ]] || die "$GLASGOW_BIN is missing and there is no Makefile to build it"
    log "building glasgow (make)"
    make >"$RUN/make.log" 2>&1 || { tail -n 30 "$RUN/make.log" >&2; die "make failed"; }
    [[ -x $GLASGOW_BIN ]] || die "make did not produce $GLASGOW_BIN"
fi
[[ -f routes/hello.lua ]] || die "routes/hello.lua is missing in $ROOT_DIR"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
SIZE=$((SIZE_MIB * 1048576))
CSIZE=$((CONCURRENT_MIB * 1048576))
DATA=$RUN/data-$SIZE_MIB
CDATA=$RUN/data-$CONCURRENT_MIB
log "writing $SIZE_MIB MiB and $CONCURRENT_MIB MiB of random test data"
head -c "$SIZE" /dev/urandom >"$DATA"
head -c "$CSIZE" /dev/urandom >"$CDATA"
head -c 300000 /dev/urandom >"$RUN/small"
DATA_SUM=$(sha256sum "$DATA")
DATA_SUM=${DATA_SUM%% *}
SMALL_SUM=$(sha256sum "$RUN/small")
SMALL_SUM=${SMALL_SUM%% *}

pick_ports 6
declare -A PORT=([glasgow]=${PORTS[1]} [fastapi]=${PORTS[3]} [glasgow-parts]=${PORTS[4]})
declare -A ADMIN_PORT=([glasgow]=${PORTS[2]} [glasgow-parts]=${PORTS[5]})
for c in glasgow glasgow-parts fastapi; do URL[$c]=http://127.0.0.1:${PORT[$c]}; done
start_store "${PORTS[0]}"

log "putting the $SIZE_MIB MiB source object into the store directly"
res=$(s3 PUT bench/source -T "$DATA" -o "$RUN/source.out" -w '%{http_code}') || die "direct PUT failed"
[[ $res == 200 ]] || die "direct PUT of the source answered HTTP $res: $(head -c 300 "$RUN/source.out")"

# glasgow serves the repo's routes (for /hello) plus the bench routes, from a private copy.
mkdir -p "$RUN/routes"
cp routes/*.lua "$RUN/routes/"
cp "$BENCH_DIR/files_glasgow.lua" "$RUN/routes/bench_files.lua"
for c in glasgow glasgow-parts; do
    knobs=() # the defaults
    [[ $c == glasgow-parts ]] && knobs=(GLASGOW_S3_MULTIPART_THRESHOLD=0 GLASGOW_S3_PART_SIZE=8m)
    start "$c" env "${knobs[@]}" GLASGOW_LISTEN="127.0.0.1:${PORT[$c]}" \
        GLASGOW_ADMIN_LISTEN="127.0.0.1:${ADMIN_PORT[$c]}" GLASGOW_WORKERS=$WORKERS \
        GLASGOW_ROUTES_DIR="$RUN/routes" GLASGOW_ACCESS_LOG=false \
        "$GLASGOW_BIN" serve
    wait_ready "$c" "${URL[$c]}/hello"
done

start fastapi "$PY" -m uvicorn --app-dir "$BENCH_DIR" files_fastapi:app \
    --host 127.0.0.1 --port "${PORT[fastapi]}" --workers "$WORKERS" \
    --log-level warning --no-access-log
wait_ready fastapi "${URL[fastapi]}/docs"

for c in "${UP_CONTENDERS[@]}"; do verify "$c"; done

for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${UP_CONTENDERS[@]}"; do measure "$c" up "$r"; done
    for c in "${CONTENDERS[@]}"; do measure "$c" down "$r"; done
    concurrent "$r"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
cleanup

# ---------------------------------------------------------------- report
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
at_least() { awk -v m="$1" -v t="$2" 'BEGIN {print (m >= t) ? "met" : "MISSED"}'; }
at_most() { awk -v m="$1" -v t="$2" 'BEGIN {print (m <= t) ? "met" : "MISSED"}'; }

echo
echo "files benchmark: $SIZE_MIB MiB up and down per contender, $ROUNDS rounds, taking turns"
echo "host: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "load average (1, 5, 15 min): $LOAD_BEFORE before, $LOAD_AFTER after; curl, the servers and RGW share the CPUs"
echo "store: Ceph RGW $(radosgw --version 2>/dev/null | awk '{print $3; exit}') on a BlueStore file, one OSD; every download reads the same object"
echo "MB/s = 10^6 bytes/s over curl's total time; peak = sum of VmHWM over the server's processes"
echo "  (reset before each transfer), growth = peak minus the RSS before; cpu = CPU seconds per GiB moved,"
echo "  of the server's processes and of the store's three daemons"
echo "glasgow: $WORKERS workers, the S3 defaults (a known length up to 5 GiB goes as one PUT, like direct);"
echo "  glasgow-parts: the same with the multipart threshold at 0 (parts of 8 MiB or len/64, one at a time); fastapi: $WORKERS"
echo "  uvicorn workers, boto3 multipart above 64 MiB in 8 MiB parts, 2 in flight; direct: one PUT, UNSIGNED-PAYLOAD"

declare -A MED=()
for dir in up down; do
    echo
    if [[ $dir == up ]]; then
        echo "== upload ($SIZE_MIB MiB PUT)"
        list=("${UP_CONTENDERS[@]}")
        pairs=(glasgow/direct direct/glasgow glasgow-parts/direct glasgow/glasgow-parts glasgow/fastapi)
    else
        echo "== download ($SIZE_MIB MiB GET)"
        list=("${CONTENDERS[@]}")
        pairs=(glasgow/direct direct/glasgow glasgow/fastapi)
    fi
    printf '  %-13s %4s %8s %10s %11s %11s %10s\n' contender run MB/s peak_MiB growth_MiB cpu_server cpu_store
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in "${list[@]}"; do
            if [[ $c == direct ]]; then
                printf '  %-13s %4d %8s %10s %11s %11s %10s\n' "$c" "$r" "${MBS[$c:$dir:$r]}" - - - \
                    "${STORE_CPU[$c:$dir:$r]}"
            else
                printf '  %-13s %4d %8s %10s %11s %11s %10s\n' "$c" "$r" "${MBS[$c:$dir:$r]}" \
                    "$(mib "${PEAK[$c:$dir:$r]}")" "$(mib "${GROWTH[$c:$dir:$r]}")" "${CPU[$c:$dir:$r]}" \
                    "${STORE_CPU[$c:$dir:$r]}"
            fi
        done
    done
    printf '  %-20s' ratio
    for ((r = 1; r <= ROUNDS; r++)); do printf ' %7s' "run$r"; done
    printf ' %7s\n' median
    for pair in "${pairs[@]}"; do
        vals=()
        printf '  %-20s' "$pair"
        for ((r = 1; r <= ROUNDS; r++)); do
            x=$(ratio "${MBS[${pair%/*}:$dir:$r]}" "${MBS[${pair#*/}:$dir:$r]}")
            vals+=("$x")
            printf ' %6sx' "$x"
        done
        m=$(median "${vals[@]}")
        MED[$dir:$pair]=$m
        printf ' %6.2fx\n' "$m"
    done
done

echo
echo "== $CONCURRENT concurrent uploads of $CONCURRENT_MIB MiB through glasgow, /hello probed every ${PROBE_INTERVAL_MS} ms"
echo "   control: the same uploads straight to the store while glasgow's /hello is probed"
printf '  %4s %10s %9s %11s %11s %11s %9s %10s %11s\n' run total_MB/s peak_MiB growth_MiB idle_p99 busy_p99 busy/idle ctrl_MB/s ctrl_p99
worst_growth=0
p99_ratios=()
for ((r = 1; r <= ROUNDS; r++)); do
    x=$(ratio "${BUSY_P99[$r]}" "${IDLE_P99[$r]}")
    p99_ratios+=("$x")
    ((CONC_GROWTH[$r] > worst_growth)) && worst_growth=${CONC_GROWTH[$r]}
    printf '  %4d %10s %9s %11s %11s %11s %8sx %10s %11s\n' "$r" "${CONC_MBS[$r]}" "$(mib "${CONC_PEAK[$r]}")" \
        "$(mib "${CONC_GROWTH[$r]}")" "${IDLE_P99[$r]}ms" "${BUSY_P99[$r]}ms" "$x" "${CTRL_MBS[$r]}" "${CTRL_P99[$r]}ms"
done
echo "  probe samples per run (idle, busy, control):$(for ((r = 1; r <= ROUNDS; r++)); do printf ' %s/%s/%s' "${IDLE_N[$r]}" "${BUSY_N[$r]}" "${CTRL_N[$r]}"; done)"

worst_single=0
for k in "${!GROWTH[@]}"; do
    [[ $k == glasgow* ]] || continue
    ((GROWTH[$k] > worst_single)) && worst_single=${GROWTH[$k]}
done
p99_med=$(median "${p99_ratios[@]}")

echo
echo "targets:"
printf '  glasgow >= %.1fx direct, upload (median)     %5.2fx   %s\n' "$TARGET_RATIO" "${MED[up:glasgow/direct]}" \
    "$(at_least "${MED[up:glasgow/direct]}" "$TARGET_RATIO")"
printf '  glasgow >= %.1fx direct, download (median)   %5.2fx   %s\n' "$TARGET_RATIO" "${MED[down:glasgow/direct]}" \
    "$(at_least "${MED[down:glasgow/direct]}" "$TARGET_RATIO")"
printf '  RSS growth <= %d MiB per transfer (worst)    %5s MiB   %s\n' "$TARGET_GROWTH_MIB" "$(mib "$worst_single")" \
    "$(at_most "$worst_single" $((TARGET_GROWTH_MIB * 1024)))"
printf '  %dx%d MiB growth <= %d MiB in all (worst)     %5s MiB   %s\n' "$CONCURRENT" "$CONCURRENT_MIB" \
    "$TARGET_CONC_GROWTH_MIB" "$(mib "$worst_growth")" "$(at_most "$worst_growth" $((TARGET_CONC_GROWTH_MIB * 1024)))"
printf '  /hello p99 busy <= %dx idle (median)          %5.2fx   %s\n' "$TARGET_P99_FACTOR" "$p99_med" \
    "$(at_most "$p99_med" "$TARGET_P99_FACTOR")"
ctrl_ratios=()
for ((r = 1; r <= ROUNDS; r++)); do ctrl_ratios+=("$(ratio "${CTRL_P99[$r]}" "${IDLE_P99[$r]}")"); done
printf '  (the control, same load straight to the store:  %5.2fx idle)\n' "$(median "${ctrl_ratios[@]}")"
echo
echo "outputs and logs: $RUN"
