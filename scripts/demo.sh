#!/usr/bin/env bash
# The demo: a real local control plane (e2e/testenv) with simulated kubelet nodes, the two
# processes of the controller - the operator (`run`) and the admission webhooks (`webhook`) -
# each running as its own ServiceAccount, and the CIS sample policy applied.
#   scripts/demo.sh          bring it all up and show the results
#   scripts/demo.sh down     stop both processes and the control plane
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state=${KPC_DEMO_STATE:-/tmp/kpc-demo}
policy=cis-kubeadm-kubelet

# Stops the process whose pid is in $state/NAME.pid (started by an earlier demo).
stop_process() {
  if [[ -f $state/$1.pid ]]; then
    kill "$(cat "$state/$1.pid")" 2>/dev/null || true
    rm -f "$state/$1.pid"
  fi
}
stop_processes() {
  stop_process controller
  stop_process webhook
}

if [[ ${1:-} == down ]]; then
  stop_processes
  exec e2e/testenv/down --state "$state"
fi

scripts/install-deps.sh
echo "==> building kubelet-policy-controller" >&2
build=$(scripts/build.sh default kubelet-policy-controller | tail -n1)
bin="$build/kubelet-policy-controller"

echo "==> starting the local control plane with simulated nodes (the first run builds Kubernetes from Go modules: ~20 min)" >&2
kubeconfig=$(e2e/testenv/up --state "$state" --nodes-dir e2e/demo/nodes --image-map "kubelet-policy-controller=$bin" | tail -n1)
export KUBECONFIG=$kubeconfig
kubectl() { "$root/e2e/testenv/kubectl" "$@"; }

echo "==> installing the CRD, namespaces, both ServiceAccounts, RBAC (kubectl apply -k deploy/overlays/out-of-cluster) and the webhook configurations" >&2
# A previous demo's webhook process (--local-webhooks below) rewrote the webhook
# configurations to its local URL: start again from deploy/'s.
kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration kubelet-policy-controller --ignore-not-found >/dev/null
kubectl apply --server-side -k deploy/overlays/out-of-cluster >/dev/null
kubectl apply --server-side -f deploy/base/webhooks.yaml >/dev/null
kubectl wait --for=condition=Established crd/kubeletpolicies.kubeletpolicy.io --timeout=60s >/dev/null

stop_processes
mkdir -p "$state/logs"
echo "==> starting the admission webhooks as system:serviceaccount:kubelet-policy-system:kubelet-policy-controller-webhook" >&2
webhook_kubeconfig=$(e2e/testenv/kubeconfig-for-sa --state "$state" --out "$state/webhook.kubeconfig" kubelet-policy-system kubelet-policy-controller-webhook | tail -n1)
# --local-webhooks: the admission webhooks are served on 127.0.0.1:18443 and registered by URL
# (the local control plane cannot reach an in-cluster Service).
setsid "$bin" webhook --kubeconfig "$webhook_kubeconfig" --leader-elect-namespace kubelet-policy-system \
  --webhook-namespace kubelet-policy-system --health-addr 127.0.0.1:18091 --metrics-addr 127.0.0.1:18090 \
  --local-webhooks --webhook-addr 127.0.0.1:18443 --webhook-cert-sync-period 1s \
  >"$state/logs/webhook.log" 2>&1 < /dev/null &
echo $! >"$state/webhook.pid"

echo "==> starting the operator as system:serviceaccount:kubelet-policy-system:kubelet-policy-controller" >&2
sa_kubeconfig=$(e2e/testenv/kubeconfig-for-sa --state "$state" --out "$state/controller.kubeconfig" kubelet-policy-system kubelet-policy-controller | tail -n1)
# /configz straight from each simulated kubelet, as in a cluster: on its Hostname address
# (127.x; the InternalIP is only for the API server's egress proxy), verified with the testenv's
# kubelet CA, with tokens of the kubelet-client ServiceAccount. Remediation Jobs run the same
# binary (the fleet maps the image to it) and restart simulated kubelets the fleet's way.
setsid "$bin" run --kubeconfig "$sa_kubeconfig" --leader-elect-namespace kubelet-policy-system \
  --health-addr 127.0.0.1:18081 --metrics-addr 127.0.0.1:18080 \
  --kubelet-preferred-address-types Hostname --kubelet-certificate-authority "$state/pki/kubelet-ca.crt" \
  --agent-image kubelet-policy-controller:demo --agent-host-path /run/testenv \
  --kubelet-restart-command "$state/bin/testenv restart-kubelet --host-root /host" \
  >"$state/logs/controller.log" 2>&1 < /dev/null &
