#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for Conveyor's integration tests and CI.
#
#   hack/cluster.sh up                     install packages, build/reuse binaries and images,
#                                          start everything and wait for the node to be Ready
#   hack/cluster.sh down [--purge]         stop what `up` started; --purge also deletes the state
#   hack/cluster.sh status                 show what runs (exit 0 only when the cluster is usable)
#   hack/cluster.sh env                    print `export KUBECONFIG=...` (and kubectl on PATH)
#   hack/cluster.sh build                  build/reuse the binaries and images only
#   hack/cluster.sh kubeconfig-for USER [GROUP...]
#                                          issue a client cert and print the kubeconfig path
#   hack/cluster.sh kubectl ARGS...        the cluster's kubectl with the admin kubeconfig
#
# Components: etcd (Debian), kube-apiserver, kube-controller-manager, kube-scheduler and kubelet
# (built from the k8s.io/kubernetes Go module), containerd + runc + CNI bridge (Debian).
# There is no kube-proxy, so Service IPs do not route: run controllers on the host.
# Must run as root (mounts, network, cgroups).
#
# State (pids, certs, data, logs): ${CONVEYOR_CLUSTER_DIR:-$HOME/.local/state/conveyor-cluster}
# Binaries and image archives:      ${XDG_CACHE_HOME:-$HOME/.cache}/conveyor/k8s-<version>/
# Both live outside the checkout so a fresh clone reuses a warm cache.
set -euo pipefail

K8S_VERSION=v1.34.4
CRICTL_VERSION=v1.34.0
IMAGE_TAG=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="$HERE/cluster"
STATE="${CONVEYOR_CLUSTER_DIR:-$HOME/.local/state/conveyor-cluster}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/conveyor/k8s-${K8S_VERSION}"
BIN="$CACHE/bin"
IMAGES="$CACHE/images"

# Networking. The node IP sits on a local-only interface so it is stable (the serving certs
# name it) and not loopback (the kubelet refuses that); control-plane ports stay on 127.0.0.1.
NODE_NAME="${CONVEYOR_NODE_NAME:-conveyor-node}"
NODE_IP="${CONVEYOR_NODE_IP:-10.213.0.1}"
NODE_IF=conveyor0
CNI_BRIDGE=conveyor-br0
POD_CIDR="${CONVEYOR_POD_CIDR:-10.214.0.0/24}"
SERVICE_CIDR="${CONVEYOR_SERVICE_CIDR:-10.215.0.0/24}"
SERVICE_IP="${SERVICE_CIDR%.*}.1"
APISERVER_PORT="${CONVEYOR_APISERVER_PORT:-6443}"
ETCD_PORT="${CONVEYOR_ETCD_PORT:-12379}"
ETCD_PEER_PORT=$((ETCD_PORT + 1))
CNI_BIN_DIR=/usr/lib/cni

PKI="$STATE/pki"
RUN="$STATE/run"
LOGS="$STATE/logs"
CONTAINERD_SOCK="$STATE/containerd/containerd.sock"
VOLUMES="$STATE/volumes"  # one directory per provisioned PersistentVolumeClaim
ADMIN_KUBECONFIG="$STATE/admin.kubeconfig"
PAUSE_IMAGE="localhost/conveyor/pause:${IMAGE_TAG}"
IMAGE_NAMES=(pause busybox tools)

# Start order; `down` goes the other way.
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet provisioner)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s; }

require_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (it mounts, configures networking and cgroups)"
}

# --- processes -------------------------------------------------------------------------------

binary_of() {
  case "$1" in
    containerd) echo /usr/bin/containerd ;;
    etcd) echo /usr/bin/etcd ;;
    provisioner) command -v bash ;;  # runs $LIB/provisioner.sh
    *) echo "$BIN/$1" ;;
  esac
}

# Prints the pid of a component we started, if that process still runs that binary
# (a stale pid file after a reboot may name an unrelated process).
pid_of() {
  local name="$1" pidfile="$RUN/$1.pid" pid exe
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  exe="${exe% (deleted)}"
  [ "$(basename "$exe")" = "$(basename "$(binary_of "$name")")" ] || return 1
  echo "$pid"
}

running() { pid_of "$1" >/dev/null; }

