#!/usr/bin/env bash
# Benchmarks an HTTPS request that opens its own TLS connection (the controller's /configz
# fetches from many kubelets): the cpprestsdk client against the one-shot OpenSSL client, on
# loopback, with the client's CPU time per request and the ratio (tests/bench/bench_https_client.cpp).
#
#   scripts/bench-https-client.sh [N=200] [ROUNDS=3]
#
# Needs the build (scripts/build.sh). Not run by CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(nice "$root/scripts/build.sh" default bench_https_client | tail -n1)
echo "cpus: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$build/bench_https_client" "${1:-200}" "${2:-3}"
