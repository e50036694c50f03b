"""bootstrap, end to end against the lab: real sshd, containerd and ctr; doubles of kubeadm.

The happy path is run once per module (one lab) and several tests read its results; every
failure path gets a fresh lab of its own.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import (
    cli,
    consumed_configs,
    kubectl_nodes,
    log_times,
    secrets_of,
    trigger_state,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def bootstrapped(lab_factory_module: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # A longer settle makes the workers' kubeadm runs long enough to show their overlap.
    lab = lab_factory_module(nodes=4, control_planes=1, settle=1.5)
    work = tmp_path_factory.mktemp("bootstrap")
    kubeconfig = work / "admin.kubeconfig"
    first = cli(
        "bootstrap", str(lab.inventory_path), "--json", "--kubeconfig-out", str(kubeconfig),
        log_file=work / "run1.log",
    )
    before = {n.name: trigger_state(lab, n.name) for n in lab.nodes}
    second = cli("bootstrap", str(lab.inventory_path), "--json", log_file=work / "run2.log")
    after = {n.name: trigger_state(lab, n.name) for n in lab.nodes}
    yield {"lab": lab, "first": first, "second": second, "kubeconfig": kubeconfig,
           "before": before, "after": after}


def test_bootstrap_creates_a_ready_cluster(bootstrapped: dict[str, Any]) -> None:
    run, lab = bootstrapped["first"], bootstrapped["lab"]
    assert run.code == 0, run.stderr
    nodes = kubectl_nodes(lab)
    assert set(nodes) == {"cp-1", "w-1", "w-2", "w-3"}
    assert all(n["ready"] for n in nodes.values())
    report = run.report
    assert report["exitCode"] == 0
    assert {n["name"]: n["outcome"] for n in report["nodes"]} == {
        "cp-1": "ok", "w-1": "ok", "w-2": "ok", "w-3": "ok",
    }


def test_kubeconfig_is_private_and_points_at_the_endpoint(bootstrapped: dict[str, Any]) -> None:
    path: Path = bootstrapped["kubeconfig"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    endpoint = yaml.safe_load(bootstrapped["lab"].inventory_path.read_text())["cluster"][
        "controlPlaneEndpoint"
    ]
    assert config["clusters"][0]["cluster"]["server"] == f"https://{endpoint}"


def test_the_runs_token_is_deleted(bootstrapped: dict[str, Any]) -> None:
    lab = bootstrapped["lab"]
    out = lab.kubelet_exec("cp-1", ["kubeadm", "token", "list"])
    assert out.returncode == 0
    assert "k8slk-ops" not in out.stdout
    minted = {d["discovery"]["bootstrapToken"]["token"].split(".")[0]
              for d in consumed_configs(lab) if d.get("kind") == "JoinConfiguration"}
    assert minted
    for token_id in minted:
        assert token_id not in out.stdout


def test_joins_were_pinned(bootstrapped: dict[str, Any]) -> None:
    joins = [d for d in consumed_configs(bootstrapped["lab"]) if d.get("kind") == "JoinConfiguration"]
    assert len(joins) == 3
    for doc in joins:
        bt = doc["discovery"]["bootstrapToken"]
        assert bt.get("unsafeSkipCAVerification") is not True
        assert bt["caCertHashes"] and bt["caCertHashes"][0].startswith("sha256:")


def test_second_run_changes_nothing(bootstrapped: dict[str, Any]) -> None:
    run = bootstrapped["second"]
    assert run.code == 0, run.stderr
    assert "nothing to do" in run.stderr
    assert {n["outcome"] for n in run.report["nodes"]} == {"unchanged"}
    assert bootstrapped["before"] == bootstrapped["after"]


def test_worker_joins_overlap_in_time(bootstrapped: dict[str, Any]) -> None:
    lab = bootstrapped["lab"]
    spans = [log_times(lab, w) for w in ("w-1", "w-2", "w-3")]
    assert all("start" in s and "end" in s for s in spans), spans
    assert max(s["start"] for s in spans) <= min(s["end"] for s in spans)


def test_no_secret_reaches_any_output(bootstrapped: dict[str, Any]) -> None:
    secrets = secrets_of(bootstrapped["lab"])
    assert len(secrets) >= 5
    for run in (bootstrapped["first"], bootstrapped["second"]):
        for output in (run.stdout, run.stderr, run.log):
            for secret in secrets:
                assert secret not in output


def test_init_failure_stops_before_any_join(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=3, control_planes=1)
    lab.fault("cp-1", "kubeadm-fail", "wait-control-plane")
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "run.log")
    assert run.code == 1
    nodes = {n["name"]: n for n in run.report["nodes"]}
    assert nodes["cp-1"]["outcome"] == "failed"
    assert nodes["cp-1"]["phase"] == "init"
    assert any("wait-control-plane" in line for line in nodes["cp-1"]["logTail"])
    for worker in ("w-1", "w-2"):
        assert nodes[worker]["outcome"] == "skipped"
        assert trigger_state(lab, worker) == "absent"


def test_one_failing_worker_does_not_stop_the_others(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=4, control_planes=1)
    lab.fault("w-2", "kubeadm-fail", "kubelet-start")
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "run.log")
    assert run.code == 1
    nodes = {n["name"]: n for n in run.report["nodes"]}
    assert nodes["w-2"]["outcome"] == "failed"
    assert nodes["w-2"]["phase"] == "join"
    assert nodes["w-2"]["logTail"]
    assert "w-2" in run.stderr
    ready = kubectl_nodes(lab)
    assert all(ready[n]["ready"] for n in ("cp-1", "w-1", "w-3"))


def test_unreachable_worker_is_reported_and_the_rest_join(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=3, control_planes=1)
    lab.fault("w-2", "ssh-stop")
    run = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "run.log")
    assert run.code == 1
    nodes = {n["name"]: n for n in run.report["nodes"]}
    assert nodes["w-2"]["outcome"] == "unreachable"
    assert nodes["w-1"]["outcome"] == "ok"
    assert kubectl_nodes(lab)["w-1"]["ready"]
    # once the node is back, a re-run joins only what is missing
    lab.fault("w-2", "ssh-start")
    again = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "run2.log")
    assert again.code == 0, again.stderr
    outcomes = {n["name"]: n["outcome"] for n in again.report["nodes"]}
    assert outcomes == {"cp-1": "unchanged", "w-1": "unchanged", "w-2": "ok"}


def test_changed_host_key_is_refused_before_anything_is_written(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=3, control_planes=1)
    lab.fault("w-1", "reboot")
    run = cli("bootstrap", str(lab.inventory_path), log_file=tmp_path / "run.log")
    assert run.code == 3
    assert "w-1" in run.stderr
    assert "every boot" in run.stderr
    for node in ("cp-1", "w-1", "w-2"):
        assert trigger_state(lab, node) == "absent"
        assert lab.ssh(node, "test -e /run/node/kubeadm.yaml").returncode != 0


def test_inventory_typo_is_exit_2_with_file_and_line(tmp_path: Path) -> None:
    inv = tmp_path / "bad.yml"
    inv.write_text(
        "cluster:\n  name: lab\nnodes:\n"
        "  - {name: cp-1, address: 127.0.9.11, role: control-plane}\n"
        "  - name: w-1\n    adress: 127.0.9.12\n    role: worker\n"
    )
    run = cli("bootstrap", str(inv))
    assert run.code == 2
    assert f"{inv}:6" in run.stderr
    assert "adress" in run.stderr
