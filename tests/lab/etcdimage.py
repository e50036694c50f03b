"""The etcd image of the lab's nodes: Debian's etcd binaries as an OCI image in containerd.

On a LinuxKit node, etcd's binaries exist only in the etcd image kubeadm names
(``registry.k8s.io/etcd:<version>-0``); with the etcd static pod stopped, ``etcd restore`` runs
them in a one-off container (``ctr --namespace k8s.io run --rm IMAGE ...``). The lab's static
pods are processes the kubelet double starts, but its containerd is real: each node imports an
image built here from the host's ``/usr/bin/etcd`` and ``/usr/bin/etcdctl`` (Debian's etcd-server
and etcd-client; 3.4 has no etcdutl) at ``/usr/local/bin``, as the real image lays them out,
with the C library they link against (Debian builds them dynamically). The tag carries the
binaries' own version, and the lab's etcd manifest names exactly that tag.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from functools import cache
from pathlib import Path

BINARIES = ("etcd", "etcdctl", "etcdutl")  # those the host has go in
REPOSITORY = "registry.k8s.io/etcd"
ARCHIVE = "etcd-image.tar"  # in the lab's image directory


@cache
def etcd_version() -> str:
    """``etcd --version``'s version (``3.4.23``)."""
    done = subprocess.run(["/usr/bin/etcd", "--version"], capture_output=True, text=True,
                          check=True, timeout=30)
    m = re.search(r"etcd Version: (\S+)", done.stdout)
    if m is None:
        raise RuntimeError(f"etcd --version says no version: {done.stdout.strip()}")
    return m[1]


def image_name() -> str:
    """The tag kubeadm's naming would give this etcd: ``registry.k8s.io/etcd:3.4.23-0``."""
    return f"{REPOSITORY}:{etcd_version()}-0"


def _libraries(binary: Path) -> list[Path]:
    """The shared objects ``binary`` loads (ldd), the loader among them."""
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    found = []
    for line in done.stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            found.append(Path(m[1]))
    return found


def _layer() -> bytes:
    """One uncompressed tar layer: the binaries at /usr/local/bin, their libraries where the
    loader looks for them (the real files, each link's path holding a copy)."""
    files: dict[str, Path] = {}
    for name in BINARIES:
        src = Path("/usr/bin") / name
        if src.exists():
            files[f"usr/local/bin/{name}"] = src
            for lib in _libraries(src):
                files[str(lib).lstrip("/")] = lib
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for arc in sorted(files):
            parts = arc.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            data = Path(os.path.realpath(files[arc])).read_bytes()
            info = tarfile.TarInfo(arc)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
    return buf.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}"


def build(image_dir: Path) -> Path:
    """Write the OCI image archive ``image_dir/etcd-image.tar``; its path."""
    layer = _layer()
    compressed = gzip.compress(layer, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers",
                   "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
    }).encode()
    out = image_dir / ARCHIVE
    image_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w") as tar:
        layer_digest = _blob(tar, compressed)
        config_digest = _blob(tar, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": len(compressed)}],
        }).encode()
        manifest_digest = _blob(tar, manifest)
        index = json.dumps({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": len(manifest),
                "annotations": {"io.containerd.image.name": image_name(),
                                "org.opencontainers.image.ref.name": f"{etcd_version()}-0"},
            }],
        }).encode()
        for name, data in (("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                           ("index.json", index)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def import_argv(archive: Path) -> list[str]:
    """What the node's containerd is told, as images reach a LinuxKit node's k8s.io namespace."""
    return ["ctr", "--namespace", "k8s.io", "images", "import", str(archive)]