# start NAME ARGS...: runs the component's binary detached (own session, stdin closed, output
# in its log, lock fds closed) so it outlives this script and never holds a caller's pipe open.
start() {
  local name="$1"
  shift
  if running "$name"; then
    return 0
  fi
  local logfile="$LOGS/$name.log"
  if [ -f "$logfile" ] && [ "$(stat -c %s "$logfile")" -gt $((64 * 1024 * 1024)) ]; then
    mv -f "$logfile" "$logfile.1"
  fi
  printf '\n=== %s starting %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" >> "$logfile"
  setsid "$(binary_of "$name")" "$@" < /dev/null >> "$logfile" 2>&1 8>&- 9>&- &
  echo $! > "$RUN/$name.pid"
  log "started $name (pid $!)"
}

stop() {
  local name="$1" pid
  pid="$(pid_of "$name")" || { rm -f "$RUN/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  # The provisioner is a script: its kubectl watch runs in the same process group (setsid).
  [ "$name" != provisioner ] || kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -d "/proc/$pid" ] || break
    sleep 0.2
  done
  if [ -d "/proc/$pid" ]; then
    log "$name (pid $pid) ignored SIGTERM; killing"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  fi
  rm -f "$RUN/$name.pid"
  log "stopped $name (pid $pid)"
}

# wait_for DESCRIPTION TIMEOUT_SECONDS LOGNAME COMMAND...
wait_for() {
  local what="$1" timeout="$2" logname="$3"
  shift 3
  local deadline=$(( $(now) + timeout ))
  until "$@" > /dev/null 2>&1; do
    if [ -n "$logname" ] && ! running "$logname"; then
      tail -n 40 "$LOGS/$logname.log" >&2 || true
      die "$logname exited while waiting for $what (log: $LOGS/$logname.log)"
    fi
    if [ "$(now)" -ge "$deadline" ]; then
      [ -n "$logname" ] && tail -n 40 "$LOGS/$logname.log" >&2
      die "timed out after ${timeout}s waiting for $what"
    fi
    sleep 0.5
  done
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
crictl_node() { "$BIN/crictl" --config "$STATE/crictl.yaml" "$@"; }
ctr_node() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# --- build -----------------------------------------------------------------------------------

binaries_ready() {
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl crictl; do
    [ -x "$BIN/$b" ] || return 1
  done
  [ "$(cat "$BIN/.complete" 2>/dev/null)" = "$K8S_VERSION $CRICTL_VERSION" ]
}

images_ready() {
  local n
  for n in "${IMAGE_NAMES[@]}"; do [ -s "$IMAGES/$n-$IMAGE_TAG.oci.tar" ] || return 1; done
}

build() {
  mkdir -p "$CACHE"
  # Two checkouts building at once would trample the same cache.
  exec 8> "$CACHE/.build.lock"
  flock 8
  if binaries_ready; then
    log "reusing Kubernetes ${K8S_VERSION} binaries from $BIN"
  else
    log "building Kubernetes ${K8S_VERSION} (first time on this machine: several minutes)"
    local t0
    t0=$(now)
    K8S_VERSION="$K8S_VERSION" CRICTL_VERSION="$CRICTL_VERSION" "$LIB/build-k8s.sh" "$BIN" \
      > "$CACHE/build.log" 2>&1 || { tail -n 60 "$CACHE/build.log" >&2; die "Kubernetes build failed (log: $CACHE/build.log)"; }
    grep '^build-k8s:' "$CACHE/build.log" >&2 || true
    log "Kubernetes binaries built in $(( $(now) - t0 ))s"
  fi
  if images_ready; then
    log "reusing image archives from $IMAGES"
  else
    CONVEYOR_IMAGE_TAG="$IMAGE_TAG" "$LIB/build-images.sh" "$IMAGES" "${IMAGE_NAMES[@]}"
  fi
  exec 8>&-
}

# --- certificates and kubeconfigs ----------------------------------------------------------------

# issue NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]: a key and a CA-signed cert in $PKI.
issue() {
  local name="$1" subj="$2" eku="$3" san="${4:-}"
  [ -s "$PKI/$name.crt" ] && [ -s "$PKI/$name.key" ] && return 0
  local ext
  ext="$(mktemp)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$ext"
  (umask 077 && openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null)
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 -extfile "$ext" \
    -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$ext" "$PKI/$name.csr"
}

# write_kubeconfig FILE USER CERT_NAME: self-contained (certs embedded), talks to 127.0.0.1.
write_kubeconfig() {
  local file="$1" user="$2" cert="$3" tmp
  tmp="$(mktemp "$file.XXXXXX")"
  cat > "$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: conveyor
  cluster:
    server: https://127.0.0.1:${APISERVER_PORT}
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: "${user}"
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 < "$PKI/$cert.key")
contexts:
- name: conveyor
  context:
    cluster: conveyor
    user: "${user}"
current-context: conveyor
EOF
  chmod 600 "$tmp"
  mv -f "$tmp" "$file"
}

