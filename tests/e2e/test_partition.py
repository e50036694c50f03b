"""A node's network drops while its join runs, end to end against the lab.

kubeadm goes on on the node whatever happens to our SSH connection, so a drop the connection
does not survive (keepalive gives up) must not fail the join: k8slk-ops dials again and
follows the log again. A node that stays away fails alone, promptly, by its connection, not by
the kubeadm timeout. The inventory's keepalive is 1 s so a drop is noticed within seconds, and
the node's settle is long so kubeadm itself (whose discovery would suffer from the partition
too) runs after the network is back.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import Background, trigger_state, wait_until

pytestmark = pytest.mark.lab


def start_bootstrap(lab: Any, tmp_path: Path) -> Background:
    inv = yaml.safe_load(lab.inventory_path.read_text())
    inv["ssh"]["keepaliveInterval"] = 1
    quick = lab.dir / "keepalive-1s.yml"
    quick.write_text(yaml.safe_dump(inv))
    run = Background("bootstrap", str(quick), "--json",
                     log_file=tmp_path / "run.log", cache=tmp_path / "cache")
    wait_until(lambda: trigger_state(lab, "w-2") != "absent", what="w-2's join trigger")
    return run


def test_a_dropped_connection_during_a_join_is_dialled_again(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=3, control_planes=1, settle=12.0)
    run = start_bootstrap(lab, tmp_path)
    lab.fault("w-2", "partition")
    time.sleep(7)  # long enough for three missed keepalives: the connection is given up
    lab.fault("w-2", "heal")
    result = run.wait(timeout=300)
    assert result.code == 0, result.stderr[-3000:]
    assert "w-2 join warn: connection dropped while following the log" in result.log
    outcomes = {n["name"]: n["outcome"] for n in result.report["nodes"]}
    assert outcomes == {"cp-1": "ok", "w-1": "ok", "w-2": "ok"}


def test_a_node_that_stays_away_fails_alone_by_its_connection(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=3, control_planes=1, settle=12.0)
    run = start_bootstrap(lab, tmp_path)
    lab.fault("w-2", "partition")
    result = run.wait(timeout=300)
    assert result.code == 1, result.stderr[-3000:]
    nodes = {n["name"]: n for n in result.report["nodes"]}
    assert nodes["w-1"]["outcome"] == "ok"
    assert nodes["w-2"]["outcome"] == "failed" and nodes["w-2"]["phase"] == "join"
    assert "connection" in nodes["w-2"]["message"]
    assert "did not finish within" not in nodes["w-2"]["message"]  # not the kubeadm timeout
    tokens = lab.kubelet_exec("cp-1", ["kubeadm", "token", "list"]).stdout
    assert "k8slk-ops" not in tokens
