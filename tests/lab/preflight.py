"""Can this machine run a lab? Each missing piece is named, with the way to get it."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
from pathlib import Path

from tests.lab.errors import LabError

INSTALL = "run `bash tests/lab/install-deps.sh` as root"
BINARIES = {
    "/usr/sbin/sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "/usr/bin/busybox": "busybox-static",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "nft": "nftables",
    "openssl": "openssl",
    "/usr/bin/python3": "python3",
}
# The control planes' etcd static pods run Debian's etcd; ``etcd snapshot`` checks with etcdctl.
ETCD_BINARIES = {"etcd": "etcd-server", "etcdctl": "etcd-client"}


def problems(real_etcd: bool = True) -> list[str]:
    """Every reason the lab cannot start here (empty when it can). A lab with a real etcd (the
    default) needs Debian's etcd: without it the lab refuses to start rather than fall back to
    a store that does not enforce quorum."""
    found: list[str] = []
    if os.geteuid() != 0:
        found.append("not root: the lab needs root (mount namespaces, containerd, nftables)")
    wanted = {**BINARIES, **(ETCD_BINARIES if real_etcd else {})}
    missing = sorted({pkg for b, pkg in wanted.items() if shutil.which(b) is None})
    if missing:
        found.append(f"missing Debian packages {' '.join(missing)}: {INSTALL}")
    elif subprocess.run(
        ["/usr/bin/python3", "-c", "import cryptography, yaml"], capture_output=True, check=False
    ).returncode != 0:
        found.append(
            f"Debian's /usr/bin/python3 lacks cryptography or yaml "
            f"(python3-cryptography python3-yaml): {INSTALL}"
        )
    if not Path("/sys/fs/cgroup/pids/cgroup.procs").exists():
        found.append("no cgroup v1 pids hierarchy at /sys/fs/cgroup/pids (the lab needs cgroup v1)")
    return found


def check(real_etcd: bool = True) -> None:
    found = problems(real_etcd)
    if found:
        raise LabError("the lab cannot start: " + "; ".join(found))


def address_in_use(address: str, port: int = 22) -> str | None:
    """Why ``address:port`` cannot be a node's sshd, or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"address {address}:{port} is in use (another sshd or lab?)"
            return f"cannot bind {address}:{port}: {e.strerror}"
    return None
