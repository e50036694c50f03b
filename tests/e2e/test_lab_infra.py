"""The lab's nodes behave as the LinuxKit node contract says, seen from both sides: the SSH
shell (real sshd) and the kubelet container (real containerd and ctr). None of this needs the
kubeadm/kubectl/kubelet doubles."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab import Lab, LabError, etcdimage, procs, slots
from tests.lab.image import real_kubectl

pytestmark = pytest.mark.lab

CTR = "ctr --namespace services.linuxkit"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ kubeadm\.out (.*)$")
WAITING = "Waiting for /run/kubeadm-run to exist before running kubeadm commands"


@pytest.fixture(scope="module")
def lab(lab_factory_module: Any) -> Iterator[Lab]:
    yield lab_factory_module(nodes=3, control_planes=1, settle=0.2)


def tasks(lab: Lab, node: str) -> dict[str, str]:
    out = lab.ssh(node, f"{CTR} tasks ls")
    assert out.returncode == 0, out.stderr
    return {c[0]: c[2] for c in (line.split() for line in out.stdout.splitlines()[1:])}


def test_inventory_and_node_facts(lab: Lab) -> None:
    text = lab.inventory_path.read_text()
    s = lab.slot
    assert f"controlPlaneEndpoint: 127.0.{s}.11:6443" in text
    assert f"- {{name: cp-1, address: 127.0.{s}.11, role: control-plane}}" in text
    assert f"- {{name: w-2, address: 127.0.{s}.13, role: worker}}" in text
    assert "identityFile: id_ed25519" in text and "knownHosts: known_hosts" in text
    assert "addons: [cni/lab-cni.yaml]" in text and (lab.dir / "cni" / "lab-cni.yaml").is_file()
    assert (lab.dir / "id_ed25519").stat().st_mode & 0o777 == 0o600
    out = lab.kubelet_exec("w-1", ["cat", "/lab/node.json"])
    assert json.loads(out.stdout) == {
        "name": "w-1", "address": f"127.0.{s}.12", "role": "worker",
        "kubernetesVersion": "v1.31.3", "settleSeconds": 0.2, "readyDelay": 0.3,
        "strictNetwork": True, "realEtcd": True,
        # the image built from this machine's etcd, which the node's etcd manifest names
        "etcdImage": etcdimage.image_name(),
    }


def test_sshd_is_root_by_key_only_without_sftp(lab: Lab) -> None:
    out = lab.ssh("cp-1", "id -un; echo $HOME")
    assert out.returncode == 0 and out.stdout.split() == ["root", "/root"]
    sftp = subprocess.run([*lab.ssh_argv("cp-1"), "-s", "sftp"], capture_output=True, text=True)
    assert sftp.returncode != 0 and "subsystem request failed" in sftp.stderr
    pw = subprocess.run(
        [*lab.ssh_argv("cp-1"), "-o", "PreferredAuthentications=password,keyboard-interactive",
         "true"],
        capture_output=True, text=True,
    )
    assert pw.returncode == 255 and "Permission denied (publickey)" in pw.stderr


def test_both_tasks_run_in_services_linuxkit(lab: Lab) -> None:
    for node in ("cp-1", "w-1"):
        assert tasks(lab, node) == {"kubelet": "RUNNING", "kubeadm": "RUNNING"}
    lines = lab.follow("w-2", re.escape(WAITING))
    assert LINE.match(lines[-1]) and LINE.match(lines[-1]).group(1) == WAITING  # type: ignore[union-attr]
    kubelet = lab.follow("w-2", "kubelet.sh: waiting", path="/var/log/kubelet.out.log")
    assert kubelet[-1].split(" ", 2)[1:] == [
        "kubelet.out", "kubelet.sh: waiting for /var/lib/kubelet/config.yaml"
    ]


@pytest.mark.parametrize(
    ("inside", "outside"),
    [
        ("/run/lab-probe", "/run/node/lab-probe"),
        ("/etc/kubernetes/lab-probe", "/var/node/etc/kubernetes/lab-probe"),
        ("/var/lib/lab-probe", "/var/node/var/lib/lab-probe"),
        ("/hostroot/var/log/lab-probe", "/var/log/lab-probe"),
        ("/root/lab-probe", "/root/lab-probe"),
        ("/root/lab-probe2", "/var/node/root/lab-probe2"),
    ],
)
def test_mounts_seen_from_both_sides(lab: Lab, inside: str, outside: str) -> None:
    out = lab.kubelet_exec("cp-1", ["sh", "-c", f"cat > {inside}"], input=f"from {inside}\n")
    assert out.returncode == 0, out.stderr
    assert lab.ssh("cp-1", f"cat {outside}").stdout == f"from {inside}\n"
    assert lab.read("cp-1", outside) == f"from {inside}\n".encode()


def test_node_mounts_are_private(lab: Lab) -> None:
    out = lab.ssh("w-1", "mount")
    mounts = {line.split()[2]: line.split()[4] for line in out.stdout.splitlines()}
    assert mounts["/run"] == "tmpfs" and mounts["/var/log"] == "tmpfs"
    assert "/var/node" in mounts and "/root" in mounts
    host = Path("/proc/self/mountinfo").read_text()
    assert str(lab.dir) not in host  # nothing of any node leaks to the host
    assert not Path("/run/node").exists()
    # Each node has its own /run: a file on one is not on another.
    lab.ssh("w-1", "echo w1 > /run/node/only-here")
    assert lab.ssh("w-2", "test -e /run/node/only-here").returncode == 1


def test_container_has_the_image_tools(lab: Lab) -> None:
    script = (
        "python3 -c 'import cryptography, yaml; print(\"py-ok\")' && openssl version && "
        "ls /usr/local/bin && echo $KUBECONFIG && readlink /usr/local/bin/kubeadm"
    )
    out = lab.kubelet_exec("cp-1", ["sh", "-c", script])
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert "py-ok" in words and "OpenSSL" in words
    for tool in ("kubeadm", "kubectl", "kubelet", "kubeadm.sh", "kubelet.sh"):
        assert tool in words
    assert "/etc/kubernetes/admin.conf" in words
    assert "/opt/lab/doubles/bin/kubeadm" in words


def test_kubectl_is_the_real_one_of_the_nodes_minor(lab: Lab) -> None:
    """The node's kubectl is the host's real kubectl of the node's minor version (else the
    nearest), so every kubectl call the tool makes goes through the real client."""
    want = real_kubectl(lab.state.node("cp-1").kubernetes_version)
    if want is None:
        pytest.skip("no real kubectl on this host: the lab falls back to its double")
    out = lab.kubelet_exec("cp-1", ["sh", "-c", "readlink /usr/local/bin/kubectl "
                                    "/lab/bin/kubectl && kubectl version --client -o json"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == ["/lab/bin/kubectl", want]
    minor = json.loads("\n".join(lines[2:]))["clientVersion"]["minor"]
    assert want.endswith(f".{minor}") or want == "/usr/bin/kubectl"


def test_ctr_exec_passes_stdin_and_exit_code(lab: Lab) -> None:
    out = lab.kubelet_exec("w-1", ["sh", "-c", "wc -c; exit 7"], input="12345")
    assert out.returncode == 7 and out.stdout.strip() == "5"


@pytest.mark.parametrize(("flag", "shown"), [("init ", "init "), ("init\r", "init\r"),
                                             ("reset\n", "reset")])
def test_unknown_flag_stops_the_trigger(lab_factory: Any, flag: str, shown: str) -> None:
    lab = lab_factory(nodes=1)
    lab.ssh("cp-1", "cat > /run/node/kubeadm.yaml", input="kind: InitConfiguration\n")
    lab.ssh("cp-1", "cat > /run/node/kubeadm-run", input=flag)
    lines = lab.follow("cp-1", "Unknown kubeadm flag")
    messages = [LINE.match(line).group(1) for line in lines]  # type: ignore[union-attr]
    assert messages == [
        WAITING,
        "sleeping a bit more to make sure file is written",
        f"Found kubeadm flag {shown}",
        f"Unknown kubeadm flag {shown}",
    ]
    lab.wait_task_stopped("cp-1", "kubeadm")
    assert tasks(lab, "cp-1")["kubeadm"] == "STOPPED"
    # Nothing removed: the configuration and the trigger stay.
    assert lab.exists("cp-1", "/run/node/kubeadm.yaml")
    assert lab.exists("cp-1", "/run/node/kubeadm-run")


def test_marker_means_kubeadm_never_runs_again(lab_factory: Any) -> None:
    lab = lab_factory(nodes=1)
    marker = "mkdir -p /var/lib/kubelet && echo 'kind: X' > /var/lib/kubelet/config.yaml"
    out = lab.kubelet_exec("cp-1", ["sh", "-c", marker])
    assert out.returncode == 0, out.stderr
    lab.follow("cp-1", "config.yaml has arrived", path="/var/log/kubelet.out.log")
    lab.fault("cp-1", "reboot")
    lab.rewrite_known_hosts()
    lines = lab.follow("cp-1", "Kubernetes Node already has kubelet configuration")
    assert len(lines) == 1  # the first line of this boot's log: nothing else ran
    lab.wait_task_stopped("cp-1", "kubeadm")
    assert tasks(lab, "cp-1")["kubeadm"] == "STOPPED"


def test_reboot(lab_factory: Any) -> None:
    lab = lab_factory(nodes=2)
    old_key = lab.host_key("w-1")
    lab.ssh("w-1", "echo kept > /var/node/kept; echo gone > /run/node/gone")
    lab.fault("w-1", "reboot", "--kubernetes-version", "v1.32.0")

    assert lab.host_key("w-1") != old_key
    refused = lab.ssh("w-1", "true")
    assert refused.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    assert lab.ssh("cp-1", "true").returncode == 0  # the other node is untouched

    lab.rewrite_known_hosts()
    out = lab.ssh("w-1", "cat /var/node/kept; ls /run/node; ls /var/log")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "kept" and "gone" not in out.stdout
    assert lab.follow("w-1", "Waiting for")[0].endswith(WAITING)  # a fresh log
    assert tasks(lab, "w-1") == {"kubelet": "RUNNING", "kubeadm": "RUNNING"}
    facts = json.loads(lab.kubelet_exec("w-1", ["cat", "/lab/node.json"]).stdout)
    assert facts["kubernetesVersion"] == "v1.32.0"


def test_partition_and_heal(lab: Lab) -> None:
    lab.fault("w-2", "partition")
    try:
        cut = lab.ssh("w-2", "true", connect_timeout=1)
        assert cut.returncode == 255 and "timed out" in cut.stderr
        assert lab.ssh("w-1", "true").returncode == 0
    finally:
        lab.fault("w-2", "heal")
    assert lab.ssh("w-2", "true").returncode == 0
    lab.fault("w-2", "heal")  # healing twice is fine


def test_ssh_stop_and_start(lab: Lab) -> None:
    lab.fault("w-1", "ssh-stop")
    try:
        stopped = lab.ssh("w-1", "true")
        assert stopped.returncode == 255 and "Connection refused" in stopped.stderr
        assert lab.kubelet_exec("cp-1", ["true"]).returncode == 0
    finally:
        lab.fault("w-1", "ssh-start")
    assert lab.ssh("w-1", "true").returncode == 0  # same boot: same host key


def test_fault_switches_reach_the_containers(lab: Lab) -> None:
    lab.fault("w-1", "kubeadm-fail", "wait-control-plane")
    lab.fault("w-1", "kubeadm-hang")
    out = lab.kubelet_exec("w-1", ["sh", "-c", "cat /lab/faults/kubeadm-fail; ls /lab/faults"])
    assert out.stdout.split() == ["wait-control-plane", "kubeadm-fail", "kubeadm-hang"]
    lab.kubelet_exec("w-1", ["rm", "-f", "/lab/faults/kubeadm-fail", "/lab/faults/kubeadm-hang"])


def test_down_leaves_nothing_and_is_idempotent(lab_factory: Any) -> None:
    lab = lab_factory(nodes=2)
    lab.fault("w-1", "partition")
    pids = procs.pids_in(f"k8slk-lab-{lab.slot}")
    assert len(pids) > 10
    lab.down()
    lab.down()
    assert not [p for p in pids if procs.alive(p)]
    assert not list(Path("/sys/fs/cgroup").glob(f"*/k8slk-lab-{lab.slot}"))
    assert str(lab.dir) not in Path("/proc/self/mountinfo").read_text()
    assert not slots.lock_path(lab.slot).exists()
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert f"k8slk_lab_{lab.slot}" not in nft
    with socket.socket() as s:  # the address is free again
        s.bind((lab.node("cp-1").address, 22))


def test_two_labs_side_by_side(lab: Lab, lab_factory: Any) -> None:
    other = lab_factory(nodes=1)
    assert other.slot != lab.slot
    assert other.ssh("cp-1", "cat /var/node/root/.ssh/authorized_keys").returncode == 0
    assert lab.ssh("cp-1", "true").returncode == 0


def test_a_lab_that_cannot_start_says_why(lab: Lab, tmp_path: Path) -> None:
    with pytest.raises(LabError, match=f"slot {lab.slot} is taken"):
        Lab.up(tmp_path / "taken", nodes=1, slot=lab.slot)
    free = next(s for s in range(249, 1, -1) if not slots.lock_path(s).exists())
    with socket.socket() as s:
        s.bind((f"127.0.{free}.11", 22))
        s.listen()
        with pytest.raises(LabError, match=rf"127\.0\.{free}\.11:22 is in use"):
            Lab.up(tmp_path / "busy", nodes=1, slot=free)
    assert not slots.lock_path(free).exists()
