#!/usr/bin/env bash
# Installs the Debian packages the local cluster needs, only when something is missing,
# with a single `apt-get update`. etcd comes from trixie: the API server's watch progress
# requests need etcd >= 3.4.31 / 3.5.13 and bookworm ships 3.4.23. The trixie source is pinned
# low so nothing else on the machine is upgraded from it.
set -euo pipefail

packages=(
  containerd runc containernetworking-plugins iptables kmod iproute2 util-linux mount
  umoci debootstrap openssl busybox-static ca-certificates python3 procps
)
trixie_packages=(etcd-server)

missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing+=("$p")
done
need_etcd=1
if [ "$(dpkg-query -W -f='${Status}' etcd-server 2>/dev/null)" = 'install ok installed' ]; then
  v="$(dpkg-query -W -f='${Version}' etcd-server)"
  # 3.4.x is too old (see above); anything 3.5+ will do.
  if dpkg --compare-versions "$v" ge 3.5.13; then need_etcd=0; fi
fi

if [ "${#missing[@]}" -eq 0 ] && [ "$need_etcd" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]:-} ${trixie_packages[*]}); run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# containerd and etcd are started by the cluster script with its own config and state; keep the
# packages from starting system copies of them (Debian's policy-rc.d convention).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
if [ "$need_etcd" -eq 1 ]; then
  cat > /etc/apt/sources.list.d/conveyor-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Trixie is only for the packages asked for by name; never upgrade anything else from it.
  cat > /etc/apt/preferences.d/conveyor-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 1

Package: etcd-server etcd-client
Pin: release n=trixie
Pin-Priority: 600
PIN
fi

echo "install-deps: installing ${missing[*]:-} $( [ "$need_etcd" -eq 1 ] && echo etcd-server/trixie )"
apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$need_etcd" -eq 1 ]; then
  # The pin makes trixie's version the candidate for these packages only; their dependencies
  # (just libc6) are still satisfied from bookworm.
  apt-get install -y -qq --no-install-recommends "${trixie_packages[@]}"
fi
