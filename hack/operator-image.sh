#!/usr/bin/env bash
# Builds the operator's container image from this checkout, without a registry or a docker
# engine, and loads it into the local cluster's containerd as localhost/conveyor/operator:dev.
#
#   hack/operator-image.sh            build (if the sources changed) and import
#
# The image is the cluster's tools image (Debian minbase with python3) plus one layer holding
# Conveyor and its dependencies, installed with pip into /opt/conveyor. The host's Python
# builds the layer, so its minor version must match the image's (3.11 on Debian bookworm).
# Archives are cached by a hash of the sources, so an unchanged tree imports in a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${CONVEYOR_CLUSTER_DIR:-$HOME/.local/state/conveyor-cluster}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/conveyor/k8s-v1.34.4"
IMAGES="$CACHE/images"
BASE="$IMAGES/tools-1.oci.tar"
NAME="localhost/conveyor/operator"
TAG="dev"
SOCK="$STATE/containerd/containerd.sock"

log() { printf '[operator-image] %s\n' "$*" >&2; }

[ -s "$BASE" ] || "$ROOT/hack/cluster.sh" build
image_python="3.11"
host_python="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
[ "$host_python" = "$image_python" ] || {
  log "the host's python3 is $host_python; the image has $image_python (wheels must match)"
  exit 1
}

# The archive's name carries a hash of everything that goes into the layer.
digest="$(cd "$ROOT" && git ls-files -s pyproject.toml operator | sha256sum | cut -c1-12)"
if [ -n "$(cd "$ROOT" && git status --porcelain -- pyproject.toml operator)" ]; then
  digest="$(cd "$ROOT" && { git ls-files -s pyproject.toml operator; git diff -- pyproject.toml operator; \
    git ls-files -o --exclude-standard -- operator | xargs -r cat; } | sha256sum | cut -c1-12)"
fi
archive="$IMAGES/operator-$digest.oci.tar"

if [ ! -s "$archive" ]; then
  start=$(date +%s)
  work="$(mktemp -d "$IMAGES/.operator.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/layout"
  tar -C "$work/layout" -xf "$BASE"
  umoci unpack --image "$work/layout:1" "$work/bundle" > /dev/null
  python3 -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-compile \
    --no-warn-conflicts \
    --target "$work/bundle/rootfs/opt/conveyor" "$ROOT"
  umoci repack --image "$work/layout:$TAG" "$work/bundle"
  umoci config --image "$work/layout:$TAG" \
    --config.env PYTHONPATH=/opt/conveyor --config.env PYTHONDONTWRITEBYTECODE=1 \
    --config.env PYTHONUNBUFFERED=1 --config.user 1000:1000 \
    --config.entrypoint python3 --config.entrypoint -m --config.entrypoint conveyor.cli.main \
    --config.cmd operator
  umoci rm --image "$work/layout:1"  # only the operator's tag goes into the archive
  umoci gc --layout "$work/layout"
  tar -C "$work/layout" -cf "$archive.tmp" .
  mv -f "$archive.tmp" "$archive"
  log "built $NAME:$TAG ($digest) in $(( $(date +%s) - start ))s"
fi

[ -S "$SOCK" ] || { log "the local cluster is not up (hack/cluster.sh up)"; exit 1; }
# Import under the tag the overlay uses; the digest-named archive makes re-imports cheap.
ctr --address "$SOCK" --namespace k8s.io images import --base-name "$NAME" "$archive" > /dev/null
log "imported $NAME:$TAG from $(basename "$archive")"
