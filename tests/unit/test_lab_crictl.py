"""The lab's crictl double: the kubelet's static pods as containers, crictl's own refusals."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

DOUBLES = Path(__file__).resolve().parents[1] / "lab" / "doubles"
PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(not Path(PYTHON).exists(), reason="Debian's python3 is needed")


def crictl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(DOUBLES / "bin" / "crictl"), *args], capture_output=True,
                          text=True, env=dict(os.environ, LAB_ROOT=str(root)), timeout=30,
                          check=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "node.json").write_text(json.dumps(
        {"name": "cp-1", "address": "127.0.9.11", "role": "control-plane"}))
    return tmp_path


def _record(root: Path, name: str, pid: int, image: str = "") -> str:
    pods = root / "run" / "lab-pods"
    pods.mkdir(parents=True, exist_ok=True)
    cid = f"{name}0123456789abcdef" * 2
    (pods / f"{name}.json").write_text(json.dumps(
        {"id": cid, "name": name, "pid": pid, "created": 0, "image": image}))
    return cid


def test_ps_names_the_image_the_pods_manifest_named(root: Path) -> None:
    _record(root, "etcd", os.getpid(), "registry.k8s.io/etcd:3.4.23-0")
    listed = json.loads(crictl(root, "ps", "-o", "json").stdout)["containers"]
    assert [c["image"]["image"] for c in listed] == ["registry.k8s.io/etcd:3.4.23-0"]
    table = crictl(root, "ps", "--name", "etcd").stdout.splitlines()
    assert "etcd:3.4.23-0" in table[1]


def test_ps_lists_running_static_pods_only(root: Path) -> None:
    assert crictl(root, "ps", "--name", "etcd", "-q").stdout == ""
    etcd = _record(root, "etcd", os.getpid())
    with subprocess.Popen(["true"]) as gone:
        gone.wait()
    _record(root, "kube-apiserver", gone.pid)  # exited: not listed
    assert crictl(root, "ps", "--name", "etcd", "-q").stdout.split() == [etcd]
    listed = json.loads(crictl(root, "ps", "-o", "json").stdout)["containers"]
    assert [(c["metadata"]["name"], c["state"]) for c in listed] == [("etcd", "CONTAINER_RUNNING")]
    assert listed[0]["labels"]["io.kubernetes.pod.name"] == "etcd-cp-1"


def test_exec_refuses_unknown_containers_and_binaries_the_image_lacks(root: Path) -> None:
    etcd = _record(root, "etcd", os.getpid())
    unknown = crictl(root, "exec", "feedface", "etcdctl", "version")
    assert unknown.returncode == 1
    assert 'could not find container \\"feedface\\"' in unknown.stderr
    shell = crictl(root, "exec", etcd[:12], "cat", "/var/lib/etcd/x.db")
    assert shell.returncode == 1
    assert 'exec: \\"cat\\": executable file not found in $PATH' in shell.stderr
