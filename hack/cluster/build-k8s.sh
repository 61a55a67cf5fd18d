#!/usr/bin/env bash
# Builds the Kubernetes binaries the local cluster needs from the k8s.io/kubernetes
# Go module, through a throw-away wrapper module, into "$1" (the versioned cache bin dir).
#
# Why a wrapper: k8s.io/kubernetes' go.mod replaces every k8s.io/* staging module with a
# ./staging path that does not exist in the module zip, so `go install k8s.io/kubernetes/...@v`
# fails. The wrapper requires k8s.io/kubernetes and points each of those replaces at the
# published v0.Y.Z tag instead. The list is read from the release's own go.mod so another patch
# release needs no edits here.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:?K8S_VERSION must be set (e.g. v1.34.4)}"
CRICTL_VERSION="${CRICTL_VERSION:?CRICTL_VERSION must be set (e.g. v1.34.0)}"
out="${1:?usage: build-k8s.sh OUT_DIR}"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# Go may be installed without being on PATH (e.g. under a minimal CI environment).
command -v go > /dev/null || export PATH="/usr/local/go/bin:$PATH"
command -v go > /dev/null || { echo "$(basename "$0"): Go (1.24+) is required" >&2; exit 1; }
# GOPROXY is left as configured; the module proxy is the only source we need.

staging_version="v0.${K8S_VERSION#v1.}"
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"

work="$(dirname "$out")/build"
rm -rf "$work"
mkdir -p "$work" "$out"
cd "$work"

cat > go.mod <<GOMOD
module conveyor.local/k8s-build

go 1.24.0

require k8s.io/kubernetes ${K8S_VERSION}
GOMOD

upstream_mod="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"

# godebug settings only take effect from the main module: carry upstream's over so the
# binaries behave as the released ones do.
grep -E '^godebug ' "$upstream_mod" >> go.mod || true

# Every "k8s.io/x => ./staging/..." line becomes "k8s.io/x => k8s.io/x v0.Y.Z".
mapfile -t staged < <(sed -nE 's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[A-Za-z0-9._-]+)[[:space:]]+=>[[:space:]]+\./staging/.*#\2#p' "$upstream_mod")
if [ "${#staged[@]}" -eq 0 ]; then
  echo "build-k8s: found no staging replaces in $upstream_mod" >&2
  exit 1
fi
{
  echo
  echo "replace ("
  for m in "${staged[@]}"; do echo "	$m => $m ${staging_version}"; done
  echo ")"
} >> go.mod
echo "build-k8s: ${#staged[@]} staging modules pinned to ${staging_version}"

build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION}"
  ldflags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
  ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${build_date}"
done

pkgs=()
for b in "${binaries[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done

start=$(date +%s)
go build -trimpath -tags notest -ldflags "$ldflags" -o "$out/" "${pkgs[@]}"
secs=$(( $(date +%s) - start ))
for b in "${binaries[@]}"; do test -x "$out/$b"; done
echo "build-k8s: built ${binaries[*]} ${K8S_VERSION} in ${secs}s"

# crictl lets `cluster.sh down` remove pod sandboxes through the CRI, so the network
# namespaces, veths and IP leases are released the same way the kubelet would.
# Its module has no replace directives, so a plain `go install` works.
start=$(date +%s)
GOFLAGS='' GOBIN="$out" go install -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}" \
  "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"
crictl_secs=$(( $(date +%s) - start ))
echo "build-k8s: built crictl ${CRICTL_VERSION} in ${crictl_secs}s"

printf '%s built %s in %ss and crictl %s in %ss on %s cores\n' "$build_date" "$K8S_VERSION" "$secs" \
  "$CRICTL_VERSION" "$crictl_secs" "$(nproc)" >> "$(dirname "$out")/build-times.log"
echo "${K8S_VERSION} ${CRICTL_VERSION}" > "$out/.complete"