echo $! >"$state/controller.pid"
# Policy writes go through the webhook (failurePolicy Fail): wait until it answers.
for _ in $(seq 60); do
  kubectl apply --server-side --dry-run=server -f deploy/samples/cis-kubeadm.yaml >/dev/null 2>&1 && break
  sleep 1
done

echo "==> applying the CIS sample policy" >&2
echo "\$ kubectl apply -f deploy/samples/cis-kubeadm.yaml"
kubectl apply --server-side -f deploy/samples/cis-kubeadm.yaml
echo "\$ kubectl wait --for=condition=Ready kp/$policy"
kubectl wait --for=condition=Ready "kp/$policy" --timeout=120s

echo
echo "\$ kubectl get nodes -L pool"
kubectl get nodes -L pool
echo
echo "\$ kubectl get kubeletpolicy"
kubectl get kubeletpolicy
echo
echo "Non-compliant nodes and their failed rules (status.nodes):"
kubectl get kp "$policy" -o jsonpath='{range .status.nodes[*]}{.name}{"\t"}{.state}{"\t"}{.failedRules}{"\t"}{.message}{"\n"}{end}' |
  awk -F'\t' '{printf "  %-10s %-13s %s\n      %s\n", $1, $2, $3, $4}'
echo
echo "\$ kubectl get events --field-selector involvedObject.kind=KubeletPolicy"
kubectl get events --field-selector involvedObject.kind=KubeletPolicy -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message | cut -c1-160

show_nodes() {
  kubectl get kp "$policy" -o jsonpath='{range .status.nodes[*]}{.name}{"\t"}{.state}{"\t"}{.message}{"\n"}{end}' |
    awk -F'\t' '{printf "  %-16s %-19s %s\n", $1, $2, substr($3, 1, 150)}'
}
echo
echo "==> DryRun: the exact change each non-compliant node would get, and no Job" >&2
echo "\$ kubectl patch kp $policy --type=merge -p '{\"spec\":{\"enforcement\":\"DryRun\"}}'"
kubectl patch kp "$policy" --type=merge -p '{"spec":{"enforcement":"DryRun"}}'
kubectl wait --for=jsonpath='{.status.observedGeneration}'="$(kubectl get kp "$policy" -o jsonpath='{.metadata.generation}')" "kp/$policy" --timeout=60s >/dev/null
kubectl wait --for=condition=Ready "kp/$policy" --timeout=120s >/dev/null
show_nodes

echo
echo "==> Enforce: remediation Jobs, one node at a time (maxUnavailable: 1), each verified through /configz" >&2
echo "\$ kubectl patch kp $policy --type=merge -p '{\"spec\":{\"enforcement\":\"Enforce\"}}'"
kubectl patch kp "$policy" --type=merge -p '{"spec":{"enforcement":"Enforce"}}'
kubectl wait --for=jsonpath='{.status.observedGeneration}'="$(kubectl get kp "$policy" -o jsonpath='{.metadata.generation}')" "kp/$policy" --timeout=60s >/dev/null
echo "\$ kubectl wait --for=condition=Ready kp/$policy --timeout=5m"
kubectl wait --for=condition=Ready "kp/$policy" --timeout=300s
echo "\$ kubectl get kubeletpolicy -o wide"
kubectl get kubeletpolicy -o wide
echo "Nodes still not compliant (rules without a remediation value stay report-only):"
show_nodes
echo
echo "\$ kubectl get jobs -n kubelet-policy-remediation"
kubectl get jobs -n kubelet-policy-remediation
echo
echo "\$ kubectl get events --field-selector involvedObject.kind=KubeletPolicy,reason=RemediationSucceeded"
kubectl get events --field-selector involvedObject.kind=KubeletPolicy,reason=RemediationSucceeded -o custom-columns=REASON:.reason,MESSAGE:.message | cut -c1-160

cat <<EOT

Explore (export KUBECONFIG=$kubeconfig first):
  e2e/testenv/kubectl get kp -o wide
  e2e/testenv/kubectl get kp $policy -o yaml
  e2e/testenv/kubectl explain kubeletpolicy.spec.rules
  e2e/testenv/kubectl get events -A
  e2e/testenv/kubectl get --raw /api/v1/nodes/worker-3/proxy/configz
  curl -s 127.0.0.1:18080/metrics | grep kubeletpolicy_                   # the operator
  curl -s 127.0.0.1:18090/metrics | grep kubeletpolicy_admission          # the webhooks
  $bin check --policy deploy/samples/cis-kubeadm.yaml --configz <file>   # the same checks, offline
Logs: $state/logs/controller.log (operator), $state/logs/webhook.log (webhooks); control plane: $state/logs/
Stop it all:
  scripts/demo.sh down
EOT