ensure_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [ ! -s "$PKI/ca.crt" ] || [ ! -s "$PKI/ca.key" ]; then
    local ext
    ext="$(mktemp)"
    printf '%s\n' "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      "subjectKeyIdentifier=hash" > "$ext"
    (umask 077 && openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null)
    openssl req -new -key "$PKI/ca.key" -subj "/CN=conveyor-cluster-ca" -out "$PKI/ca.csr" 2>/dev/null
    openssl x509 -req -in "$PKI/ca.csr" -signkey "$PKI/ca.key" -days 3650 -sha256 \
      -extfile "$ext" -out "$PKI/ca.crt" 2>/dev/null
    rm -f "$ext" "$PKI/ca.csr"
  fi
  if [ ! -s "$PKI/sa.key" ]; then
    (umask 077 && openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null)
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  issue apiserver "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:${NODE_IP},IP:${SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  issue admin "/O=system:masters/CN=conveyor-admin" clientAuth
  issue controller-manager "/CN=system:kube-controller-manager" clientAuth
  issue scheduler "/CN=system:kube-scheduler" clientAuth
  issue kubelet-client "/O=system:nodes/CN=system:node:${NODE_NAME}" clientAuth
  issue kubelet "/CN=${NODE_NAME}" serverAuth "IP:${NODE_IP},IP:127.0.0.1,DNS:${NODE_NAME},DNS:localhost"

  [ -s "$ADMIN_KUBECONFIG" ] || write_kubeconfig "$ADMIN_KUBECONFIG" conveyor-admin admin
  [ -s "$STATE/controller-manager.kubeconfig" ] ||
    write_kubeconfig "$STATE/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  [ -s "$STATE/scheduler.kubeconfig" ] ||
    write_kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler scheduler
  [ -s "$STATE/kubelet.kubeconfig" ] ||
    write_kubeconfig "$STATE/kubelet.kubeconfig" "system:node:${NODE_NAME}" kubelet-client
}

kubeconfig_for() {
  local user="${1:-}"
  shift || true
  [ -n "$user" ] || die "usage: cluster.sh kubeconfig-for USER [GROUP...]"
  [[ "$user" =~ ^[A-Za-z0-9][A-Za-z0-9._@:+-]*$ ]] || die "unsupported user name: $user"
  local subj="" g
  for g in "$@"; do
    [[ "$g" =~ ^[A-Za-z0-9][A-Za-z0-9._@:+-]*$ ]] || die "unsupported group name: $g"
    subj+="/O=$g"
  done
  subj+="/CN=$user"
  [ -s "$PKI/ca.key" ] || die "no cluster CA yet: run '$0 up' first"
  # One cert per (user, groups) pair; the file name carries a hash of the subject when groups
  # are given so the same user can hold kubeconfigs for different group sets.
  local safe="${user//[:@+]/_}" hash
  hash="$(printf '%s' "$subj" | sha256sum | cut -c1-12)"
  local file="$STATE/users/${safe}.kubeconfig"
  [ "$#" -eq 0 ] || file="$STATE/users/${safe}-${hash}.kubeconfig"
  mkdir -p "$STATE/users"
  issue "user-${hash}" "$subj" clientAuth
  write_kubeconfig "$file" "$user" "user-${hash}"
  echo "$file"
}

# --- configuration -----------------------------------------------------------------------------

render() {
  local src="$1" dst="$2" tmp
  tmp="$(mktemp "$dst.XXXXXX")"
  sed -e "s#@STATE@#${STATE}#g" \
      -e "s#@CONTAINERD_SOCK@#${CONTAINERD_SOCK}#g" \
      -e "s#@PAUSE_IMAGE@#${PAUSE_IMAGE}#g" \
      -e "s#@CNI_BIN_DIR@#${CNI_BIN_DIR}#g" \
      -e "s#@CNI_BRIDGE@#${CNI_BRIDGE}#g" \
      -e "s#@POD_CIDR@#${POD_CIDR}#g" \
      -e "s#@NODE_IP@#${NODE_IP}#g" \
      -e "s#@RESOLV_CONF@#$( [ -f /etc/resolv.conf ] && echo /etc/resolv.conf )#g" \
      "$src" > "$tmp"
  mv -f "$tmp" "$dst"
}

