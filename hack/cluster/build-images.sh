#!/usr/bin/env bash
# Builds the cluster's container images as OCI archives, without a registry or a docker
# engine: a root filesystem is assembled on the host, packed into an OCI layout with umoci,
# and tarred so `ctr images import` can load it. Usage: build-images.sh OUT_DIR [NAME...]
# Names: pause busybox tools (default: all). An archive already in OUT_DIR is kept.
set -euo pipefail

out="${1:?usage: build-images.sh OUT_DIR [pause|busybox|tools]...}"
shift
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(pause busybox tools)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tag="${CONVEYOR_IMAGE_TAG:-1}"
mirror="${CONVEYOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite="${CONVEYOR_TOOLS_SUITE:-bookworm}"
path_env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

mkdir -p "$out"
# Go may be installed without being on PATH (e.g. under a minimal CI environment).
command -v go > /dev/null || export PATH="/usr/local/go/bin:$PATH"
command -v go > /dev/null || { echo "$(basename "$0"): Go (1.24+) is required" >&2; exit 1; }
work="$(mktemp -d "${out}/.build.XXXXXX")"
cleanup() {
  # debootstrap mounts /proc and /sys inside its target; never rm -rf through a mount.
  findmnt -rn -o TARGET | { grep "^${work}/" || true; } | sort -r | xargs -r -n1 umount -l || true
  rm -rf "$work"
}
trap cleanup EXIT

# pack ROOTFS NAME [umoci config args...] -> $out/NAME-$tag.oci.tar
pack() {
  local rootfs="$1" name="$2"
  shift 2
  local layout="$work/$name-oci" bundle="$work/$name-bundle"
  umoci init --layout "$layout"
  umoci new --image "$layout:$tag"
  umoci unpack --image "$layout:$tag" "$bundle"
  cp -a "$rootfs/." "$bundle/rootfs/"
  umoci repack --image "$layout:$tag" "$bundle"
  umoci config --image "$layout:$tag" --config.env "$path_env" --config.workingdir / "$@"
  umoci gc --layout "$layout"
  tar -C "$layout" -cf "$out/.$name-$tag.oci.tar" .
  mv -f "$out/.$name-$tag.oci.tar" "$out/$name-$tag.oci.tar"
  rm -rf "$layout" "$bundle"
}

build_pause() {
  local rootfs="$work/pause-rootfs"
  mkdir -p "$rootfs"
  (cd "$here/pause" && GOTOOLCHAIN=local GOFLAGS='' CGO_ENABLED=0 \
    go build -trimpath -ldflags='-s -w' -o "$rootfs/pause" ./main.go)
  pack "$rootfs" pause --config.entrypoint /pause
}

build_busybox() {
  local rootfs="$work/busybox-rootfs" applet
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,var/tmp}
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  # Debian's busybox-static is statically linked, so the image needs nothing else.
  cp /bin/busybox "$rootfs/bin/busybox"
  while read -r applet; do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$rootfs/$applet"
  done < <(/bin/busybox --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
  pack "$rootfs" busybox --config.cmd /bin/sh
}

build_tools() {
  local rootfs="$work/tools-rootfs"
  # minbase carries coreutils, tar, dash and bash; git and python3 are what pipelines run.
  debootstrap --variant=minbase --include=git,python3,ca-certificates \
    "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 || {
      tail -n 30 "$work/debootstrap.log" >&2
      [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
      exit 1
    }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs/debootstrap"
  if [ -n "$(findmnt -rn -o TARGET | { grep "^${rootfs}/" || true; })" ]; then
    echo "build-images: mounts left under $rootfs" >&2
    exit 1
  fi
  pack "$rootfs" tools --config.cmd /bin/sh
}

for name in "${names[@]}"; do
  if [ -s "$out/$name-$tag.oci.tar" ]; then
    continue
  fi
  start=$(date +%s)
  case "$name" in
    pause) build_pause ;;
    busybox) build_busybox ;;
    tools) build_tools ;;
    *) echo "build-images: unknown image $name" >&2; exit 2 ;;
  esac
  secs=$(( $(date +%s) - start ))
  echo "build-images: built localhost/conveyor/$name:$tag in ${secs}s"
  printf '%s built image %s:%s in %ss\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$tag" "$secs" >> "$out/build-times.log"
done
