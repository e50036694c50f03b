"""Failures on the lab, by hand (plain ssh and ctr), with kubeadm's real text: what k8slk-ops
must recognise and report. The node keeps what a failed run leaves behind (the configuration,
the trigger, maybe the marker) exactly as a LinuxKit node does."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lab import Lab
from tests.lab.fixture import require_doubles
from tests.lab.manual import (
    CTR,
    ca_pin,
    create_token,
    in_kubelet,
    init,
    init_config,
    join,
    join_config,
    trigger,
    write_config,
)

pytestmark = pytest.mark.lab

COMPLETED = "kubeadm has completed... removing configuration"
STACK = "To see the stack trace of this error execute with --v=5 or higher"


@pytest.fixture(scope="module")
def cluster(lab_factory_module: Any) -> Iterator[tuple[Lab, str, str]]:
    """One initialised control plane and spare nodes to fail joins on: (lab, token, pin)."""
    require_doubles()
    lab = lab_factory_module(nodes=5, control_planes=2)
    init(lab)
    yield lab, create_token(lab), ca_pin(lab)


def failed(lab: Lab, node: str, pattern: str) -> list[str]:
    """Follow the node's log to kubeadm's last failure line; wait for the task to stop."""
    lines = lab.follow(node, pattern)
    lines += lab.follow(node, re.escape(STACK))[len(lines):]
    lab.wait_task_stopped(node, "kubeadm")
    return lines


def assert_left_behind(lab: Lab, node: str) -> None:
    """sh -e stopped the trigger: no completed line, config and trigger still there."""
    log = lab.read(node, "/var/log/kubeadm.out.log").decode()
    assert COMPLETED not in log
    assert lab.exists(node, "/run/node/kubeadm.yaml")
    assert lab.exists(node, "/run/node/kubeadm-run")
    assert lab.tasks(node)["kubeadm"][1] == "STOPPED"


def test_join_with_unknown_token(cluster: tuple[Lab, str, str]) -> None:
    lab, _, pin = cluster
    bogus = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
    join(lab, "w-1", bogus, pin, f"{lab.node('cp-1').address}:6443")
    lines = failed(lab, "w-1", "could not find a JWS signature")
    assert any(
        "error execution phase preflight: couldn't validate the identity of the API Server: "
        "could not find a JWS signature in the cluster-info ConfigMap for token ID "
        f'"{bogus.split(".")[0]}"' in line for line in lines
    )
    assert_left_behind(lab, "w-1")


def test_join_with_wrong_ca_pin(cluster: tuple[Lab, str, str]) -> None:
    lab, token, pin = cluster
    wrong = "sha256:" + secrets.token_hex(32)
    join(lab, "w-2", token, wrong, f"{lab.node('cp-1').address}:6443")
    lines = failed(lab, "w-2", "are pinned")
    assert any(f'none of the public keys "{pin}" are pinned' in line for line in lines)
    assert_left_behind(lab, "w-2")
    assert not lab.exists("w-2", "/var/node/var/lib/kubelet/config.yaml")  # failed before it


def test_bad_flag_in_kubeadm_run(cluster: tuple[Lab, str, str]) -> None:
    lab, token, pin = cluster
    endpoint = f"{lab.node('cp-1').address}:6443"
    write_config(lab, "w-3", join_config(lab, "w-3", token, pin, endpoint))
    trigger(lab, "w-3", "joni")
    lines = lab.follow("w-3", "Unknown kubeadm flag")
    assert lines[-1].endswith(" kubeadm.out Unknown kubeadm flag joni")
    lab.wait_task_stopped("w-3", "kubeadm")
    assert_left_behind(lab, "w-3")


def test_expired_certificate_key(cluster: tuple[Lab, str, str]) -> None:
    lab, token, pin = cluster
    # A certificate key whose uploaded certificates are gone (they live two hours).
    key = secrets.token_hex(32)
    text = join_config(lab, "cp-2", token, pin, f"{lab.node('cp-1').address}:6443", key)
    write_config(lab, "cp-2", text)
    trigger(lab, "cp-2", "join")
    lines = failed(lab, "cp-2", "kubeadm-certs")
    assert any('Secret "kubeadm-certs" was not found in the "kube-system" Namespace' in line
               for line in lines)
    assert_left_behind(lab, "cp-2")


def test_kubeadm_failing_mid_init(lab_factory: Any) -> None:
    require_doubles()
    lab = lab_factory(nodes=1)
    lab.fault("cp-1", "kubeadm-fail", "wait-control-plane")
    write_config(lab, "cp-1", init_config(lab))
    trigger(lab, "cp-1", "init")
    lines = failed(lab, "cp-1", "error execution phase wait-control-plane")
    assert any(line.split(" ", 2)[2].startswith("error execution phase wait-control-plane")
               for line in lines)
    assert_left_behind(lab, "cp-1")
    # kubelet-start ran before the failure: the node looks configured, the log says otherwise.
    assert lab.exists("cp-1", "/var/node/var/lib/kubelet/config.yaml")
    assert not (lab.dir / "nodes/cp-1/lab/faults/kubeadm-fail").exists()  # one-shot


def test_reused_running_exec_id(lab_factory: Any) -> None:
    lab = lab_factory(nodes=1)
    # The first exec prints once it runs; reading that line is the event the second waits on.
    script = f"""
mkfifo /run/node/started
{CTR} tasks exec --exec-id stale-id kubelet sh -c 'echo running; exec sleep 600' \\
    > /run/node/started &
read line < /run/node/started
{CTR} tasks exec --exec-id stale-id kubelet true
echo "rc=$?"
{CTR} tasks kill --exec-id stale-id --signal KILL kubelet
"""
    out = lab.ssh("cp-1", script)
    assert "ctr: id stale-id: already exists" in out.stderr
    assert "rc=1" in out.stdout
    assert in_kubelet(lab, "cp-1", "true").returncode == 0  # a fresh ID works
