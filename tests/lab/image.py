"""The node "image": what the kubelet and kubeadm containers see as their root.

The host's /usr (with /bin, /sbin, /lib, /lib64 as its usual symlinks) is bound read-only, so
python3 (Debian's, with cryptography and yaml) and openssl work inside. /etc is a small copy of
the host files those programs need rather than the host's /etc, so that /etc/kubernetes can be
a bind mount of the node's persistent /var/node/etc/kubernetes. /usr/local/bin holds the
image's scripts and the kubeadm/kubectl/kubelet doubles.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "image"
DOUBLES = HERE / "doubles"
# Inside the containers.
DOUBLES_MOUNT = "/opt/lab/doubles"
TOOLS = ("kubeadm", "kubectl", "kubelet")
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
        (bin_dir / tool).symlink_to(f"{DOUBLES_MOUNT}/bin/{tool}")
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
