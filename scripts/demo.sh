#!/usr/bin/env bash
# The demo: a real local control plane (e2e/testenv) with simulated kubelet nodes, the
# KubeletPolicy CRD and the CIS sample policy applied, and each node's live /configz checked
# against the policy.
#   scripts/demo.sh          bring it up and show the results
#   scripts/demo.sh down     stop the control plane
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state=${KPC_DEMO_STATE:-/tmp/kpc-demo}

if [[ ${1:-} == down ]]; then
  exec e2e/testenv/down --state "$state"
fi

scripts/install-deps.sh
echo "==> building kubelet-policy-controller" >&2
build=$(scripts/build.sh default | tail -n1)
bin="$build/kubelet-policy-controller"

echo "==> starting the local control plane with simulated nodes (first run builds Kubernetes: ~15-25 min)" >&2
kubeconfig=$(e2e/testenv/up --state "$state" --nodes-dir e2e/demo/nodes --image-map "kubelet-policy-controller=$bin" | tail -n1)
export KUBECONFIG=$kubeconfig
kubectl() { "$root/e2e/testenv/kubectl" "$@"; }

echo "==> installing the KubeletPolicy CRD and the CIS sample policy" >&2
kubectl apply --server-side -f crds/kubeletpolicy.io_kubeletpolicies.yaml >/dev/null
kubectl wait --for=condition=Established crd/kubeletpolicies.kubeletpolicy.io --timeout=60s >/dev/null
kubectl apply --server-side -f deploy/samples/cis-kubeadm.yaml

echo
echo "\$ kubectl get nodes -L pool"
kubectl get nodes -L pool

# Until the controller lands (issue 4), the demo reads each selected node's live /configz
# through the API server and evaluates it with `check`, exactly as the controller will.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for n in $(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{.items[*].metadata.name}'); do
  kubectl get --raw "/api/v1/nodes/$n/proxy/configz" >"$dir/$n.json"
done
echo
echo "\$ kubelet-policy-controller check --policy deploy/samples/cis-kubeadm.yaml --configz <live configz of the worker nodes>"
set +e
"$bin" check --policy deploy/samples/cis-kubeadm.yaml --configz "$dir"
set -e

cat <<EOT

Explore:
  export KUBECONFIG=$kubeconfig
  e2e/testenv/kubectl get kp
  e2e/testenv/kubectl explain kubeletpolicy.spec.rules
  e2e/testenv/kubectl get --raw /api/v1/nodes/worker-3/proxy/configz
  $bin check --help
Stop it:
  scripts/demo.sh down
EOT
