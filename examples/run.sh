#!/usr/bin/env bash
# Builds dnsproxy and runs it on the bundled sample table, in the
# foreground, on 127.0.0.1:15053 and [::1]:15053.  From another shell:
#   dig @127.0.0.1 -p 15053 productpage.demo.svc.cluster.local
# Extra arguments go to dnsproxy (e.g. --log-level debug).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh --build-only
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDNSPROXY_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target dnsproxy >/dev/null
cat <<'MSG'
dnsproxy is starting on the sample table (namespace "demo"). Try:
  dig @127.0.0.1 -p 15053 productpage.demo.svc.cluster.local
  dig @127.0.0.1 -p 15053 reviews AAAA
  dig @127.0.0.1 -p 15053 mysql.data.svc.cluster.local
  dig @127.0.0.1 -p 15053 anything.internal.example.org
Stop with Ctrl-C.
MSG
exec build/dnsproxy --table examples/nametable.json \
	--resolv-conf examples/resolv.conf --namespace demo "$@"
