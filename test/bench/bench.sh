#!/usr/bin/env bash
# dnsproxy vs dnsmasq on one host: same names, same dnsperf load, one run;
# then both forwarding unique misses to the same dnsmasq upstream; then both
# forwarding repeated names with their caches on.
# See test/bench/README.md. Loopback only; never port 53.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3

SERVICES="1000,100000"
DURATION=10
RATE=10000
OUT=""
ROUNDS=3
LAT_RUNS=""
LAT_DURATION=""
STARTUP_REPEAT=5
CLIENTS=4
OUTSTANDING=100
NQUERIES=100000
SERVERS="dnsproxy,dnsmasq"
KEEP=0
FORWARD=1
FORWARD_ONLY=0
FWD_QUERIES=1000000
FWD_RATE=5000
CACHE=1
CACHE_ONLY=0
CACHE_NAMES=1000
CACHE_RATE=10000
FLOOR=1
DNSPROXY_BIN=${DNSPROXY_BIN:-$ROOT/build/dnsproxy}
# Extra arguments for dnsproxy, split on spaces (e.g. "--log-level warn").
DNSPROXY_ARGS=${DNSPROXY_ARGS:-}

usage() {
	cat <<EOF
usage: $0 [options]
  --services LIST       table sizes, comma-separated (default $SERVICES)
  --duration SECONDS    length of each throughput phase (default $DURATION)
  --rate QPS            steady rate of the latency runs (default $RATE)
  --quick               smoke run: 1000 services, 3 s phases, 1 round,
                        3 start-ups (options after --quick override it)
  --out FILE            also write the results as JSON to FILE
  --rounds N            repeat the throughput phase N times, alternating the
                        server order; the report takes the median (default 3)
  --latency-runs N      latency runs per server, alternating between the
                        servers, all up at once (default: 2 x rounds, at
                        least 3); the report takes the median of each
                        percentile over the runs
  --latency-duration S  length of each latency run (default: duration / 2,
                        at least 2)
  --startup-repeat N    start-to-first-answer samples per server (default 5)
  --clients N           dnsperf -c for both phases (default $CLIENTS)
  --outstanding N       dnsperf -q for the throughput phase (default $OUTSTANDING)
  --queries N           lines in the dnsperf query file (default $NQUERIES)
  --servers LIST        dnsproxy,dnsmasq (default); one alone skips the ratio
  --dnsproxy-bin PATH   dnsproxy binary (default \$DNSPROXY_BIN or build/dnsproxy)
  --keep                keep the temporary directory (logs, raw dnsperf output)
  --forward             also run the forwarding comparison (the default)
  --no-forward          skip the forwarding comparison
  --forward-only        only the forwarding comparison (no table sizes)
  --forward-rate QPS    steady rate of the forwarding latency phase
                        (default $FWD_RATE)
  --forward-queries N   unique names in the forwarding query file
                        (default $FWD_QUERIES)
  --cache               also run the cache comparison (the default)
  --no-cache            skip the cache comparison
  --cache-only          only the cache comparison
  --cache-names N       distinct forwarded names the cache run repeats
                        (default $CACHE_NAMES)
  --cache-rate QPS      steady rate of the cache latency phase
                        (default $CACHE_RATE)
  --no-floor            leave out the latency floor: a bare C responder
                        (floor.c) that joins the table runs' latency phase
                        to show what the harness alone costs (default: on
                        when cc is found)
Environment: DNSPROXY_BIN, DNSPROXY_ARGS (extra dnsproxy arguments).
EOF
}

die() {
	echo "bench: $*" >&2
	exit 1
}

