#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (scripts/build.sh fuzz: clang, ASan + UBSan) and
# runs them, one after the other, for SECONDS each; prints a table (target, seconds,
# executions, exec/s, result) and exits non-zero when any target found a crash, a leak, a
# timeout or an out-of-memory input.
#   scripts/fuzz.sh                  every target, 25 s each
#   scripts/fuzz.sh config_edit 600  one target, 10 minutes
# Each target starts from its seeds (tests/fuzz/seeds/<target>.txt: files of tests/testdata,
# deploy/ and ../shared/data, collected here; nothing is copied into the repository) plus the
# corpus earlier runs grew, kept under the build cache (not in the repository). A failing
# input is copied to tests/fuzz/regressions/<target>/: commit it, and ctest's
# fuzz_replay.<target> replays it in every unit test run from then on.
# Extra libFuzzer flags: KPC_FUZZ_ARGS="-use_value_profile=1".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

all=(policy admission http_parse http1_response configz_eval agent_result kubelet_flags
     config_edit flags_edit host_fs)
# Largest input per target: each well above the seeds it mutates, small enough that every
# execution stays fast.
declare -A max_len=(
  [policy]=16384 [admission]=16384 [http_parse]=8192 [http1_response]=8192
  [configz_eval]=16384 [agent_result]=8192 [kubelet_flags]=8192 [config_edit]=8192
  [flags_edit]=4096 [host_fs]=2048
)

# Tokens that mutations alone rarely build (tests/fuzz/dicts/).
declare -A dict=(
  [policy]=json_yaml [admission]=json_yaml [http_parse]=http [http1_response]=http
  [configz_eval]=json_yaml [agent_result]=json_yaml [kubelet_flags]=flags [config_edit]=json_yaml
  [flags_edit]=flags [host_fs]=host_fs
)

targets=("${all[@]}")
if [[ -n ${1:-} ]]; then
  [[ -n ${max_len[$1]:-} ]] || { echo "fuzz.sh: unknown target '$1' (${all[*]})" >&2; exit 2; }
  targets=("$1")
fi
seconds=${2:-25}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a number" >&2; exit 2; }

cache=${KPC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubelet-policy-controller}
key=$(printf '%s' "$root" | sha256sum | cut -c1-12)
work=$cache/fuzz-$key
shared=$root/../shared/data

build=$(scripts/build.sh fuzz "${targets[@]/%/_fuzz}" | tail -n1)

# Copies the files a seed list names into $2 (see tests/fuzz/replay_main.cpp for the format).
collect_seeds() {
  local list=$1 dir=$2 line base pattern n=0 matched f
  rm -rf "$dir" && mkdir -p "$dir"
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    line=$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<<"$line")
    [[ -n $line ]] || continue
    case $line in
      source:*) base=$root ;;
      shared:*) base=$shared ;;
      *) echo "fuzz.sh: $list: want source:PATTERN or shared:PATTERN: $line" >&2; return 1 ;;
    esac
    pattern=$base/${line#*:}
    matched=0
    while IFS= read -r f; do
      [[ -f $f ]] || continue
      n=$((n + 1)); matched=1
      cp "$f" "$dir/$n-$(basename "$f")"
    done < <(compgen -G "$pattern" || true)
    ((matched)) || { echo "fuzz.sh: $list: $pattern matches no file" >&2; return 1; }
  done <"$list"
}

# 1 MiB of stack instead of the usual 8 MiB: the code must not recurse on untrusted input
# beyond its nesting limits (policy/limits.h), and with an eighth of a production thread's
# stack (ASan's larger frames included) recursion the limits fail to bound overflows here,
# on inputs of -max_len bytes, instead of passing unnoticed.
ulimit -s 1024

printf '%-16s %8s %12s %8s  %s\n' target seconds executions exec/s result
status=0
for t in "${targets[@]}"; do
  corpus=$work/corpus/$t seeds=$work/seeds/$t artifacts=$work/artifacts/$t
  log=$work/logs/$t.log tmp=$work/tmp/$t
  # Scratch trees (host_fs, kubelet_flags) in memory when possible: the agent fsyncs its writes.
  [[ -d /dev/shm && -w /dev/shm ]] && tmp=/dev/shm/kpc-fuzz-$key-$t
  mkdir -p "$corpus" "$work/logs"
  rm -rf "$artifacts" "$tmp" && mkdir -p "$artifacts" "$tmp"
  result=ok
  if ! collect_seeds "tests/fuzz/seeds/$t.txt" "$seeds"; then
    printf '%-16s %8s %12s %8s  %s\n' "$t" 0 0 0 error
    status=1
    continue
  fi
  start=$(date +%s)
  rc=0
  # shellcheck disable=SC2086  # KPC_FUZZ_ARGS holds several flags
  TMPDIR=$tmp ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/${t}_fuzz" -max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=10 \
    -rss_limit_mb=2048 -dict="tests/fuzz/dicts/${dict[$t]}.dict" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    ${KPC_FUZZ_ARGS:-} "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
  elapsed=$(($(date +%s) - start))
  rm -rf "$tmp"
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n1)
  found=()
  for f in "$artifacts"/*; do [[ -f $f ]] && found+=("$f"); done
  ((rc == 0)) || result=error
  for f in "${found[@]}"; do
    case $(basename "$f") in
      crash-*) result=crash ;; leak-*) result=leak ;; timeout-*) result=timeout ;;
      oom-*) result=oom ;; *) continue ;;  # slow-unit-*: reported, not a failure
    esac
    mkdir -p "tests/fuzz/regressions/$t"
    cp "$f" "tests/fuzz/regressions/$t/"
    echo "fuzz.sh: $t: $result: kept tests/fuzz/regressions/$t/$(basename "$f");" \
      "commit it (ctest fuzz_replay.$t replays it)" >&2
  done
  if [[ $result != ok ]]; then
    status=1
    echo "fuzz.sh: $t: $result, see $log" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*property failed)' "$log" | head -n 5 >&2 || true
  fi
  printf '%-16s %8s %12s %8s  %s\n' "$t" "$elapsed" "${execs:-0}" "${rate:-0}" "$result"
done
exit $status
