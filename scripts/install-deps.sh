#!/usr/bin/env bash
# Installs what building and testing kubelet-policy-controller needs on a Debian 12 machine:
# the C++ toolchain and libraries from Debian packages (clang 14 for the fuzz targets). Go (for
# e2e/testenv) must already be installed; its modules come from the Go module proxy when
# e2e/testenv is built.
# Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libcpprest-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libssl-dev libcli11-dev
  libgtest-dev libgmock-dev ccache
  clang libclang-rt-14-dev  # scripts/fuzz.sh: clang with libFuzzer and the sanitizer runtimes
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: Go is required for e2e/testenv; not found on PATH" >&2
  exit 1
fi
