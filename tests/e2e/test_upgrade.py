"""upgrade, end to end on the lab: a cluster bootstrapped at v1.30, the lab's boot server then
serving v1.31, the inventory bumped. The roll reboots each node into the new image (the lab's
reboot(8)), runs the kubeadm double's upgrade apply/node, and gates on what the API double
reports (Node versions, mirror pods of the upgraded static pods, /readyz)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8slk_ops.node.rebootrecord import ANNOTATION as REBOOT_ANNOTATION
from tests.e2e.helpers import cli, secrets_of, wait_until
from tests.lab.fixture import require_doubles

pytestmark = pytest.mark.lab

OLD, NEW = "v1.30.5", "v1.31.3"


def prepared(
    lab_factory: Any, tmp_path: Path, *, nodes: int = 3, control_planes: int = 1,
    accept: bool = True, load_balancer: bool = False,
) -> tuple[Any, Path]:
    """A lab bootstrapped at OLD, serving NEW, with an inventory asking for NEW."""
    require_doubles()
    lab = lab_factory(nodes=nodes, control_planes=control_planes, kubernetes_version=OLD,
                      load_balancer=load_balancer)
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stdout + boot.stderr
    lab.set_image(NEW)
    doc = yaml.safe_load(lab.inventory_path.read_text())
    doc["cluster"]["kubernetesVersion"] = NEW
    if accept:
        doc["ssh"]["hostKeyAfterReboot"] = "accept"
    inventory = lab.inventory_path.parent / "upgrade.yml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    return lab, inventory


def nodes(lab: Any, via: str = "cp-1") -> dict[str, dict[str, Any]]:
    """name -> (ready, unschedulable, kubelet version); {} when the API does not answer."""
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(lab.inventory_path.parent / "lab.kubeconfig"),
         "get", "nodes", "-o", "json", "--request-timeout=3s"],
        capture_output=True, text=True, timeout=10, check=False,
    )
    if out.returncode != 0:
        return {}
    found = {}
    for item in json.loads(out.stdout)["items"]:
        conds = {c["type"]: c["status"] for c in item["status"]["conditions"]}
        found[item["metadata"]["name"]] = {
            "ready": conds.get("Ready") == "True",
            "unschedulable": bool(item["spec"].get("unschedulable")),
            "version": item["status"]["nodeInfo"]["kubeletVersion"],
        }
    return found


class Sampler:
    """Samples the API during a run: how many nodes are unschedulable, whether it answers."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.samples: list[dict[str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(nodes(self.lab))
            self._stop.wait(0.2)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def most_unschedulable(self) -> int:
        return max((sum(n["unschedulable"] for n in s.values()) for s in self.samples), default=0)

    @property
    def unanswered(self) -> int:
        return sum(1 for s in self.samples if not s)


def answering(lab: Any) -> dict[str, dict[str, Any]]:
    """The node list once the API answers again (a rebooted control plane takes a moment)."""
    wait_until(lambda: bool(nodes(lab)), 60, "the API to answer")
    return nodes(lab)


def boots(lab: Any) -> dict[str, int]:
    return {n.spec.name: n.boots for n in type(lab).open(lab.dir).state.nodes}


