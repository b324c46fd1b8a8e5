#!/usr/bin/env bash
# Prints rule evaluations per second for the CIS kubeadm profile on a real /configz sample.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$("$root/scripts/build.sh" default | tail -n1)
policy=${1:-$root/deploy/samples/cis-kubeadm.yaml}
configz=${2:-$root/../shared/data/kubelet/configz-kubeadm-v1.28.json}
"$build/bench_evaluate" "$policy" "$configz" "${3:-3}"
