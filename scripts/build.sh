#!/usr/bin/env bash
# Configures and builds the C++ project; prints the build directory as its last line.
#   scripts/build.sh            release-ish build (RelWithDebInfo)
#   scripts/build.sh asan       AddressSanitizer + UBSan build
#   scripts/build.sh fuzz       libFuzzer targets of tests/fuzz (clang, ASan + UBSan); builds
#                               only them (target kpc_fuzz) unless targets are named
#   scripts/build.sh default kubelet-policy-controller   only that target
# Build trees live outside the repository (keyed by the checkout path), so a warm rebuild in
# the same checkout is incremental; ccache, when installed, makes fresh clones fast too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
flavor=${1:-default}
targets=("${@:2}")
cache=${KPC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubelet-policy-controller}
key=$(printf '%s' "$root" | sha256sum | cut -c1-12)
build=${KPC_BUILD_DIR:-$cache/build-$key-$flavor}
mkdir -p "$build"

args=(-S "$root" -B "$build" -G Ninja)
case "$flavor" in
  default) args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) args+=(-DCMAKE_BUILD_TYPE=Debug -DKPC_SANITIZE=ON) ;;
  fuzz)
    # -O1: what libFuzzer's documentation suggests with ASan (fast, still precise reports);
    # no -DNDEBUG, so assertions stay.
    export CC=clang CXX=clang++
    args+=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
           "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" -DKPC_FUZZ=ON -DKPC_BUILD_TESTS=OFF)
    ((${#targets[@]})) || targets=(kpc_fuzz)
    ;;
  *) echo "build.sh: unknown flavor '$flavor' (default|asan|fuzz)" >&2; exit 2 ;;
esac
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_DIR=${CCACHE_DIR:-$cache/ccache}
  # Paths relative to the checkout: a fresh clone elsewhere (CI, a worktree) hits the cache.
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
  args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake "${args[@]}" >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" ${targets[@]:+--target "${targets[@]}"} >&2
echo "$build"