ensure_config() {
  mkdir -p "$RUN" "$LOGS" "$STATE/etcd" "$STATE/containerd" "$STATE/cni/net.d" "$STATE/cni/ipam" \
    "$STATE/kubelet" "$STATE/pod-logs"
  chmod 700 "$STATE/etcd"
  render "$LIB/templates/containerd.toml" "$STATE/containerd/config.toml"
  render "$LIB/templates/cni.conflist" "$STATE/cni/net.d/10-conveyor.conflist"
  render "$LIB/templates/kubelet.yaml" "$STATE/kubelet.yaml"
  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' \
    "$CONTAINERD_SOCK" "$CONTAINERD_SOCK" > "$STATE/crictl.yaml"
}

ensure_network() {
  if ! ip link show "$NODE_IF" > /dev/null 2>&1; then
    # A dummy link is the natural holder for a local-only address; kernels without the dummy
    # module get a port-less bridge, which holds an address just as well.
    ip link add "$NODE_IF" type dummy 2> /dev/null || ip link add "$NODE_IF" type bridge
  fi
  # Capture first: with pipefail, `ip | grep -q` fails when grep exits before ip has written all.
  local addrs
  addrs="$(ip -o addr show dev "$NODE_IF")"
  [[ "$addrs" == *"inet ${NODE_IP}/"* ]] || ip addr add "${NODE_IP}/32" dev "$NODE_IF"
  ip link set "$NODE_IF" up
  modprobe br_netfilter 2> /dev/null || true
  modprobe overlay 2> /dev/null || true
  sysctl -qw net.ipv4.ip_forward=1
  if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    sysctl -qw net.bridge.bridge-nf-call-iptables=1
  fi
}

# --- up ----------------------------------------------------------------------------------------

import_images() {
  local present n
  present="$(ctr_node images ls -q)"
  for n in "${IMAGE_NAMES[@]}"; do
    if ! grep -qx "localhost/conveyor/$n:$IMAGE_TAG" <<< "$present"; then
      ctr_node images import --base-name "localhost/conveyor/$n" "$IMAGES/$n-$IMAGE_TAG.oci.tar" > /dev/null
      log "imported localhost/conveyor/$n:$IMAGE_TAG"
    fi
  done
}

apiserver_ready() {
  curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:${APISERVER_PORT}/readyz" > /dev/null
}

# node_ready [SINCE]: the node is Ready, and if SINCE (UTC, RFC 3339) is given, the kubelet has
# reported so after that time; right after a restart the stored condition is still the old one.
node_ready() {
  local since="${1:-}" ready
  ready="$(kubectl_admin get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2> /dev/null)" || return 1
  [ "${ready%% *}" = True ] || return 1
  [ -z "$since" ] || [[ ! "${ready#* }" < "$since" ]]
}

up() {
  require_root
  local t0 t1
  t0=$(now)
  mkdir -p "$STATE"
  # Concurrent callers (parallel test workers) wait here and then find everything running.
  exec 9> "$STATE/.lock"
  flock 9
  "$LIB/install-deps.sh"
  build
  t1=$(now)
  ensure_config
  ensure_pki
  ensure_network

  # Leftover sockets from a process that died without cleaning up make containerd refuse to start.
  running containerd || rm -f "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc"
  start containerd --config "$STATE/containerd/config.toml" --log-level warn
  wait_for containerd 60 containerd ctr --address "$CONTAINERD_SOCK" version
  import_images

  start etcd \
    --name conveyor --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster "conveyor=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --unsafe-no-fsync --quota-backend-bytes $((2 * 1024 * 1024 * 1024)) \
    --log-level warn
  wait_for etcd 60 etcd curl -sf --max-time 2 "http://127.0.0.1:${ETCD_PORT}/health"

  start kube-apiserver \
    --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --profiling=false
  wait_for kube-apiserver 120 kube-apiserver apiserver_ready

  start kube-controller-manager \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --root-ca-file "$PKI/ca.crt" \
    --service-account-private-key-file "$PKI/sa.key" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --profiling=false
  start kube-scheduler \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --profiling=false
  # A kubelet started now must report Ready itself: the stored condition is from its last run.
  # One that already runs reports only every few minutes when nothing changes.
  local since=""
  running kubelet || since="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  start kubelet \
    --config "$STATE/kubelet.yaml" \
    --kubeconfig "$STATE/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" \
    --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP"

  wait_for kube-controller-manager 60 kube-controller-manager curl -skf --max-time 2 https://127.0.0.1:10257/healthz
  wait_for kube-scheduler 60 kube-scheduler curl -skf --max-time 2 https://127.0.0.1:10259/healthz
  wait_for kubelet 60 kubelet curl -sf --max-time 2 http://127.0.0.1:10248/healthz
  start provisioner "$LIB/provisioner.sh" "$BIN/kubectl" "$ADMIN_KUBECONFIG" "$VOLUMES"
  # A StorageClass's provisioner cannot be changed in place; an older class is replaced.
  kubectl_admin apply -f "$LIB/templates/storage.yaml" > /dev/null 2>&1 ||
    kubectl_admin replace --force -f "$LIB/templates/storage.yaml" > /dev/null
  wait_for "node $NODE_NAME Ready" 120 kubelet node_ready "$since"
  wait_for "default service account" 60 kube-controller-manager kubectl_admin get serviceaccount default -n default

  local total=$(( $(now) - t0 )) start_secs=$(( $(now) - t1 ))
  printf '%s up in %ss (%ss after build checks)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$total" "$start_secs" >> "$STATE/up-times.log"
  log "cluster up in ${total}s (start-up ${start_secs}s); node $NODE_NAME Ready"
  log "KUBECONFIG=$ADMIN_KUBECONFIG"
  exec 9>&-
}

