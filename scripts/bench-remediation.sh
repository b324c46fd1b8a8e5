#!/usr/bin/env bash
# Benchmark (not a test): an Enforce rollout over N simulated nodes. Every node starts
# non-compliant (the policy wants eventRecordQPS 7; the nodes run 5); prints the time from
# `kubectl apply` to every node remediated and verified, the Jobs created, the most Jobs seen
# running at once (sampled every 0.5 s), and the controller's CPU and memory.
#   scripts/bench-remediation.sh 100 [MAX_UNAVAILABLE (default 10%)] [extra `run` flags...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${1:?usage: bench-remediation.sh NODES [MAX_UNAVAILABLE] [run flags...]}
max_unavailable=${2:-10%}
shift $(( $# >= 2 ? 2 : 1 ))
state=/tmp/kpc-bench-remediation-$n
build=$(scripts/build.sh default kubelet-policy-controller | tail -n1)
bin=$build/kubelet-policy-controller

e2e/testenv/down --state "$state" >/dev/null 2>&1 || true   # nodes must start non-compliant
export KUBECONFIG=$(e2e/testenv/up --state "$state" --nodes "$n" --image-map "kubelet-policy-controller=$bin" 2>/dev/null | tail -n1)
k() { e2e/testenv/kubectl "$@" 2>/dev/null; }
k apply --server-side -k deploy/overlays/out-of-cluster >/dev/null
k wait --for=condition=Established crd/kubeletpolicies.kubeletpolicy.io --timeout=60s >/dev/null
sa=$(e2e/testenv/kubeconfig-for-sa --state "$state" --out "$state/controller.kubeconfig" kubelet-policy-system kubelet-policy-controller 2>/dev/null | tail -n1)
"$bin" run --kubeconfig "$sa" --leader-elect-namespace kubelet-policy-system \
  --health-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --log-level warn \
  --kubelet-preferred-address-types Hostname --kubelet-certificate-authority "$state/pki/kubelet-ca.crt" \
  --agent-image kubelet-policy-controller:bench --agent-host-path /run/testenv \
  --kubelet-restart-command "$state/bin/testenv restart-kubelet --host-root /host" "$@" \
  >"$state/controller.log" 2>&1 &
pid=$!
sampler=
trap 'kill $pid $sampler 2>/dev/null; e2e/testenv/down --state "$state" >/dev/null 2>&1' EXIT
sleep 2  # caches synced, leader elected

( max=0
  while :; do
    running=$(k get jobs -n kubelet-policy-remediation -l kubeletpolicy.io/job-type=remediate \
      -o jsonpath='{range .items[*]}{.status.completionTime}{"|"}{.status.failed}{"\n"}{end}' | grep -c '^|$' || true)
    (( running > max )) && max=$running && echo "$max" >"$state/max-running"
    sleep 0.5
  done ) &
sampler=$!
echo 0 >"$state/max-running"

t0=$(date +%s.%N)
k apply --server-side -f - >/dev/null <<YAML
apiVersion: kubeletpolicy.io/v1alpha1
kind: KubeletPolicy
metadata: {name: bench-remediation}
spec:
  enforcement: Enforce
  remediation: {maxUnavailable: "$max_unavailable", timeout: 2m}
  rules:
    - id: event-record-qps
      config: {path: eventRecordQPS, operator: Equals, value: 7}
      remediation: {value: 7}
YAML
k wait --for=jsonpath='{.status.summary.compliantNodes}'="$n" kp/bench-remediation --timeout=60m >/dev/null
t1=$(date +%s.%N)
jobs=$(k get jobs -n kubelet-policy-remediation -l kubeletpolicy.io/job-type=remediate -o name | wc -l)
ticks=$(awk '{print $14 + $15}' /proc/$pid/stat)
hz=$(getconf CLK_TCK)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
awk -v n="$n" -v mu="$max_unavailable" -v c="$t0" -v d="$t1" -v jobs="$jobs" -v maxr="$(cat "$state/max-running")" \
    -v ticks="$ticks" -v hz="$hz" -v hwm="$hwm" 'BEGIN {
  t = d - c
  printf "nodes=%d maxUnavailable=%s apply_to_all_compliant_s=%.1f nodes_per_min=%.1f jobs=%d max_jobs_running_sampled=%d controller_cpu_s=%.2f peak_rss_mib=%.1f\n",
         n, mu, t, n / t * 60, jobs, maxr, ticks / hz, hwm / 1024 }'
