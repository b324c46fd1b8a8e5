#!/usr/bin/env bash
# Benchmarks the admission webhook server against nginx on loopback, in the same run:
# HTTPS (TLS 1.2+, the same ECDSA P-256 certificate), keep-alive, a closed loop of C connections
# each sending POSTs back to back (tests/bench/webhookload), at C = 64 and 256 by default.
#   - webhook: bench_webhook_server, i.e. the controller's WebhookServer, validating the CIS
#     sample (deploy/samples/cis-kubeadm.yaml) in an AdmissionReview — real work per request;
#   - canned: the same server (net::HttpServer, same TLS and limits) answering a canned copy of
#     the webhook's answer: the HTTP/TLS server alone, without the AdmissionReview work;
#   - nginx (Debian package): the same canned answer (`return 200 '...'`).
# Prints throughput and p50/p99 latency for each, and the webhook/nginx ratios.
#
#   scripts/bench-webhook.sh [--duration 10s] [--conns "64 256"]
#
# Needs nginx (apt-get install nginx-light), Go, and the build (scripts/build.sh). Not run by CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=10s
conns="64 256"
while (($#)); do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    *) echo "bench-webhook: unknown argument $1" >&2; exit 2 ;;
  esac
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx_bin ]] || { echo "bench-webhook: nginx not found (apt-get install nginx-light)" >&2; exit 1; }

build=$(nice "$root/scripts/build.sh" default bench_webhook_server | tail -n1)
tmp=$(mktemp -d /tmp/kpc-bench-webhook.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root/tests/bench/webhookload" && go build -o "$tmp/webhookload" main.go)

# The request: an AdmissionReview CREATE of the CIS kubeadm sample.
python3 - "$root/deploy/samples/cis-kubeadm.yaml" >"$tmp/review.json" <<'PY'
import json, sys, yaml
obj = yaml.safe_load(open(sys.argv[1]))
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
    "kind": {"group": "kubeletpolicy.io", "version": "v1alpha1", "kind": "KubeletPolicy"},
    "resource": {"group": "kubeletpolicy.io", "version": "v1alpha1", "resource": "kubeletpolicies"},
    "name": obj["metadata"]["name"], "operation": "CREATE",
    "userInfo": {"username": "admin"}, "object": obj, "dryRun": False}}))
PY
# The webhook server (writes ca.crt, tls.crt, tls.key into $tmp; reads review.json).
"$build/bench_webhook_server" "$tmp" >"$tmp/webhook.log" 2>&1 &
pids+=($!)
webhook_port=
for _ in $(seq 200); do
  read -r webhook_port canned_port < <(sed -n 's/^listening \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$tmp/webhook.log") || true
  [[ -n $webhook_port ]] && break
  sleep 0.1
done
[[ -n $webhook_port ]] || { echo "bench-webhook: the webhook server did not start:" >&2; cat "$tmp/webhook.log" >&2; exit 1; }
grep '^handler ' "$tmp/webhook.log" >&2

curl -sS --fail --cacert "$tmp/ca.crt" -H 'Content-Type: application/json' --data-binary @"$tmp/review.json" \
  "https://127.0.0.1:$webhook_port/validate-kubeletpolicy" >"$tmp/answer.json"
grep -q '"allowed":true' "$tmp/answer.json" || { echo "bench-webhook: the sample was not admitted:" >&2; cat "$tmp/answer.json" >&2; exit 1; }

# nginx with the same certificate, answering the webhook's answer verbatim.
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$tmp" "$nginx_port" <<'PY'
import sys
tmp, port = sys.argv[1], sys.argv[2]
answer = open(f"{tmp}/answer.json").read().strip().replace("\\", "\\\\").replace("'", "\\'")
open(f"{tmp}/nginx.conf", "w").write(f"""
user root;
worker_processes auto;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  client_body_buffer_size 1m;
  keepalive_requests 1000;
  keepalive_timeout 60s;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {tmp}/tls.crt;
    ssl_certificate_key {tmp}/tls.key;
    location / {{
      default_type application/json;
      return 200 '{answer}';
    }}
  }}
}}
""")
PY
"$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 50); do
  curl -sS --cacert "$tmp/ca.crt" -o /dev/null "https://127.0.0.1:$nginx_port/" 2>/dev/null && break
  sleep 0.1
done

ulimit -n 65536 2>/dev/null || true
echo "cpus: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg), duration ${duration} per run" >&2
declare -A rps p50 p99
for c in $conns; do
  for target in webhook canned nginx; do
    port=$webhook_port
    [[ $target == canned ]] && port=$canned_port
    [[ $target == nginx ]] && port=$nginx_port
    line=$("$tmp/webhookload" -addr "127.0.0.1:$port" -path /validate-kubeletpolicy -body "$tmp/review.json" \
      -ca "$tmp/ca.crt" -conns "$c" -duration "$duration" -expect '"allowed":true')
    printf '%-8s %s\n' "$target" "$line"
    rps[$target$c]=$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$line")
    p50[$target$c]=$(sed -E 's/.* p50_ms=([0-9.]+).*/\1/' <<<"$line")
    p99[$target$c]=$(sed -E 's/.* p99_ms=([0-9.]+).*/\1/' <<<"$line")
  done
done
echo
printf '%-6s %-8s %10s %10s %10s %18s\n' conns server rps p50_ms p99_ms "rps ratio to nginx"
for c in $conns; do
  for target in webhook canned nginx; do
    ratio=$(python3 -c "print(f'{${rps[$target$c]}/${rps[nginx$c]}:.2f}')")
    printf '%-6s %-8s %10s %10s %10s %18s\n' "$c" "$target" "${rps[$target$c]}" "${p50[$target$c]}" "${p99[$target$c]}" "$ratio"
  done
done
