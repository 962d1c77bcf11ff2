# shellcheck shell=bash
# bench/lib.sh - helpers shared by the benchmark scripts (sourced, not run).
# The caller defines log and die, and sets RUN (its run directory) and DEBS
# (where downloaded .debs go) before calling these. Servers started with
# start NAME CMD... run in their own process group; stop NAME ends it whole.

# ---------------------------------------------------------------- packages
APT_UPDATED=0
apt_update_once() {
    if ((APT_UPDATED == 0)); then
        log "apt-get update"
        apt-get update -qq >>"$RUN/apt.log" 2>&1 || die "apt-get update failed (see $RUN/apt.log)"
        APT_UPDATED=1
    fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# Install Debian packages that are missing (only ones that conflict with nothing).
ensure_pkgs() {
    local p missing=()
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    ((${#missing[@]} > 0)) || return 0
    ((EUID == 0)) || die "missing packages (${missing[*]}); run as root or install them"
    log "apt-get install ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$RUN/apt.log" 2>&1; then
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$RUN/apt.log" 2>&1 ||
            die "apt-get install ${missing[*]} failed (see $RUN/apt.log)"
    fi
}

# Download .debs into $DEBS without installing them.
apt_download() {
    local opts=()
    # As root apt drops to the _apt user, which may not be able to write here.
    ((EUID == 0)) && opts=(-o APT::Sandbox::User=root)
    mkdir -p "$DEBS"
    if ! (cd "$DEBS" && apt-get "${opts[@]}" download "$@") >>"$RUN/apt.log" 2>&1; then
        apt_update_once
        (cd "$DEBS" && apt-get "${opts[@]}" download "$@") >>"$RUN/apt.log" 2>&1 ||
            die "apt-get download $* failed (see $RUN/apt.log)"
    fi
}

# ---------------------------------------------------------------- ports
port_in_use() {
    local hex f files=()
    hex=$(printf ':%04X' "$1")
    for f in /proc/net/tcp /proc/net/tcp6; do [[ -r $f ]] && files+=("$f"); done
    awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h {found = 1} END {exit !found}' "${files[@]}"
}

PORTS=()
pick_ports() {
    local want=$1 p=$((20000 + RANDOM % 10000)) tries=0
    # 20000-29999: below the kernel's ephemeral range, which wrk's sockets use.
    while ((${#PORTS[@]} < want)); do
        ((++tries <= 5000)) || die "could not find $want free loopback ports"
        port_in_use "$p" || PORTS+=("$p")
        p=$((p + 1))
        ((p < 30000)) || p=20000
    done
}

# ---------------------------------------------------------------- processes
declare -A PID=()
declare -A LOG=()

proc_alive() {
    local s
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    [[ ${s%% *} != Z ]]
}

# start NAME CMD... : run in its own session/process group so it can be stopped whole.
start() {
    local name=$1
    shift
    LOG[$name]=$RUN/$name.log
    setsid "$@" >"${LOG[$name]}" 2>&1 </dev/null &
    PID[$name]=$!
}

stop() {
    local name=$1 pid i
    pid=${PID[$name]:-}
    [[ -n $pid ]] || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        proc_alive "$pid" || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID[$name]"
}

show_log() {
    log "last lines of ${LOG[$1]}:"
    tail -n 20 "${LOG[$1]}" >&2 || true
}

# wait_ready NAME URL: until URL answers 2xx, at most STARTUP_TIMEOUT seconds;
# dies with the server's log if it exits or stays silent.
wait_ready() {
    local name=$1 url=$2 deadline=$((SECONDS + STARTUP_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! proc_alive "${PID[$name]}"; then
            show_log "$name"
            die "$name exited during start-up"
        fi
        curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    show_log "$name"
    die "$name did not answer $url within ${STARTUP_TIMEOUT}s"
}

# ---------------------------------------------------------------- CPU accounting
CLK_TCK=$(getconf CLK_TCK)

# PID followed by all its descendants.
tree_pids() {
    local f s pid ppid
    for f in /proc/[0-9]*/stat; do
        { read -r s <"$f"; } 2>/dev/null || continue
        pid=${s%% *}
        s=${s##*) }
        read -r _ ppid _ <<<"$s"
        echo "$pid $ppid"
    done | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END {
            q[1] = root; n = 1
            for (i = 1; i <= n; i++) {
                print q[i]
                m = split(kids[q[i]], a, " ")
                for (j = 1; j <= m; j++) q[++n] = a[j]
            }
        }'
}

# CPU time (user + system, clock ticks, all threads) used so far by the
# process tree under PID, including children that have exited and been
# reaped.
tree_ticks() {
    local p s total=0 f
    for p in $(tree_pids "$1"); do
        { read -r s <"/proc/$p/stat"; } 2>/dev/null || continue
        s=${s##*) }
        read -r -a f <<<"$s"
        total=$((total + f[11] + f[12] + f[13] + f[14])) # utime stime cutime cstime (fields 14-17)
    done
    echo "$total"
}

# Context switches (voluntary and involuntary) of every thread of a process
# tree so far. On a machine where the load generator shares the CPUs, a
# server that costs more CPU per request than the client falls into waking
# and being preempted by it once per request; this count shows it.
tree_switches() {
    local p t total=0 v
    for p in $(tree_pids "$1"); do
        for t in /proc/"$p"/task/*/status; do
            v=$(awk '/ctxt_switches/ {s += $2} END {print s + 0}' "$t" 2>/dev/null) || continue
            total=$((total + v))
        done
    done
    echo "$total"
}

# Microseconds of CPU per request from a tick count.
us_per() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", (n > 0) ? t * 1e6 / hz / n : 0}'; }
