#!/usr/bin/env bash
# Benchmark (not a test): time from `kubectl apply` of the CIS policy to Ready, the controller's
# RSS and CPU, and /configz fetches per second, for N simulated nodes.
#   scripts/bench-controller.sh 100 [extra `run` flags...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${1:?usage: bench-controller.sh NODES [run flags...]}
shift
state=/tmp/kpc-bench-$n
build=$(scripts/build.sh default kubelet-policy-controller | tail -n1)
bin=$build/kubelet-policy-controller

up_start=$(date +%s.%N)
export KUBECONFIG=$(e2e/testenv/up --state "$state" --nodes "$n" 2>/dev/null | tail -n1)
up_end=$(date +%s.%N)
k() { e2e/testenv/kubectl "$@" 2>/dev/null; }
k apply --server-side -k deploy/overlays/out-of-cluster >/dev/null
k wait --for=condition=Established crd/kubeletpolicies.kubeletpolicy.io --timeout=60s >/dev/null
sa=$(e2e/testenv/kubeconfig-for-sa --state "$state" --out "$state/controller.kubeconfig" kubelet-policy-system kubelet-policy-controller 2>/dev/null | tail -n1)
"$bin" run --kubeconfig "$sa" --leader-elect-namespace kubelet-policy-system \
  --health-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --log-level warn "$@" >"$state/controller.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; e2e/testenv/down --state "$state" >/dev/null 2>&1' EXIT
sleep 2  # caches synced, leader elected

t0=$(date +%s.%N)
k apply --server-side -f deploy/samples/cis-kubeadm.yaml >/dev/null
k wait --for=condition=Ready kp/cis-kubeadm-kubelet --timeout=30m >/dev/null
t1=$(date +%s.%N)
selected=$(k get kp cis-kubeadm-kubelet -o jsonpath='{.status.summary.selectedNodes}')
ticks=$(awk '{print $14 + $15}' /proc/$pid/stat)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
awk -v n="$n" -v sel="$selected" -v up="$up_end - $up_start" -v a="$up_start" -v b="$up_end" -v c="$t0" -v d="$t1" \
    -v ticks="$ticks" -v hz="$hz" -v rss="$rss" -v hwm="$hwm" 'BEGIN {
  up = b - a; t = d - c; cpu = ticks / hz
  printf "nodes=%d selected=%d testenv_up_s=%.1f apply_to_ready_s=%.2f configz_fetches_per_s=%.1f controller_cpu_s=%.2f rss_mib=%.1f peak_rss_mib=%.1f\n",
         n, sel, up, t, sel / t, cpu, rss / 1024, hwm / 1024 }'
