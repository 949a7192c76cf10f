#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the benchmark
# need (see ../shared/PLATFORM.md), only when something is missing.
set -euo pipefail
PKGS="build-essential cmake pkg-config libc-ares-dev libevent-dev \
libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler \
libnghttp2-dev libssl-dev libjansson-dev libcmocka-dev clang \
libclang-rt-14-dev python3-dnspython python3-grpcio python3-protobuf \
python3-yaml openssl iproute2 iptables nftables dnsperf dnsmasq \
bind9-dnsutils clang-format"
if [ "${1:-}" = "--build-only" ]; then
	PKGS="build-essential cmake pkg-config libc-ares-dev libevent-dev \
libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler \
libnghttp2-dev libssl-dev libjansson-dev bind9-dnsutils"
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	if [ "$(id -u)" != 0 ]; then
		echo "error: missing packages and not root; run as root or install:$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# dnsmasq's package would start a system daemon on port 53; the tests
	# and the benchmark start their own instances on other ports.
	apt-get install -y -q --no-install-recommends $missing
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dnsmasq 2>/dev/null; then
		systemctl stop dnsmasq || true
	fi
fi
