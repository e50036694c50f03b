"""A rebooted control plane keeps its cluster: the API double's state lives under /var/node,
the kubelet double starts it again at boot, and the nodes come back Ready. A rebooted worker's
kubeadm never runs again (the marker), and its kubelet reports it Ready again."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.lab.fixture import require_doubles
from tests.lab.manual import apply_pod_network, ca_pin, create_token, in_kubelet, init, join

pytestmark = pytest.mark.lab


def nodes_ready(lab: Any) -> dict[str, bool]:
    out = in_kubelet(lab, "cp-1", "kubectl get nodes -o json")
    if out.returncode != 0:
        return {}
    return {i["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True"
                                       for c in i["status"]["conditions"])
            for i in json.loads(out.stdout)["items"]}


def wait_ready(lab: Any, names: set[str], timeout: float = 60) -> dict[str, bool]:
    """The API offers no watch here: ask with backoff until every node is Ready."""
    deadline, pause = time.monotonic() + timeout, 0.1
    while True:
        ready = nodes_ready(lab)
        if (set(ready) == names and all(ready.values())) or time.monotonic() > deadline:
            return ready
        time.sleep(pause)
        pause = min(pause * 2, 2)


def test_cluster_survives_reboots(lab_factory: Any) -> None:
    require_doubles()
    lab = lab_factory(nodes=2, control_planes=1)
    init(lab)
    token = create_token(lab)
    join(lab, "w-1", token, ca_pin(lab), f"{lab.node('cp-1').address}:6443")
    lab.follow("w-1", "kubeadm has completed")
    apply_pod_network(lab)  # its CNI config is under /var/node: it survives the reboots
    assert wait_ready(lab, {"cp-1", "w-1"}) == {"cp-1": True, "w-1": True}

    lab.fault("cp-1", "reboot")
    lab.fault("w-1", "reboot")
    lab.rewrite_known_hosts()
    assert wait_ready(lab, {"cp-1", "w-1"}) == {"cp-1": True, "w-1": True}
    assert token in in_kubelet(lab, "cp-1", "kubeadm token list").stdout
    for node in ("cp-1", "w-1"):
        first = lab.follow(node, "already has kubelet configuration")
        assert len(first) == 1  # kubeadm did nothing else this boot
