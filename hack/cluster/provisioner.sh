#!/usr/bin/env bash
# The local cluster's volume provisioner: one host directory per PersistentVolumeClaim of the
# StorageClass conveyor-local, writable by any uid.
#
# Why not the controller-manager's built-in hostPath provisioner: it creates each directory
# with mode 0750 owned by root, and hostPath volumes get no fsGroup ownership change, so pods
# that run as a non-root uid (the restricted Pod Security Standard) cannot write to them.
#
# It follows claims with a watch (no polling): a Pending claim of the class gets a directory
# (mode 0777) and a PersistentVolume bound to it; a Released volume of the class is deleted
# with its directory. Started and stopped by hack/cluster.sh like the other components.
#   usage: provisioner.sh KUBECTL KUBECONFIG ROOT_DIR
set -euo pipefail

kubectl_bin="$1" kubeconfig="$2" root="$3"
CLASS=conveyor-local
NAME=conveyor.dev/local-hostpath
k() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
mkdir -p "$root"

provision() {
  local namespace="$1" claim="$2" uid="$3" size="$4" mode="$5" dir="$root/pvc-$3"
  k get pv "pvc-$uid" > /dev/null 2>&1 && return 0
  mkdir -p "$dir"
  chmod 0777 "$dir"
  k create -f - > /dev/null <<PV
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pvc-$uid
  annotations: {pv.kubernetes.io/provisioned-by: "$NAME"}
spec:
  storageClassName: $CLASS
  capacity: {storage: "$size"}
  accessModes: ["$mode"]
  persistentVolumeReclaimPolicy: Delete
  claimRef: {namespace: "$namespace", name: "$claim", uid: "$uid"}
  hostPath: {path: "$dir", type: Directory}
PV
  log "provisioned $namespace/$claim ($size) at $dir"
}

reclaim() {
  local pv path
  while read -r pv path; do
    [ -n "$pv" ] || continue
    # Only directories this provisioner made are ever removed.
    case "$path" in "$root"/pvc-*) rm -rf "$path" ;; esac
    k delete pv "$pv" --wait=false > /dev/null 2>&1 || true
    log "reclaimed $pv"
  done < <(k get pv -o jsonpath="{range .items[?(@.spec.storageClassName==\"$CLASS\")]}{.metadata.name}{' '}{.status.phase}{' '}{.spec.hostPath.path}{'\n'}{end}" 2> /dev/null |
    awk '$2 == "Released" {print $1, $3}')
}

while true; do
  reclaim
  # A watch lists every claim first, then streams changes; it ends when the API server goes
  # away, and the loop reconnects.
  while read -r event namespace claim uid phase class size mode; do
    if [ "$class" = "$CLASS" ] && [ "$phase" = Pending ] && [ "$event" != DELETED ]; then
      provision "$namespace" "$claim" "$uid" "${size:-1Gi}" "${mode:-ReadWriteOnce}" ||
        log "could not provision $namespace/$claim"
    elif [ "$event" = DELETED ]; then
      reclaim
    fi
  done < <(k get pvc --all-namespaces --watch --output-watch-events -o "jsonpath={.type} {.object.metadata.namespace} {.object.metadata.name} {.object.metadata.uid} {.object.status.phase} {.object.spec.storageClassName} {.object.spec.resources.requests.storage} {.object.spec.accessModes[0]}{'\n'}" 2> /dev/null || true)
  sleep 1
done
