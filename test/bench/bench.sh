#!/usr/bin/env bash
# dnsproxy vs dnsmasq on one host: same names, same dnsperf load, one run.
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
STARTUP_REPEAT=5
CLIENTS=4
OUTSTANDING=100
NQUERIES=100000
SERVERS="dnsproxy,dnsmasq"
KEEP=0
DNSPROXY_BIN=${DNSPROXY_BIN:-$ROOT/build/dnsproxy}
# Extra arguments for dnsproxy, split on spaces (e.g. "--log-level warn").
DNSPROXY_ARGS=${DNSPROXY_ARGS:-}

usage() {
	cat <<EOF
usage: $0 [options]
  --services LIST       table sizes, comma-separated (default $SERVICES)
  --duration SECONDS    length of each load phase (default $DURATION)
  --rate QPS            steady rate of the latency phase (default $RATE)
  --quick               smoke run: 1000 services, 3 s phases, 1 round,
                        3 start-ups (options after --quick override it)
  --out FILE            also write the results as JSON to FILE
  --rounds N            repeat the load phases N times, alternating the
                        server order; the report takes the median (default 3)
  --startup-repeat N    start-to-first-answer samples per server (default 5)
  --clients N           dnsperf -c for both phases (default $CLIENTS)
  --outstanding N       dnsperf -q for the throughput phase (default $OUTSTANDING)
  --queries N           lines in the dnsperf query file (default $NQUERIES)
  --servers LIST        dnsproxy,dnsmasq (default); one alone skips the ratio
  --dnsproxy-bin PATH   dnsproxy binary (default \$DNSPROXY_BIN or build/dnsproxy)
  --keep                keep the temporary directory (logs, raw dnsperf output)
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
	--quick) SERVICES=1000 DURATION=3 STARTUP_REPEAT=3 ROUNDS=1; shift ;;
	--out) OUT=${2:?}; shift 2 ;;
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--startup-repeat) STARTUP_REPEAT=${2:?}; shift 2 ;;
	--clients) CLIENTS=${2:?}; shift 2 ;;
	--outstanding) OUTSTANDING=${2:?}; shift 2 ;;
	--queries) NQUERIES=${2:?}; shift 2 ;;
	--servers) SERVERS=${2:?}; shift 2 ;;
	--dnsproxy-bin) DNSPROXY_BIN=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option $1" ;;
	esac
done

isint() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }
for v in DURATION RATE ROUNDS STARTUP_REPEAT CLIENTS OUTSTANDING NQUERIES; do
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

# server_cmd SERVER PORT DIR: fills the array CMD.
server_cmd() {
	local server=$1 port=$2 dir=$3
	case "$server" in
	dnsproxy)
		CMD=("$DNSPROXY_BIN" --listen "127.0.0.1:$port"
			--table "$dir/table.json" --namespace ns-0
			--resolv-conf "$TMP/resolv.conf")
		if [ "$DNSPROXY_HAS_ADMIN" = 1 ]; then
			# Keep off the default 15020, which a test may hold.
			CMD+=(--admin "127.0.0.1:$(free_port)")
		fi
		if [ -n "$DNSPROXY_ARGS" ]; then
			# shellcheck disable=SC2206
			CMD+=($DNSPROXY_ARGS)
		fi
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
	esac
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

