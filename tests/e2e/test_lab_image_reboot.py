"""The lab's boot server and reboot(8): ``image`` sets what a node runs after its next boot,
``reboot`` in the node's shell boots it into that image after a pause (new host key, empty
/run, /var/node kept), and ``no-boot`` keeps a rebooted node down until ``heal``."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from tests.lab.manual import in_kubelet

pytestmark = pytest.mark.lab


def wait_boots(lab: Any, name: str, boots: int, timeout: float = 60) -> bool:
    """The lab's record of the node says it booted ``boots`` times and its sshd answers."""
    deadline, pause = time.monotonic() + timeout, 0.1
    while time.monotonic() < deadline:
        lab.state = type(lab).open(lab.dir).state
        n = lab.state.node(name)
        if n.boots >= boots and not n.down:
            try:
                with socket.create_connection((n.spec.address, 22), timeout=2):
                    return True
            except OSError:
                pass
        time.sleep(pause)
        pause = min(pause * 2, 1)
    return False


def test_reboot_from_the_shell_boots_the_served_image(lab_factory: Any) -> None:
    lab = lab_factory(nodes=1, kubernetes_version="v1.30.5")
    lab.set_image("v1.31.2")
    key_before = lab.host_key("cp-1")
    assert lab.ssh("cp-1", "echo x > /run/mark && echo y > /var/node/mark").returncode == 0
    done = lab.ssh("cp-1", "reboot")
    assert done.returncode == 0, done.stderr
    assert wait_boots(lab, "cp-1", 2)
    assert lab.host_key("cp-1") != key_before
    lab.rewrite_known_hosts()
    assert lab.ssh("cp-1", "test -e /run/mark").returncode == 1
    assert lab.ssh("cp-1", "cat /var/node/mark").stdout == "y\n"
    assert in_kubelet(lab, "cp-1", "kubeadm version -o short").stdout.strip() == "v1.31.2"


def test_no_boot_keeps_the_node_down_until_heal(lab_factory: Any) -> None:
    lab = lab_factory(nodes=1)
    lab.fault("cp-1", "no-boot")
    assert lab.ssh("cp-1", "reboot").returncode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not type(lab).open(lab.dir).state.node("cp-1").down:
        time.sleep(0.2)
    assert type(lab).open(lab.dir).state.node("cp-1").down
    with pytest.raises(OSError):
        socket.create_connection((lab.node("cp-1").address, 22), timeout=2).close()
    lab.fault("cp-1", "heal")
    assert wait_boots(lab, "cp-1", 2)
    lab.rewrite_known_hosts()
    assert lab.ssh("cp-1", "true").returncode == 0
