#!/usr/bin/env bash
# Builds kwok (fake nodes whose pods "run" without a kubelet) for the operator's scale
# benchmark, and copies the stage files it needs from its module. Optional: nothing else in
# the cluster uses it. Prints the directory holding `kwok` and `stages/`.
#   usage: build-kwok.sh CACHE_DIR
set -euo pipefail

KWOK_VERSION=v0.7.0
out="${1:?usage: build-kwok.sh CACHE_DIR}/kwok-${KWOK_VERSION}"
command -v go > /dev/null || export PATH="/usr/local/go/bin:$PATH"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

if [ ! -x "$out/kwok" ] || [ ! -s "$out/stages/pod-complete.yaml" ]; then
  start=$(date +%s)
  mkdir -p "$out/stages"
  GOBIN="$out" go install "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  module="$(go mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  # Nodes become Ready and keep a heartbeat; pods of Jobs start and complete at once.
  for stage in node/fast/node-initialize node/heartbeat/node-heartbeat \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    install -m 0644 "$module/kustomize/stage/$stage.yaml" "$out/stages/"
  done
  echo "build-kwok: built kwok ${KWOK_VERSION} in $(( $(date +%s) - start ))s" >&2
fi
echo "$out"
