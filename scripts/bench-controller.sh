#!/usr/bin/env bash
# Benchmark (not a test): for each node count, one control plane with N simulated nodes, then
# the controller once per /configz source — `kubelet` (direct, the default) and
# `apiserver-proxy` (the baseline: through the API server) — in the same invocation. For each:
# time from `kubectl apply` of the CIS policy to Ready, /configz fetches per second, the
# controller's CPU and RSS, and the direct/proxy ratio of time and CPU.
#   scripts/bench-controller.sh [NODES...] [-- extra `run` flags...]     (default: 1000 5000)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
counts=()
while [[ $# -gt 0 && $1 != -- ]]; do counts+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
[[ ${#counts[@]} -gt 0 ]] || counts=(1000 5000)
build=$(scripts/build.sh default kubelet-policy-controller | tail -n1)
bin=$build/kubelet-policy-controller
k() { e2e/testenv/kubectl "$@" 2>/dev/null; }

# run_mode STATE N SOURCE [flags...]: one measurement, printed as a table row.
run_mode() {
  local state=$1 n=$2 source=$3
  shift 3
  local log=$state/controller-$source.log
  local -a flags=(--configz-source "$source")
  if [[ $source == kubelet ]]; then
    # Simulated kubelets listen on their Hostname address (127.x); the InternalIP is only for
    # the API server's egress proxy.
    flags+=(--kubelet-preferred-address-types Hostname --kubelet-certificate-authority "$state/pki/kubelet-ca.crt")
  fi
  "$bin" run --kubeconfig "$state/controller.kubeconfig" --leader-elect-namespace kubelet-policy-system \
    --health-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --log-level warn "${flags[@]}" "$@" >"$log" 2>&1 &
  local pid=$!
  sleep 2  # caches synced, leader elected
  local t0 t1
  t0=$(date +%s.%N)
  k apply --server-side -f deploy/samples/cis-kubeadm.yaml >/dev/null
  k wait --for=condition=Ready kp/cis-kubeadm-kubelet --timeout=30m >/dev/null
  t1=$(date +%s.%N)
  local selected unknown ticks hz rss hwm
  selected=$(k get kp cis-kubeadm-kubelet -o jsonpath='{.status.summary.selectedNodes}')
  unknown=$(k get kp cis-kubeadm-kubelet -o jsonpath='{.status.summary.unknownNodes}')
  ticks=$(awk '{print $14 + $15}' /proc/$pid/stat)
  hz=$(getconf CLK_TCK)
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill $pid
  wait $pid 2>/dev/null || true
  k delete kp cis-kubeadm-kubelet --wait=true >/dev/null
  awk -v n="$n" -v src="$source" -v sel="$selected" -v unk="${unknown:-0}" -v c="$t0" -v d="$t1" \
      -v ticks="$ticks" -v hz="$hz" -v rss="$rss" -v hwm="$hwm" 'BEGIN {
    t = d - c; cpu = ticks / hz
    printf "%6d  %-16s %8d %8d %10.2f %10.1f %8.2f %8.1f %9.1f\n", n, src, sel, unk, t, sel / t, cpu, rss / 1024, hwm / 1024 }'
}

printf "%6s  %-16s %8s %8s %10s %10s %8s %8s %9s\n" nodes source selected unknown ready_s fetches/s cpu_s rss_mib peak_mib
for n in "${counts[@]}"; do
  state=/tmp/kpc-bench-$n
  up_start=$(date +%s.%N)
  export KUBECONFIG=$(e2e/testenv/up --state "$state" --nodes "$n" 2>/dev/null | tail -n1)
  up_end=$(date +%s.%N)
  trap 'e2e/testenv/down --state "$state" >/dev/null 2>&1' EXIT
  k apply --server-side -k deploy/overlays/out-of-cluster >/dev/null
  k wait --for=condition=Established crd/kubeletpolicies.kubeletpolicy.io --timeout=60s >/dev/null
  e2e/testenv/kubeconfig-for-sa --state "$state" --out "$state/controller.kubeconfig" \
    kubelet-policy-system kubelet-policy-controller >/dev/null 2>&1
  direct=$(run_mode "$state" "$n" kubelet "$@")
  echo "$direct"
  # The baseline needs the opt-in RBAC (get nodes/proxy): the apiserver-proxy component.
  tmp=$(mktemp -d)
  # (kustomize refuses absolute paths)
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s]\ncomponents: [%s]\n' \
    "$(realpath --relative-to="$tmp" "$root/deploy/overlays/out-of-cluster")" \
    "$(realpath --relative-to="$tmp" "$root/deploy/components/apiserver-proxy")" >"$tmp/kustomization.yaml"
  k apply --server-side -k "$tmp" >/dev/null
  rm -rf "$tmp"
  proxy=$(run_mode "$state" "$n" apiserver-proxy "$@")
  echo "$proxy"
  awk -v a="$direct" -v b="$proxy" -v up="$(awk -v a="$up_start" -v b="$up_end" 'BEGIN{print b-a}')" 'BEGIN {
    split(a, x); split(b, y)
    printf "%6d  direct/proxy: ready time x%.2f, controller CPU x%.2f, peak RSS x%.2f (testenv up %.0fs)\n",
           x[1], x[5] / y[5], x[7] / y[7], x[9] / y[9], up }'
  e2e/testenv/down --state "$state" >/dev/null 2>&1
  trap - EXIT
done