def test_one_run_rolls_the_cluster_and_a_second_changes_nothing(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab, inventory = prepared(lab_factory, tmp_path)
    with Sampler(lab) as sampler:
        run = cli("upgrade", str(inventory), "--yes", "--json", log_file=tmp_path / "up.log")
    assert run.code == 0, run.stdout + run.stderr
    after = answering(lab)
    assert {n: (v["ready"], v["unschedulable"], v["version"]) for n, v in after.items()} == {
        n: (True, False, NEW) for n in ("cp-1", "w-1", "w-2")
    }
    assert sampler.most_unschedulable <= 1
    assert len([s for s in sampler.samples if s]) > 5
    assert boots(lab) == {"cp-1": 2, "w-1": 2, "w-2": 2}
    assert "new host key after the reboot accepted" in run.log
    # Before the first reboot: a snapshot of the real etcd, verified, its SHA-256 beside it.
    snap = run.report["data"]["snapshot"]
    path = Path(snap["path"])
    assert path.parent == inventory.parent / "snapshots" and path.stat().st_size > 0
    assert snap["revision"] > 0 and path.stat().st_mode & 0o777 == 0o600
    assert (path.parent / f"{path.name}.sha256").read_text().split()[0] == snap["sha256"]
    again = cli("upgrade", str(inventory), "--yes", "--json", log_file=tmp_path / "again.log")
    assert again.code == 0, again.stdout + again.stderr
    assert {o["outcome"] for o in again.report["nodes"]} == {"unchanged"}
    assert boots(lab) == {"cp-1": 2, "w-1": 2, "w-2": 2}
    text = run.stdout + run.stderr + run.log + again.stdout + again.stderr + again.log
    for secret in secrets_of(lab):
        assert secret not in text
    assert "PRIVATE KEY" not in text


def test_a_skipped_minor_is_refused_before_anything(lab_factory: Any, tmp_path: Path) -> None:
    lab, inventory = prepared(lab_factory, tmp_path, nodes=2)
    run = cli("upgrade", str(inventory), "--to", "v1.32.0", "--yes", log_file=tmp_path / "x.log")
    assert run.code == 1
    assert "skips a minor version" in run.stdout + run.stderr
    assert boots(lab) == {"cp-1": 1, "w-1": 1}
    assert not any(n["unschedulable"] for n in nodes(lab).values())


def test_host_key_refused_after_reboot_stops_at_the_first_node(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab, inventory = prepared(lab_factory, tmp_path, nodes=2, accept=False)
    run = cli("upgrade", str(inventory), "--yes", log_file=tmp_path / "x.log")
    assert run.code == 1
    assert "hostKeyAfterReboot is refuse" in run.stdout + run.stderr
    assert boots(lab) == {"cp-1": 2, "w-1": 1}
    assert not answering(lab)["w-1"]["unschedulable"]


def test_a_worker_that_does_not_come_back_stops_the_roll_and_heal_resumes(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab, inventory = prepared(lab_factory, tmp_path)
    # The built-in playbook waits 10 minutes for SSH; a copy waits 15 s (operators copy it).
    book = Path("playbooks/upgrade.yml").read_text().replace("timeout: 10m", "timeout: 15s")
    playbook = tmp_path / "upgrade.yml"
    playbook.write_text(book)
    lab.fault("w-1", "no-boot")
    run = cli("run", str(playbook), str(inventory), "--json", log_file=tmp_path / "x.log")
    assert run.code == 1, run.stdout + run.stderr
    failed = {o["name"]: o for o in run.report["nodes"] if o["outcome"] == "failed"}
    assert list(failed) == ["w-1"]
    assert boots(lab)["w-2"] == 1
    assert nodes(lab)["w-2"]["version"] == OLD
    assert nodes(lab)["w-1"]["unschedulable"]  # a failed node stays cordoned
    lab.fault("w-1", "heal")  # w-1 boots now, with new host keys: no hand edit of known_hosts
    again = cli("upgrade", str(inventory), "--yes", log_file=tmp_path / "again.log")
    assert again.code == 0, again.stdout + again.stderr
    assert {n: (v["version"], v["unschedulable"]) for n, v in nodes(lab).items()} == {
        n: (NEW, False) for n in ("cp-1", "w-1", "w-2")
    }
    assert REBOOT_ANNOTATION not in annotations(lab, "w-1")


def test_a_stopped_roll_under_refuse_exits_3_naming_the_run_and_the_command(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab, inventory = prepared(lab_factory, tmp_path, nodes=2)
    book = Path("playbooks/upgrade.yml").read_text().replace("timeout: 10m", "timeout: 15s")
    playbook = tmp_path / "upgrade.yml"
    playbook.write_text(book)
    lab.fault("w-1", "no-boot")
    run = cli("run", str(playbook), str(inventory), "--json", log_file=tmp_path / "x.log")
    assert run.code == 1, run.stdout + run.stderr
    record = json.loads(annotations(lab, "w-1")[REBOOT_ANNOTATION])
    lab.fault("w-1", "heal")
    doc = yaml.safe_load(inventory.read_text())
    doc["ssh"]["hostKeyAfterReboot"] = "refuse"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    again = cli("upgrade", str(inventory), "--yes", log_file=tmp_path / "again.log")
    said = again.stdout + again.stderr
    assert again.code == 3, said
    assert f"was rebooted by run {record['run']}" in said and "ssh-keygen -R" in said
    assert nodes(lab)["w-1"]["unschedulable"]


def annotations(lab: Any, name: str) -> dict[str, str]:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(lab.inventory_path.parent / "lab.kubeconfig"),
         "get", "node", name, "-o", "json", "--request-timeout=5s"],
        capture_output=True, text=True, timeout=15, check=True,
    )
    found: dict[str, str] = json.loads(out.stdout)["metadata"].get("annotations") or {}
    return found


def test_two_runs_at_once_one_works_the_other_exits_3(lab_factory: Any, tmp_path: Path) -> None:
    lab, inventory = prepared(lab_factory, tmp_path, nodes=2)
    cache = tmp_path / "cache"
    first = subprocess.Popen(
        [sys.executable, "-m", "k8slk_ops", "upgrade", str(inventory), "--yes"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**__import__("os").environ, "XDG_CACHE_HOME": str(cache)},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not nodes(lab).get("cp-1", {}).get("unschedulable"):
            time.sleep(0.1)
        second = cli("upgrade", str(inventory), "--yes", cache=cache)
        assert second.code == 3, second.stdout + second.stderr
        assert "pid" in second.stdout + second.stderr  # the holder is named
    finally:
        out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out


def test_three_control_planes_behind_the_balancer_keep_the_api_answering(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab, inventory = prepared(lab_factory, tmp_path, nodes=4, control_planes=3,
                              load_balancer=True)
    with Sampler(lab) as sampler:  # through lab.kubeconfig: the balancer's address
        run = cli("upgrade", str(inventory), "--yes", log_file=tmp_path / "up.log")
    assert run.code == 0, run.stdout + run.stderr
    assert sampler.unanswered == 0
    assert sampler.most_unschedulable <= 1
    order = [line.split()[1] for line in run.log.splitlines() if " reboot start" in line]
    assert order == ["cp-1", "cp-2", "cp-3", "w-1"]
    assert {n: v["version"] for n, v in answering(lab).items()} == {
        n: NEW for n in ("cp-1", "cp-2", "cp-3", "w-1")
    }
