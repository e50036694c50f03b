"""What a run put on its nodes and in the cluster is gone when it ends, failed or not."""

from __future__ import annotations

import os
import signal

from tests.fleet.inprocess import InProcessFleet, follows_log
from tests.unit.clirun import K8slk
from tests.unit.conftest import FleetFactory

CONFIG = "/run/node/kubeadm.yaml"


def interrupt() -> None:
    """Ctrl-C, as the terminal sends it: SIGINT to the process the CLI runs in."""
    os.kill(os.getpid(), signal.SIGINT)


def test_a_failed_join_leaves_no_config_on_its_node(fleet: InProcessFleet, k8slk: K8slk) -> None:
    fleet.fail_kubeadm("w-1")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    assert run.outcomes["w-1"] == "failed"
    assert fleet.file("w-1", CONFIG) is None  # the token it held is not left in /run
    assert f"removed {CONFIG}" in run.log
    assert run.report["messages"] == [] or all("cleanup" not in m for m in run.report["messages"])


def test_a_failed_init_leaves_no_config_and_no_word_about_a_token_never_minted(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    fleet.fail_kubeadm("cp-1")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 1, run.why()
    assert run.outcomes["cp-1"] == "failed"
    assert fleet.file("cp-1", CONFIG) is None
    assert "token" not in " ".join(run.report["messages"]).lower(), run.report["messages"]
    assert "cleanup FAIL" not in run.log and "cleanup warn" not in run.log, run.log


def test_a_config_kubeadm_still_reads_is_left_in_place(fleet: InProcessFleet, k8slk: K8slk) -> None:
    fleet.on_trigger("cp-1", interrupt)  # Ctrl-C once the init is triggered...
    fleet.on_command("cp-1", follows_log, interrupt)  # ...and again: the init is cancelled
    with fleet.holding_kubeadm("cp-1"):
        run = k8slk("bootstrap", fleet.inventory, "--json")
        assert run.code == 130, run.why()
        assert fleet.file("cp-1", CONFIG) is not None  # kubeadm has not read it yet
        assert "left in place: the kubeadm task is still running" in run.log


def test_the_uploaded_certificates_are_deleted_at_the_end(
    fleet_factory: FleetFactory, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 2)
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert fleet.call(lambda: fleet.fleet.cluster.cert_key) is None
    assert "deleted the kubeadm-certs Secret" in run.log
