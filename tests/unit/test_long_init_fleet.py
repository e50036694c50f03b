"""A control plane whose init runs on after the run that triggered it was killed, and has
printed more than a log tail's worth since its trigger (real kubeadm init prints 60-80 lines).

Its state is ``running`` however long the log, and a new run must neither trigger it again nor
rewrite its kubeadm.yaml.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.fleet.inprocess import InProcessFleet, follows_log
from tests.fleet.node import KUBEADM_RUN, KUBEADM_YAML
from tests.unit.clirun import K8slk

# What kubeadm init prints between its trigger and its end, one phase line after another.
INIT_LINES = [
    '[certs] Generating "apiserver-kubelet-client" certificate and key',
    '[certs] Generating "front-proxy-ca" certificate and key',
    '[certs] Generating "etcd/server" certificate and key',
    '[kubeconfig] Writing "controller-manager.conf" kubeconfig file',
    '[control-plane] Creating static Pod manifest for "kube-scheduler"',
    "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods",
] * 20

def interrupt() -> None:
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def long_init(fleet: InProcessFleet, k8slk: K8slk) -> Iterator[InProcessFleet]:
    """cp-1's init triggered by a bootstrap killed while it followed the log (two Ctrl-C), then
    120 lines of init output; kubeadm is held there until a run follows it again."""
    fleet.hold_kubeadm("cp-1")
    fleet.on_trigger("cp-1", interrupt)
    fleet.on_command("cp-1", follows_log, interrupt)
    killed = k8slk("bootstrap", fleet.inventory, "--json")
    assert killed.code == 130, killed.why()
    fleet.wait_kubeadm_held("cp-1")
    fleet.say("cp-1", INIT_LINES)
    try:
        yield fleet
    finally:
        fleet.release_kubeadm("cp-1")


def test_status_shows_an_init_of_120_lines_as_running(
    long_init: InProcessFleet, k8slk: K8slk
) -> None:
    run = k8slk("status", long_init.inventory, "--json")
    assert run.nodes["cp-1"]["details"]["kubeadm"] == "running"


def test_a_new_bootstrap_leaves_the_running_init_alone(
    long_init: InProcessFleet, k8slk: K8slk
) -> None:
    fleet = long_init
    written: list[str] = []
    for path in (KUBEADM_YAML, KUBEADM_RUN):
        fleet.on_write("cp-1", path, lambda p=path: written.append(p), times=10)
    fleet.on_command("cp-1", follows_log, lambda: fleet.release_kubeadm("cp-1"))
    run = k8slk("bootstrap", fleet.inventory, "--break-lock", "--json")
    assert written == [], run.why()