# --- down --------------------------------------------------------------------------------------

# Every mount below the state dir: the kubelet's rshared root bind, pod volume tmpfs, rootfs overlays.
unmount_state() {
  local m
  findmnt -rn -o TARGET | { grep -E "^${STATE}(/|$)" || true; } | sort -r | while read -r m; do
    umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || log "could not unmount $m"
  done
}

down() {
  require_root
  local purge="${1:-}"
  mkdir -p "$STATE"
  exec 9> "$STATE/.lock"
  flock 9
  stop provisioner
  stop kubelet
  if running containerd; then
    # Removing sandboxes through the CRI tears down their network (veth, IP lease, netns
    # mount) and kills their containers; killing containerd alone would leave them all behind.
    crictl_node rmp --all --force > /dev/null 2>&1 || log "crictl rmp failed; containers may be left"
  fi
  stop containerd
  # Shims outlive containerd by design; only those serving this cluster's containerd are ours.
  local pid
  for pid in $(pgrep -f -- "-address ${CONTAINERD_SOCK}( |$)" || true); do
    kill -KILL "$pid" 2> /dev/null || true
  done
  stop kube-scheduler
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd
  unmount_state
  ip link del "$NODE_IF" 2> /dev/null || true
  ip link del "$CNI_BRIDGE" 2> /dev/null || true
  exec 9>&-
  if [ "$purge" = --purge ]; then
    # Provisioned volumes belong to PVs that only the purged etcd knew about.
    rm -rf "$STATE" /tmp/hostpath_pv
    log "removed $STATE (with its volumes) and /tmp/hostpath_pv"
  fi
  log "cluster down"
}

# --- status / env ------------------------------------------------------------------------------

status() {
  local name pid ok=0
  printf '%-24s %-8s %s\n' COMPONENT PID STATE
  for name in "${COMPONENTS[@]}"; do
    if pid="$(pid_of "$name")"; then
      printf '%-24s %-8s %s\n' "$name" "$pid" running
    else
      printf '%-24s %-8s %s\n' "$name" - stopped
      ok=1
    fi
  done
  echo "kubeconfig: $ADMIN_KUBECONFIG"
  echo "binaries:   $BIN ($K8S_VERSION)"
  if [ -s "$ADMIN_KUBECONFIG" ] && [ -x "$BIN/kubectl" ] && apiserver_ready 2> /dev/null; then
    kubectl_admin get nodes -o wide 2> /dev/null || true
    node_ready "" || ok=1
  else
    echo "api server: not reachable"
    ok=1
  fi
  return "$ok"
}

print_env() {
  printf 'export KUBECONFIG=%q\n' "$ADMIN_KUBECONFIG"
  printf 'export CONVEYOR_KUBECTL=%q\n' "$BIN/kubectl"
  # $PATH stays literal: it is expanded by the shell that evals this.
  # shellcheck disable=SC2016
  printf 'export PATH=%q:"$PATH"\n' "$BIN"
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    up) up ;;
    down) down "${1:-}" ;;
    status) status ;;
    env) print_env ;;
    build) build ;;
    kubeconfig-for) kubeconfig_for "$@" ;;
    kubectl) exec "$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@" ;;
    *)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
      [ -z "$cmd" ] || [ "$cmd" = help ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || exit 2
      ;;
  esac
}

main "$@"
