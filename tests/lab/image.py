"""The node "image": what the kubelet and kubeadm containers see as their root.

The host's /usr (with /bin, /sbin, /lib, /lib64 as its usual symlinks) is bound read-only, so
python3 (Debian's, with cryptography and yaml) and openssl work inside. /etc is a small copy of
the host files those programs need rather than the host's /etc, so that /etc/kubernetes can be
a bind mount of the node's persistent /var/node/etc/kubernetes (and /etc/cni/net.d of its
/var/node/etc/cni/net.d). /usr/local/bin holds the image's scripts and the kubeadm/kubelet
doubles; its ``kubectl`` is the node's ``/lab/bin/kubectl``, which the lab points at a real
kubectl binary of the host (see ``real_kubectl``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "image"
DOUBLES = HERE / "doubles"
# Inside the containers.
DOUBLES_MOUNT = "/opt/lab/doubles"
TOOLS = ("kubeadm", "kubectl", "kubelet")
NODE_KUBECTL = "/lab/bin/kubectl"  # inside the containers: the node's own choice of kubectl
DOUBLE_KUBECTL = f"{DOUBLES_MOUNT}/bin/kubectl"
DEBIAN_KUBECTL = Path("/usr/bin/kubectl")  # Debian's kubernetes-client (v1.20)
# What python3, openssl and name lookups need from /etc.
ETC_FILES = (
    "passwd", "group", "hosts", "resolv.conf", "nsswitch.conf", "host.conf", "ld.so.cache",
    "ld.so.conf", "ld.so.conf.d", "ssl", "alternatives", "localtime", "timezone", "os-release",
    "python3", "python3.11", "protocols", "services", "mime.types",
)
ROOTFS_DIRS = (
    "usr", "etc", "run", "var", "root", "tmp", "lab", "proc", "dev", "sys", "hostroot/var/log",
    DOUBLES_MOUNT.lstrip("/"),
)
ROOTFS_LINKS = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


def build_image(image_dir: Path) -> None:
    """Lay out ``image_dir``: ``etc/`` (read-only /etc of the containers), ``bin/`` (their
    /usr/local/bin) and ``logger.sh`` (the node's log writer)."""
    etc = image_dir / "etc"
    if etc.exists():
        shutil.rmtree(etc)
    etc.mkdir(parents=True)
    for name in ETC_FILES:
        src = Path("/etc") / name
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, etc / name, symlinks=True)
        elif src.exists() or src.is_symlink():
            shutil.copy2(src, etc / name, follow_symlinks=False)
    (etc / "kubernetes").mkdir()  # mount point of /var/node/etc/kubernetes
    (etc / "cni/net.d").mkdir(parents=True)  # mount point of /var/node/etc/cni/net.d

    bin_dir = image_dir / "bin"
    if bin_dir.exists():
        shutil.rmtree(bin_dir)
    bin_dir.mkdir()
    for script in ("kubeadm.sh", "kubelet.sh"):
        shutil.copy2(SCRIPTS / script, bin_dir / script)
    tools = set(TOOLS)
    if (DOUBLES / "bin").is_dir():
        tools |= {p.name for p in (DOUBLES / "bin").iterdir() if not p.name.startswith(".")}
    for tool in sorted(tools):
        (bin_dir / tool).symlink_to(NODE_KUBECTL if tool == "kubectl" else
                                    f"{DOUBLES_MOUNT}/bin/{tool}")
    (bin_dir / "ash").symlink_to("/usr/bin/busybox")  # the image's shell (`ash -l`)
    shutil.copy2(SCRIPTS / "logger.sh", image_dir / "logger.sh")


def build_rootfs(rootfs: Path) -> None:
    """An empty root with the mount points the containers need."""
    for d in ROOTFS_DIRS:
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    for name, target in ROOTFS_LINKS.items():
        link = rootfs / name
        if not link.is_symlink():
            link.symlink_to(target)


def _minor_of(binary: Path) -> int | None:
    """The client's minor version, from ``kubectl version --client -o json``."""
    try:
        done = subprocess.run([str(binary), "version", "--client", "-o", "json"],
                              capture_output=True, text=True, timeout=30, check=False)
        info = json.loads(done.stdout)["clientVersion"]
        return int(re.sub(r"\D.*", "", str(info["minor"])))
    except (OSError, ValueError, KeyError, TypeError, subprocess.TimeoutExpired):
        return None


@cache
def real_kubectls() -> dict[int, str]:
    """The real kubectl binaries of the host by minor version: the Google Cloud CLI's
    ``kubectl.1.NN`` beside the ``kubectl`` on the PATH (its symlink followed), and Debian's
    kubernetes-client. Only binaries under /usr (not /usr/local, which the image covers) are
    visible at the same path inside the containers."""
    found: dict[int, str] = {}
    on_path = shutil.which("kubectl")
    if on_path:
        folder = Path(os.path.realpath(on_path)).parent
        for candidate in sorted(folder.glob("kubectl.1.*")):
            m = re.fullmatch(r"kubectl\.1\.(\d+)", candidate.name)
            if m and os.access(candidate, os.X_OK):
                found[int(m.group(1))] = str(candidate)
    debian = DEBIAN_KUBECTL
    if debian.exists() and not debian.is_symlink():
        minor = _minor_of(debian)
        if minor is not None:
            found.setdefault(minor, str(debian))
    return {m: p for m, p in found.items()
            if p.startswith("/usr/") and not p.startswith("/usr/local/")}


def real_kubectl(kubernetes_version: str) -> str | None:
    """The real kubectl for a node of this version: the same minor, else the nearest (the
    newer one on a tie); None when the host has none."""
    found = real_kubectls()
    if not found:
        return None
    minor = int(kubernetes_version.lstrip("v").split(".")[1])
    return found[min(found, key=lambda m: (abs(m - minor), -m))]


def link_kubectl(lab_dir: Path, kubernetes_version: str) -> str:
    """Point the node's ``/lab/bin/kubectl`` at its real kubectl (or, with none on the host,
    at the double, which says so on every call). Returns the target."""
    target = real_kubectl(kubernetes_version) or DOUBLE_KUBECTL
    link = lab_dir / "bin" / "kubectl"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    return target