# load_phase SERVER SIZE ROUND: start the server, check it, measure.
load_phase() {
	local server=$1 n=$2 round=$3 dir=$TMP/$2 port pid res
	port=$(free_port)
	server_cmd "$server" "$port" "$dir"
	res=$dir/$server.r$round
	taskset -c 0 "${CMD[@]}" >"$res.log" 2>&1 &
	pid=$!
	echo "$pid" >"$TMP/$server.pid"
	probe_args "$dir"
	"$PY" "$HERE/probe.py" wait --port "$port" "${PROBE[@]}" --timeout 60 --pid "$pid" ||
		die_log "$res.log" "$server did not answer on 127.0.0.1:$port"
	"$PY" "$HERE/probe.py" check --port "$port" --names "$dir/probe.txt" 2>"$res.check" || {
		cat "$res.check" >&2
		die "$server gave wrong answers; not measuring it"
	}
	# Warm-up (faults in pages, fills socket buffers); not measured.
	run_dnsperf "$res.warm" -p "$port" -d "$dir/queries.txt" -l 1 -c "$CLIENTS" -q "$OUTSTANDING"

	local c0 c1 c2 c3 w0 w1 w2 w3
	w0=$(rq_wait_ns "$pid")
	c0=$(cpu_ticks "$pid")
	run_dnsperf "$res.max" -p "$port" -d "$dir/queries.txt" -l "$DURATION" \
		-c "$CLIENTS" -q "$OUTSTANDING"
	kill -0 "$pid" 2>/dev/null || die_log "$res.log" "$server died during the throughput phase"
	c1=$(cpu_ticks "$pid")
	w1=$(rq_wait_ns "$pid")
	sleep 0.5
	w2=$(rq_wait_ns "$pid")
	c2=$(cpu_ticks "$pid")
	run_dnsperf "$res.lat" -p "$port" -d "$dir/queries.txt" -l "$DURATION" \
		-c "$CLIENTS" -q 1000 -Q "$RATE" -v
	c3=$(cpu_ticks "$pid")
	w3=$(rq_wait_ns "$pid")
	kill -0 "$pid" 2>/dev/null || die_log "$res.log" "$server died during the latency phase"
	cat >"$res.proc" <<EOF
pid=$pid
port=$port
max_cpu_ticks=$((c1 - c0))
lat_cpu_ticks=$((c3 - c2))
max_rq_wait_ns=$((w1 - w0))
lat_rq_wait_ns=$((w3 - w2))
vmhwm_kb=$(vm_field "$pid" VmHWM)
vmrss_kb=$(vm_field "$pid" VmRSS)
EOF
	stop_pid "$pid"
	wait "$pid" 2>/dev/null || true
	rm -f "$TMP/$server.pid"
}

startup_phase() {
	local server=$1 n=$2 dir=$TMP/$2 port
	port=$(free_port)
	server_cmd "$server" "$port" "$dir"
	probe_args "$dir"
	"$PY" "$HERE/probe.py" startup --port "$port" "${PROBE[@]}" \
		--repeat "$STARTUP_REPEAT" --cpu 0 --timeout 60 \
		--pidfile "$TMP/$server.pid" --log "$dir/$server.startup.log" \
		-- "${CMD[@]}" >"$dir/$server.startup.json" ||
		die_log "$dir/$server.startup.log" "$server start-up probe failed"
}

# ---- run ---------------------------------------------------------------------
echo "bench: servers ${SERVERS}; sizes ${SERVICES}; ${DURATION}s phases;" \
	"latency at ${RATE} qps; ${ROUNDS} round(s); temp $TMP" >&2
[[ ",$SERVERS," == *",dnsproxy,"* ]] && echo "bench: dnsproxy = $DNSPROXY_BIN" >&2

for n in "${SIZES[@]}"; do
	dir=$TMP/$n
	echo "bench: [$n services] generating table, hosts file and $NQUERIES queries" >&2
	"$PY" "$HERE/gentable.py" --services "$n" --queries "$NQUERIES" --outdir "$dir"
	for server in "${SERVER_LIST[@]}"; do
		echo "bench: [$n services] $server: start-to-first-answer x$STARTUP_REPEAT" >&2
		startup_phase "$server" "$n"
	done
	for ((r = 0; r < ROUNDS; r++)); do
		order=("${SERVER_LIST[@]}")
		if [ $((r % 2)) = 1 ] && [ ${#order[@]} = 2 ]; then
			order=("${order[1]}" "${order[0]}")
		fi
		for server in "${order[@]}"; do
			echo "bench: [$n services] $server round $((r + 1))/$ROUNDS:" \
				"throughput ${DURATION}s, then latency at $RATE qps ${DURATION}s" >&2
			load_phase "$server" "$n" "$r"
		done
	done
done

report_args=(--tmp "$TMP" --sizes "$SERVICES" --servers "$SERVERS"
	--rounds "$ROUNDS" --duration "$DURATION" --rate "$RATE"
	--clients "$CLIENTS" --outstanding "$OUTSTANDING"
	--clk-tck "$(getconf CLK_TCK)")
[ -n "$OUT" ] && report_args+=(--out "$OUT")
[[ ",$SERVERS," == *",dnsproxy,"* ]] && report_args+=(--dnsproxy-bin "$DNSPROXY_BIN")
"$PY" "$HERE/report.py" "${report_args[@]}"
