# shellcheck shell=bash
# Shared by up, down, kubectl and kubeconfig-for-sa: finds (and builds when missing)
# the testenv binary. Sourced, not run.

TESTENV_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TESTENV_CACHE="${KPC_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubelet-policy-controller/testenv}"
# The Kubernetes release the binary embeds (keep in sync with go.mod).
TESTENV_K8S_VERSION="v1.34.10"

testenv_state_from_args() {
  # Prints the --state value among "$@" (or the default).
  local state="${KPC_TESTENV_STATE:-/tmp/kpc-testenv}" prev=""
  for a in "$@"; do
    case "$a" in
      --state=*) state="${a#--state=}" ;;
      *) [ "$prev" = "--state" ] && state="$a" ;;
    esac
    prev="$a"
  done
  printf '%s\n' "$state"
}

testenv_hash() {
  # Content hash of everything that goes into the binary (sources, modules, build flags).
  (
    cd "$TESTENV_SRC"
    {
      echo "$TESTENV_K8S_VERSION"
      go env GOVERSION GOOS GOARCH 2>/dev/null
      cat go.mod go.sum lib.sh
      find cmd -type f -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | while read -r f; do
        echo "$f"; cat "$f"
      done
    } | sha256sum | cut -c1-16
  )
}

# testenv_binary prints the path of an up-to-date binary, building it if needed.
testenv_binary() {
  local hash bin
  hash="$(testenv_hash)"
  bin="$TESTENV_CACHE/testenv-$hash"
  if [ ! -x "$bin" ]; then
    command -v go >/dev/null || { echo "testenv: Go is required to build the test environment" >&2; return 1; }
    mkdir -p "$TESTENV_CACHE"
    local major minor start end
    major="${TESTENV_K8S_VERSION#v}"; major="${major%%.*}"
    minor="${TESTENV_K8S_VERSION#v*.}"; minor="${minor%%.*}"
    local ld="-s -w"
    local pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $pkg.gitVersion=$TESTENV_K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitCommit=$TESTENV_K8S_VERSION"
    done
    echo "testenv: building $bin (Kubernetes $TESTENV_K8S_VERSION; a cold build takes several minutes)" >&2
    start=$(date +%s)
    (
      cd "$TESTENV_SRC"
      # -mod=readonly: go.mod and go.sum are committed and complete.
      CGO_ENABLED=0 go build -mod=readonly -buildvcs=false -trimpath -ldflags="$ld" -o "$bin.tmp.$$" ./cmd/testenv
    ) || { rm -f "$bin.tmp.$$"; echo "testenv: build failed" >&2; return 1; }
    mv -f "$bin.tmp.$$" "$bin"
    end=$(date +%s)
    echo "testenv: build took $((end - start))s" >&2
    # Keep the cache small: drop builds beyond the newest three that are over a day old
    # (environments run their own hard link, so this never breaks a running one).
    ls -1t "$TESTENV_CACHE"/testenv-* 2>/dev/null | tail -n +4 |
      while read -r old; do find "$old" -maxdepth 0 -mmin +1440 -delete 2>/dev/null || true; done
  else
    [ -z "${TESTENV_VERBOSE:-}" ] || echo "testenv: using cached build $bin" >&2
  fi
  printf '%s\n' "$bin"
}
