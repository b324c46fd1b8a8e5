#!/usr/bin/env bash
# Runs every test of kubelet-policy-controller: installs what is missing, builds, runs the
# unit tests (normal and AddressSanitizer/UBSan builds), each fuzz target for a short while
# (scripts/fuzz.sh, KPC_FUZZ_SECONDS each, default 20; KPC_SKIP_FUZZ=1 skips them), then the
# e2e tests against the real local control plane of e2e/testenv. This is the README's test
# command and what CI runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh

passed=0
failed=0
count_ctest() {  # parses ctest's "N% tests passed, F tests failed out of T"
  local log=$1 line t f
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
  t=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  [[ -n $t && -n $f ]] || return 0
  passed=$((passed + t - f)); failed=$((failed + f))
}
status=0

echo "==> unit tests"
build=$(scripts/build.sh default | tail -n1)
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" 2>&1 | tee "$build/ctest.log" || status=1
count_ctest "$build/ctest.log"

if [[ ${KPC_SKIP_ASAN:-0} != 1 ]]; then
  echo "==> unit tests under AddressSanitizer/UBSan"
  asan=$(scripts/build.sh asan | tail -n1)
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$asan" --output-on-failure -j "$(nproc)" 2>&1 | tee "$asan/ctest.log" || status=1
  count_ctest "$asan/ctest.log"
fi

if [[ ${KPC_SKIP_FUZZ:-0} != 1 ]]; then
  echo "==> fuzz targets (libFuzzer, ASan/UBSan)"
  fuzz_log=$(mktemp)
  scripts/fuzz.sh "" "${KPC_FUZZ_SECONDS:-20}" 2>&1 | tee "$fuzz_log" || status=1
  # One test per target: its row of the table ("target seconds executions exec/s result").
  p=$(grep -cE '^[a-z0-9_]+ +[0-9]+ +[0-9]+ +[0-9]+ +ok$' "$fuzz_log" || true)
  f=$(grep -cE '^[a-z0-9_]+ +[0-9]+ +[0-9]+ +[0-9]+ +(crash|leak|timeout|oom|error)$' "$fuzz_log" || true)
  passed=$((passed + p)); failed=$((failed + f))
  rm -f "$fuzz_log"
fi

if [[ ${KPC_SKIP_E2E:-0} != 1 ]]; then
  echo "==> e2e tests (e2e/testenv)"
  KPC_BINARY="$build/kubelet-policy-controller" KPC_BUILD_DIR="$build" e2e/run.sh 2>&1 | tee "$build/e2e.log" || status=1
  # go test's per-test lines (subtests included), plus the client suite's ctest summary
  p=$(grep -cE '^\s*--- PASS' "$build/e2e.log" || true)
  f=$(grep -cE '^\s*--- FAIL' "$build/e2e.log" || true)
  passed=$((passed + p)); failed=$((failed + f))
  count_ctest "$build/e2e.log"
fi

echo "tests: $passed passed, $failed failed"
exit $status
