#!/usr/bin/env bash
# Runs the end-to-end suites against real control planes of e2e/testenv:
#   1. e2e/testenv/tests          — the control plane itself (its own environment and nodes)
#   2. one shared environment with the nodes of e2e/testenv/controllertests/nodes for
#      - the C++ Kubernetes client's integration tests (kube_testenv_tests), and
#      - the controller's e2e tests (e2e/testenv/controllertests), driven with kubectl, and
#      - deploy/test: the install manifests, Helm chart and GitOps health checks.
# Needs KPC_BINARY (the built kubelet-policy-controller) and KPC_BUILD_DIR (its build tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${KPC_BINARY:?set KPC_BINARY to the built kubelet-policy-controller}"
build_dir=${KPC_BUILD_DIR:-$(dirname "$KPC_BINARY")}
status=0
cd "$root/e2e/testenv"

# Build the control plane first (a cold build takes minutes), outside go test's timeout.
( . ./lib.sh && testenv_binary >/dev/null )

echo "--- e2e/testenv: the control plane" >&2
go test ./tests/ -count=1 -v -timeout 30m || status=1

state=${KPC_E2E_STATE:-/tmp/kpc-e2e-$$}
echo "--- shared environment for the client and controller suites: $state" >&2
kubeconfig=$(./up --state "$state" --nodes-dir controllertests/nodes --image-map "kubelet-policy-controller=$KPC_BINARY" | tail -n1)
trap './down --state "$state" >/dev/null 2>&1 || true' EXIT

echo "--- C++ Kubernetes client against the real API server" >&2
KPC_TESTENV_KUBECONFIG=$kubeconfig KPC_TESTENV_STATE=$state \
  ctest --test-dir "$build_dir" -R '^TestenvTest\.' --output-on-failure || status=1

echo "--- controller e2e" >&2
KPC_TESTENV_STATE=$state KPC_BINARY=$KPC_BINARY go test ./controllertests/ -count=1 -v -timeout 40m || status=1

# deploy/test is its own Go module (Helm, kustomize, cli-utils, gopher-lua), so its
# dependencies never touch the control plane's module graph.
echo "--- deploy: overlays, Helm chart, Argo CD health check, kstatus (deploy/test)" >&2
( cd "$root/deploy/test" && KPC_TESTENV_STATE=$state KPC_BINARY=$KPC_BINARY go test ./ -count=1 -v -timeout 20m ) || status=1
exit $status
