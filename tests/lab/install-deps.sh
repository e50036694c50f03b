#!/usr/bin/env bash
# Install the Debian packages the lab needs. Idempotent: `apt-get update` and `apt-get install`
# run only when something is missing. Needs root (the lab itself does too).
set -euo pipefail

PACKAGES=(
  openssh-server openssh-client containerd runc busybox-static iproute2 openssl
  etcd-server etcd-client  # the control planes' etcd static pods; etcdctl for snapshots
  python3 python3-cryptography python3-yaml
  nftables      # partitions: a node's packets dropped so connects time out
  util-linux    # unshare, nsenter
)

# The nodes' kubectl is a real one: the Google Cloud CLI's kubectl.1.NN beside the kubectl on the
# PATH (its symlink followed) when the machine has them, else Debian's kubernetes-client (v1.20).
versioned_kubectl() {
  local found
  found=$(command -v kubectl 2>/dev/null) || return 1
  found=$(readlink -f "$found")
  compgen -G "$(dirname "$found")/kubectl.1.*" >/dev/null
}
if ! versioned_kubectl; then
  PACKAGES+=(kubernetes-client)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts the daemons it has just installed; the lab runs its own, one per node, and a
# host sshd on 0.0.0.0:22 would take the nodes' port. Only what this script installed is
# stopped: an sshd that was there before is left alone (the lab then says the port is in use).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for pkg in "${missing[@]}"; do
    case "$pkg" in
      openssh-server) systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true ;;
      containerd) systemctl disable --now containerd.service >/dev/null 2>&1 || true ;;
      etcd-server) systemctl disable --now etcd.service >/dev/null 2>&1 || true ;;
    esac
  done
fi