# die_log LOG MESSAGE: show the end of a server log (the temp dir goes away).
die_log() {
	echo "bench: --- last lines of $1 ---" >&2
	tail -20 "$1" >&2 2>/dev/null || true
	shift
	die "$@"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--services) SERVICES=${2:?}; shift 2 ;;
	--duration) DURATION=${2:?}; shift 2 ;;
	--rate) RATE=${2:?}; shift 2 ;;
	--quick) SERVICES=1000 DURATION=3 STARTUP_REPEAT=3 ROUNDS=1 FWD_QUERIES=300000; shift ;;
	--out) OUT=${2:?}; shift 2 ;;
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--latency-runs) LAT_RUNS=${2:?}; shift 2 ;;
	--latency-duration) LAT_DURATION=${2:?}; shift 2 ;;
	--startup-repeat) STARTUP_REPEAT=${2:?}; shift 2 ;;
	--clients) CLIENTS=${2:?}; shift 2 ;;
	--outstanding) OUTSTANDING=${2:?}; shift 2 ;;
	--queries) NQUERIES=${2:?}; shift 2 ;;
	--servers) SERVERS=${2:?}; shift 2 ;;
	--dnsproxy-bin) DNSPROXY_BIN=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--forward) FORWARD=1; shift ;;
	--no-forward) FORWARD=0; shift ;;
	--forward-only) FORWARD=1 FORWARD_ONLY=1 CACHE=0; shift ;;
	--cache) CACHE=1; shift ;;
	--no-cache) CACHE=0; shift ;;
	--cache-only) CACHE=1 CACHE_ONLY=1 FORWARD=0; shift ;;
	--cache-names) CACHE_NAMES=${2:?}; shift 2 ;;
	--cache-rate) CACHE_RATE=${2:?}; shift 2 ;;
	--forward-rate) FWD_RATE=${2:?}; shift 2 ;;
	--forward-queries) FWD_QUERIES=${2:?}; shift 2 ;;
	--floor) FLOOR=1; shift ;;
	--no-floor) FLOOR=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option $1" ;;
	esac
done

isint() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }
if [ -z "$LAT_RUNS" ]; then
	LAT_RUNS=$((2 * ROUNDS))
	[ "$LAT_RUNS" -lt 3 ] && LAT_RUNS=3
fi
if [ -z "$LAT_DURATION" ]; then
	LAT_DURATION=$((DURATION / 2))
	[ "$LAT_DURATION" -lt 2 ] && LAT_DURATION=2
fi
for v in DURATION RATE ROUNDS LAT_RUNS LAT_DURATION STARTUP_REPEAT CLIENTS OUTSTANDING NQUERIES FWD_RATE FWD_QUERIES CACHE_NAMES CACHE_RATE; do
	isint "${!v}" || die "$v must be a positive integer (got '${!v}')"
done
IFS=, read -r -a SIZES <<<"$SERVICES"
for n in "${SIZES[@]}"; do
	isint "$n" || die "--services: '$n' is not a positive integer"
done
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
for s in "${SERVER_LIST[@]}"; do
	case "$s" in
	dnsproxy | dnsmasq) ;;
	*) die "--servers: unknown server '$s' (dnsproxy, dnsmasq)" ;;
	esac
done

# ---- prerequisites ---------------------------------------------------------
missing=()
for tool in dnsperf dnsmasq taskset; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench: missing: ${missing[*]}" >&2
	echo "bench: install with: apt-get install -y dnsperf dnsmasq util-linux" >&2
	exit 1
fi
[ -x "$PY" ] || die "$PY not found (apt-get install -y python3)"
DNSMASQ=$(command -v dnsmasq)
if [ "$(nproc --all)" -lt 2 ]; then
	die "needs 2 CPUs (server pinned to CPU 0, dnsperf to CPU 1); found $(nproc --all)"
fi
if [[ ",$SERVERS," == *",dnsproxy,"* ]]; then
	[ -x "$DNSPROXY_BIN" ] || die "dnsproxy binary '$DNSPROXY_BIN' not found; build it with
  cmake -S $ROOT -B $ROOT/build -DCMAKE_BUILD_TYPE=Release && cmake --build $ROOT/build -j2
or point DNSPROXY_BIN / --dnsproxy-bin at one"
	DNSPROXY_BIN=$(readlink -f "$DNSPROXY_BIN")
fi

# ---- temp dir and cleanup --------------------------------------------------
TMP=$(mktemp -d /tmp/dnsproxy-bench.XXXXXX)

stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? f
	trap - EXIT INT TERM
	for f in "$TMP"/*.pid; do
		[ -e "$f" ] || continue
		stop_pid "$(cat "$f")"
		rm -f "$f"
	done
	wait 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then
		echo "bench: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The latency floor (floor.c): built here, run only in the table runs'
# latency phase. Without a C compiler the run goes on without it.
FLOOR_BIN=""
if [ "$FLOOR" = 1 ]; then
	if command -v cc >/dev/null && cc -O2 -o "$TMP/floor" "$HERE/floor.c" 2>"$TMP/floor.cc.log"; then
		FLOOR_BIN=$TMP/floor
	else
		echo "bench: cannot build floor.c ($(head -1 "$TMP/floor.cc.log" 2>/dev/null || echo 'no cc')); no latency floor this run" >&2
	fi
fi

# ---- helpers -----------------------------------------------------------------
# A loopback port free for both UDP and TCP (never 53).
free_port() {
	"$PY" - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        t.close()
        u.close()
    if port != 53:
        print(port)
        break
EOF
}

# utime+stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the command name).
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# Time PID's threads have spent runnable but waiting for a CPU, in ns
# (schedstat field 2): how much other load on CPU 0 got in the server's way.
rq_wait_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $2 } END { printf "%d\n", s }'
}

vm_field() {
	awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"
}

printf 'search ns-0.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\n' \
	>"$TMP/resolv.conf"

DNSPROXY_HAS_ADMIN=0
if [[ ",$SERVERS," == *",dnsproxy,"* ]] &&
	"$DNSPROXY_BIN" --help 2>&1 | grep -q -- '--admin'; then
	DNSPROXY_HAS_ADMIN=1
fi
DNSPROXY_HAS_CACHE=0
if [[ ",$SERVERS," == *",dnsproxy,"* ]] &&
	"$DNSPROXY_BIN" --help 2>&1 | grep -q -- '--cache-size'; then
	DNSPROXY_HAS_CACHE=1
fi
if [ "$CACHE" = 1 ] && [[ ",$SERVERS," == *",dnsproxy,"* ]] && [ "$DNSPROXY_HAS_CACHE" = 0 ]; then
	die "$DNSPROXY_BIN has no --cache-size; run with --no-cache"
fi

# The forwarding and cache runs set these: the upstream dnsmasq's port and
# PID; CACHE_RUN=1 during the cache run.
FWD_UP_PORT=""
FWD_UP_PID=""
CACHE_RUN=0

# dnsproxy's table in the table runs: table.json, or table.pb (the same
# NameTable in protobuf form) for the second start-up measurement.
TABLE_FILE=table.json

# server_cmd SERVER PORT DIR: fills the array CMD (forwarding servers when
# FWD_UP_PORT is set).
server_cmd() {
	local server=$1 port=$2 dir=$3
	if [ -n "$FWD_UP_PORT" ]; then
		fwd_server_cmd "$@"
		return
	fi
	case "$server" in
	dnsproxy)
		CMD=("$DNSPROXY_BIN" --listen "127.0.0.1:$port"
			--table "$dir/$TABLE_FILE" --namespace ns-0
			--resolv-conf "$TMP/resolv.conf")
		dnsproxy_extra_args
		;;
	dnsmasq)
		# Authoritative from the hosts file only: no /etc/hosts, no
		# resolv.conf, no upstream; cluster.local is declared local so a
		# miss is NXDOMAIN, never forwarded. TTL 30 as dnsproxy.
		CMD=("$DNSMASQ" --keep-in-foreground --conf-file=/dev/null
			--no-hosts --addn-hosts="$dir/hosts" --no-resolv
			--local=/cluster.local/ --local-ttl=30 --cache-size=10000
			--port="$port" --listen-address=127.0.0.1 --bind-interfaces
			--user=root --pid-file= --log-facility=-)
		;;
	floor)
		CMD=("$FLOOR_BIN" "$port")
		;;
	esac
}

dnsproxy_extra_args() {
	if [ "$DNSPROXY_HAS_ADMIN" = 1 ]; then
		# Keep off the default 15020, which a test may hold.
		CMD+=(--admin "127.0.0.1:$(free_port)")
	fi
	if [ -n "$DNSPROXY_ARGS" ]; then
		# shellcheck disable=SC2206
		CMD+=($DNSPROXY_ARGS)
	fi
}

# fwd_server_cmd SERVER PORT DIR: the same server as a pure forwarder to
# 127.0.0.1:FWD_UP_PORT, in-flight limit 4096 on both sides; no cache, or
# in the cache run (CACHE_RUN=1) both caches on with 10000 entries
# (dnsproxy's default size).
fwd_server_cmd() {
	local server=$1 port=$2 dir=$3 cache=0
	[ "$CACHE_RUN" = 1 ] && cache=10000
	case "$server" in
	dnsproxy)
		# An empty table (a 0-byte file is a valid one): every query is
		# a miss and is forwarded. --upstream replaces resolv.conf's
		# nameserver.
		CMD=("$DNSPROXY_BIN" --listen "127.0.0.1:$port"
			--table "$dir/empty.table" --resolv-conf "$TMP/resolv.conf"
			--upstream "127.0.0.1:$FWD_UP_PORT")
		if [ "$DNSPROXY_HAS_CACHE" = 1 ]; then
			CMD+=(--cache-size "$cache")
		fi
		dnsproxy_extra_args
		;;
	dnsmasq)
		# dnsmasq's default --dns-forward-max is 150; give it dnsproxy's
		# --max-forwards default so neither drops for lack of slots.
		CMD=("$DNSMASQ" --keep-in-foreground --conf-file=/dev/null
			--no-hosts --no-resolv --server="127.0.0.1#$FWD_UP_PORT"
			--cache-size="$cache" --dns-forward-max=4096
			--port="$port" --listen-address=127.0.0.1 --bind-interfaces
			--user=root --pid-file= --log-facility=-)
		;;
	esac
}

# qfile DIR PHASE: DIR/PHASE.txt if the inputs have one, else queries.txt.
qfile() {
	if [ -e "$1/$2.txt" ]; then echo "$1/$2.txt"; else echo "$1/queries.txt"; fi
}

# Pick the first probe name and its IPs (line 1 of probe.txt).
probe_args() {
	local dir=$1 name ip ips
	read -r name ips <"$dir/probe.txt"
	PROBE=(--name "$name")
	for ip in $ips; do PROBE+=(--ip "$ip"); done
}

run_dnsperf() { # OUTFILE ARGS...
	local out=$1
	shift
	taskset -c 1 dnsperf -s 127.0.0.1 -t 2 "$@" >"$out" 2>&1 || true
	grep -q 'Queries completed' "$out" ||
		die "dnsperf failed; output in $out: $(tail -3 "$out")"
}

# start_server SERVER DIR TAG: start SERVER on a free port pinned to CPU 0,
# wait for it, check its answers and warm it up (faults in pages, fills
# socket buffers and, in the cache run, the cache; not measured). Sets
# SRV_PID and SRV_PORT; the log is DIR/SERVER.TAG.log. The latency floor
# answers anything: any reply means it is up, and its answers are not
# checked.
start_server() {
	local server=$1 dir=$2 tag=$3 res
	SRV_PORT=$(free_port)
	server_cmd "$server" "$SRV_PORT" "$dir"
	res=$dir/$server.$tag
	taskset -c 0 "${CMD[@]}" >"$res.log" 2>&1 &
	SRV_PID=$!
	echo "$SRV_PID" >"$TMP/$server.pid"
	probe_args "$dir"
	[ "$server" = floor ] && PROBE=("${PROBE[@]:0:2}") # --name only
	"$PY" "$HERE/probe.py" wait --port "$SRV_PORT" "${PROBE[@]}" --timeout 60 --pid "$SRV_PID" ||
		die_log "$res.log" "$server did not answer on 127.0.0.1:$SRV_PORT"
	[ "$server" = floor ] ||
		"$PY" "$HERE/probe.py" check --port "$SRV_PORT" --names "$dir/probe.txt" 2>"$res.check" || {
		cat "$res.check" >&2
		die "$server gave wrong answers; not measuring it"
	}
	run_dnsperf "$res.warm" -p "$SRV_PORT" -d "$(qfile "$dir" warm)" -l 1 -c "$CLIENTS" -q "$OUTSTANDING"
}

stop_server() { # SERVER PID
	stop_pid "$2"
	wait "$2" 2>/dev/null || true
	rm -f "$TMP/$1.pid"
}

# load_phase SERVER SIZE ROUND: the throughput phase, the server alone on
# CPU 0 (started for it, stopped after). SIZE names the input directory
# under TMP ("fwd" for the forwarding run).
load_phase() {
	local server=$1 n=$2 round=$3 dir=$TMP/$2 pid res
	res=$dir/$server.r$round
	start_server "$server" "$dir" "r$round"
	pid=$SRV_PID

	local c0 c1 w0 w1 u0=0 u1=0
	w0=$(rq_wait_ns "$pid")
	c0=$(cpu_ticks "$pid")
	[ -n "$FWD_UP_PID" ] && u0=$(cpu_ticks "$FWD_UP_PID")
	run_dnsperf "$res.max" -p "$SRV_PORT" -d "$dir/queries.txt" -l "$DURATION" \
		-c "$CLIENTS" -q "$OUTSTANDING"
	kill -0 "$pid" 2>/dev/null || die_log "$res.log" "$server died during the throughput phase"
	c1=$(cpu_ticks "$pid")
	w1=$(rq_wait_ns "$pid")
	[ -n "$FWD_UP_PID" ] && u1=$(cpu_ticks "$FWD_UP_PID")
	cat >"$res.proc" <<EOF
pid=$pid
port=$SRV_PORT
max_cpu_ticks=$((c1 - c0))
max_rq_wait_ns=$((w1 - w0))
up_max_cpu_ticks=$((u1 - u0))
vmhwm_kb=$(vm_field "$pid" VmHWM)
vmrss_kb=$(vm_field "$pid" VmRSS)
EOF
	stop_server "$server" "$pid"
}

# latency_phase SIZE RATE: every server up at once (each on its own port,
# all pinned to CPU 0), then LAT_RUNS alternations of one LAT_DURATION s
# dnsperf -Q RATE -v run per server, the order flipped every alternation:
# drift on the host hits both servers alike. Writes SERVER.lI.lat (dnsperf
# output) and SERVER.lI.proc (that run's CPU ticks and run-queue wait),
# I = 0 .. LAT_RUNS-1.
latency_phase() {
	local n=$1 rate=$2 dir=$TMP/$1 server i j res pid port c0 c1 w0 w1
	local -a order all=("${SERVER_LIST[@]}")
	local -A pids=() ports=()
	for server in "${SERVER_LIST[@]}"; do
		start_server "$server" "$dir" lat
		pids[$server]=$SRV_PID
		ports[$server]=$SRV_PORT
	done
	if [ -n "$FLOOR_BIN" ] && [ -z "$FWD_UP_PORT" ]; then
		start_server floor "$dir" lat
		pids[floor]=$SRV_PID
		ports[floor]=$SRV_PORT
		all+=(floor)
	fi
	sleep 0.5
	# Every other alternation runs in reverse order: the two servers stay
	# next to each other, and the floor, last in one, is first in the next.
	for ((i = 0; i < LAT_RUNS; i++)); do
		order=("${all[@]}")
		if [ $((i % 2)) = 1 ]; then
			order=()
			for ((j = ${#all[@]} - 1; j >= 0; j--)); do order+=("${all[j]}"); done
		fi
		for server in "${order[@]}"; do
			pid=${pids[$server]} port=${ports[$server]}
			res=$dir/$server.l$i
			w0=$(rq_wait_ns "$pid")
			c0=$(cpu_ticks "$pid")
			run_dnsperf "$res.lat" -p "$port" -d "$dir/queries.txt" -l "$LAT_DURATION" \
				-c "$CLIENTS" -q 1000 -Q "$rate" -v
			c1=$(cpu_ticks "$pid")
			w1=$(rq_wait_ns "$pid")
			kill -0 "$pid" 2>/dev/null ||
				die_log "$dir/$server.lat.log" "$server died during the latency phase"
			printf 'lat_cpu_ticks=%d\nlat_rq_wait_ns=%d\n' $((c1 - c0)) $((w1 - w0)) >"$res.proc"
		done
	done
	for server in "${all[@]}"; do
		stop_server "$server" "${pids[$server]}"
	done
}

# measure LABEL SIZE RATE: the throughput rounds (each server alone,
# alternating the order between rounds), then the interleaved latency phase.
measure() {
	local label=$1 n=$2 rate=$3 r server
	local -a order
	for ((r = 0; r < ROUNDS; r++)); do
		order=("${SERVER_LIST[@]}")
		if [ $((r % 2)) = 1 ] && [ ${#order[@]} = 2 ]; then
			order=("${order[1]}" "${order[0]}")
		fi
		for server in "${order[@]}"; do
			echo "bench: [$label] $server round $((r + 1))/$ROUNDS: throughput ${DURATION}s" >&2
			load_phase "$server" "$n" "$r"
		done
	done
	echo "bench: [$label] latency at $rate qps, all up at once ($SERVERS):" \
		"$LAT_RUNS alternating ${LAT_DURATION}s runs each" >&2
	latency_phase "$n" "$rate"
}

# startup_phase SERVER SIZE [NAME]: start-to-first-answer samples into
# SIZE/NAME.startup.json (NAME defaults to SERVER).
startup_phase() {
	local server=$1 n=$2 name=${3:-$1} dir=$TMP/$2 port
	port=$(free_port)
	server_cmd "$server" "$port" "$dir"
	probe_args "$dir"
	"$PY" "$HERE/probe.py" startup --port "$port" "${PROBE[@]}" \
		--repeat "$STARTUP_REPEAT" --cpu 0 --timeout 60 \
		--pidfile "$TMP/$server.pid" --log "$dir/$name.startup.log" \
		-- "${CMD[@]}" >"$dir/$name.startup.json" ||
		die_log "$dir/$name.startup.log" "$name start-up probe failed"
}

# ---- run ---------------------------------------------------------------------
if [ "$FORWARD_ONLY" = 1 ]; then
	echo "bench: servers ${SERVERS}; forwarding only; ${DURATION}s throughput phases, latency ${LAT_RUNS}x${LAT_DURATION}s interleaved;" \
		"latency at ${FWD_RATE} qps; ${ROUNDS} round(s); temp $TMP" >&2
elif [ "$CACHE_ONLY" = 1 ]; then
	echo "bench: servers ${SERVERS}; cache only ($CACHE_NAMES names); ${DURATION}s throughput phases, latency ${LAT_RUNS}x${LAT_DURATION}s interleaved;" \
		"latency at ${CACHE_RATE} qps; ${ROUNDS} round(s); temp $TMP" >&2
else
	echo "bench: servers ${SERVERS}; sizes ${SERVICES}$([ "$FORWARD" = 1 ] && echo ' + forwarding');" \
		"${DURATION}s throughput phases, latency ${LAT_RUNS}x${LAT_DURATION}s interleaved; latency at ${RATE} qps; ${ROUNDS} round(s); temp $TMP" >&2
fi
[[ ",$SERVERS," == *",dnsproxy,"* ]] && echo "bench: dnsproxy = $DNSPROXY_BIN" >&2

for n in "${SIZES[@]}"; do
	[ "$FORWARD_ONLY" = 1 ] || [ "$CACHE_ONLY" = 1 ] && break
	dir=$TMP/$n
	echo "bench: [$n services] generating table, hosts file and $NQUERIES queries" >&2
	"$PY" "$HERE/gentable.py" --services "$n" --queries "$NQUERIES" --outdir "$dir"
	for server in "${SERVER_LIST[@]}"; do
		echo "bench: [$n services] $server: start-to-first-answer x$STARTUP_REPEAT" >&2
		startup_phase "$server" "$n"
		if [ "$server" = dnsproxy ]; then
			echo "bench: [$n services] dnsproxy, protobuf table: start-to-first-answer x$STARTUP_REPEAT" >&2
			TABLE_FILE=table.pb
			startup_phase dnsproxy "$n" dnsproxy-pb
			TABLE_FILE=table.json
		fi
	done
	measure "$n services" "$n" "$RATE"
done

# ---- forwarding: unique misses, both servers forwarding to one upstream -----
# The upstream is a dnsmasq with no cache that answers every name below
# miss.example itself (--address); it runs on CPU 1 with dnsperf, the server
# under test alone on CPU 0. upstream_start DIR [TTL] starts it; TTL is its
# answers' TTL (--local-ttl; dnsmasq's default 0 makes them uncacheable).
upstream_start() {
	local dir=$1 ttl=${2:-0}
	FWD_UP_PORT=$(free_port)
	taskset -c 1 "$DNSMASQ" --keep-in-foreground --conf-file=/dev/null \
		--no-hosts --no-resolv --cache-size=0 --local-ttl="$ttl" \
		--address=/miss.example/198.51.100.1 --port="$FWD_UP_PORT" \
		--listen-address=127.0.0.1 --bind-interfaces --user=root \
		--pid-file= --log-facility=- >"$dir/upstream.log" 2>&1 &
	FWD_UP_PID=$!
	echo "$FWD_UP_PID" >"$TMP/upstream.pid"
	"$PY" "$HERE/probe.py" wait --port "$FWD_UP_PORT" --name ready.miss.example \
		--ip 198.51.100.1 --timeout 30 --pid "$FWD_UP_PID" ||
		die_log "$dir/upstream.log" "the upstream dnsmasq did not answer"
}

upstream_stop() {
	stop_pid "$FWD_UP_PID"
	wait "$FWD_UP_PID" 2>/dev/null || true
	rm -f "$TMP/upstream.pid"
	FWD_UP_PORT="" FWD_UP_PID=""
}

forward_run() {
	local dir=$TMP/fwd
	echo "bench: [forwarding] generating $FWD_QUERIES unique miss names" >&2
	"$PY" "$HERE/gentable.py" --misses --queries "$FWD_QUERIES" --outdir "$dir"
	: >"$dir/empty.table"
	upstream_start "$dir"
	measure forwarding fwd "$FWD_RATE"
	upstream_stop
}
[ "$FORWARD" = 1 ] && forward_run

# ---- cache: repeated forwarded names, both servers caching -------------------
# The same upstream, now with TTL 3600 answers (dnsproxy caps them at its
# --cache-max-ttl, 300 s: longer than a run); CACHE_NAMES distinct names,
# which dnsperf repeats in a loop. The warm-up sends the same names, so the
# measured phases are (almost) all cache hits on both servers.
cache_run() {
	local dir=$TMP/cache
	echo "bench: [cache] generating $CACHE_NAMES names to repeat" >&2
	"$PY" "$HERE/gentable.py" --misses --queries "$CACHE_NAMES" --outdir "$dir"
	rm -f "$dir/warm.txt" # warm up on the measured names: fills the caches
	: >"$dir/empty.table"
	upstream_start "$dir" 3600
	CACHE_RUN=1
	measure cache cache "$CACHE_RATE"
	CACHE_RUN=0
	upstream_stop
}
[ "$CACHE" = 1 ] && cache_run

sizes_arg=$SERVICES
[ "$FORWARD_ONLY" = 1 ] || [ "$CACHE_ONLY" = 1 ] && sizes_arg=none
report_args=(--tmp "$TMP" --sizes "$sizes_arg" --servers "$SERVERS"
	--rounds "$ROUNDS" --duration "$DURATION" --rate "$RATE"
	--latency-runs "$LAT_RUNS" --latency-duration "$LAT_DURATION"
	--clients "$CLIENTS" --outstanding "$OUTSTANDING"
	--clk-tck "$(getconf CLK_TCK)")
[ -n "$OUT" ] && report_args+=(--out "$OUT")
[ "$FORWARD" = 1 ] && report_args+=(--forward --forward-rate "$FWD_RATE")
[ "$CACHE" = 1 ] && report_args+=(--cache --cache-rate "$CACHE_RATE" --cache-names "$CACHE_NAMES")
[[ ",$SERVERS," == *",dnsproxy,"* ]] && report_args+=(--dnsproxy-bin "$DNSPROXY_BIN")
[ -n "$FLOOR_BIN" ] && report_args+=(--floor)
"$PY" "$HERE/report.py" "${report_args[@]}"
