"""One cluster lock on the lab: two removals of two control planes, each run working through a
different control plane, from two machines (two caches, two local locks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import Background, cli, kubectl_nodes, wait_until

pytestmark = pytest.mark.lab


def test_two_removals_of_two_control_planes_one_proceeds(lab_factory: Any, tmp_path: Path) -> None:
    lab = lab_factory(nodes=4, control_planes=3, settle=0.5)  # cp-1, cp-2, cp-3, w-1
    boot = cli("bootstrap", str(lab.inventory_path), "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 0, boot.stderr
    # Another operator lists cp-1 last: removing cp-3 works through cp-2 there, while removing
    # cp-2 works through cp-1 here.
    other = yaml.safe_load(lab.inventory_path.read_text())
    other["nodes"] = [n for n in other["nodes"] if n["name"] != "cp-1"] + [
        n for n in other["nodes"] if n["name"] == "cp-1"
    ]
    reordered = lab.dir / "cp-1-last.yml"
    reordered.write_text(yaml.safe_dump(other))

    lab.fault("cp-2", "drain-block")  # the first removal stays in its drain until unblocked
    first = Background(
        "remove-node", str(lab.inventory_path), "cp-2", "--drain-timeout", "300s", "--yes",
        "--json",
        log_file=tmp_path / "first.log", cache=tmp_path / "cache-a",
    )
    try:
        wait_until(lambda: kubectl_nodes(lab)["cp-2"]["raw"]["spec"].get("unschedulable"),
                   what="cp-2 cordoned by the first removal")
        lease = lab.kubelet_exec("cp-1", ["kubectl", "get", "lease", "k8slk-ops-lock", "-n",
                                          "kube-system", "-o", "json"])
        assert "remove-node" in lease.stdout

        second = cli("remove-node", str(reordered), "cp-3", "--yes", "--json",
                     log_file=tmp_path / "second.log", cache=tmp_path / "cache-b")
        assert second.code == 3, second.stderr
        assert "locked" in second.stderr and "Lease kube-system/k8slk-ops-lock" in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr and "remove-node" in second.stderr

        add = cli("add-node", str(lab.inventory_path), "--json", log_file=tmp_path / "add.log",
                  cache=tmp_path / "cache-c")
        assert add.code == 3, add.stderr
        assert f"pid {first.proc.pid}" in add.stderr
    finally:
        lab.fault("cp-2", "drain-unblock")
        done = first.wait()
    assert done.code == 0, done.stderr
    assert set(kubectl_nodes(lab)) == {"cp-1", "cp-3", "w-1"}  # only cp-2 went
    gone = lab.kubelet_exec("cp-1", ["kubectl", "get", "lease", "k8slk-ops-lock", "-n",
                                     "kube-system"])
    assert "NotFound" in gone.stderr  # released at the end
