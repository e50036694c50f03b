"""A control plane whose init runs long and whose run died: every reading of it says running.

Real kubeadm init prints 60-80 lines, more with ``--v=5``. The facts probe ships the latest
attempt of the log whatever its length (docs/node.md), so ``status`` and the init guard see the
trigger however much kubeadm printed after it, and a second run never triggers it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import Background, cli, wait_until

pytestmark = pytest.mark.lab

PRINTED = 120
TRIGGERED = "sleeping a bit more to make sure file is written"


def lines_since_trigger(lab: Any, node: str) -> int:
    """Lines the node's kubeadm log holds after the script saw its trigger (0 before)."""
    lines = lab.read(node, "/var/log/kubeadm.out.log").decode().splitlines()
    seen = [i for i, line in enumerate(lines) if TRIGGERED in line]
    return len(lines) - seen[-1] - 1 if seen else 0


def trigger_and_config(lab: Any, node: str) -> str:
    """Inode, modification time, size and digest of the trigger and the config on the node."""
    script = ("for f in /run/node/kubeadm-run /run/node/kubeadm.yaml; do "
              "stat -c '%n %i %y %s' \"$f\" && sha256sum \"$f\" || exit 1; done")
    out = lab.ssh(node, script)
    assert out.returncode == 0, out.stderr
    return str(out.stdout)


def test_a_long_init_whose_run_was_killed_reads_running_and_is_left_alone(
    lab_factory: Any, tmp_path: Path
) -> None:
    lab = lab_factory(nodes=1, control_planes=1)
    inventory = str(lab.inventory_path)
    # init prints PRINTED lines of kubeadm's polling, then hangs in preflight for good
    lab.fault("cp-1", "kubeadm-hang", "preflight", "--lines", str(PRINTED))
    first = Background("bootstrap", inventory, "--json", log_file=tmp_path / "first.log",
                       cache=tmp_path / "cache")
    wait_until(lambda: lines_since_trigger(lab, "cp-1") >= PRINTED + 2, timeout=120,
               what=f"{PRINTED} lines of init output on cp-1")
    first.kill()
    assert lab.exists("cp-1", "/run/k8slk-ops.lock")  # the dead run's cluster lock stayed
    before = trigger_and_config(lab, "cp-1")
    assert "/run/node/kubeadm-run" in before and "/run/node/kubeadm.yaml" in before

    status = cli("status", inventory, "--json", log_file=tmp_path / "status.log")
    rows = {n["name"]: n["details"] for n in status.report["nodes"]}
    assert rows["cp-1"]["kubeadm"] == "running", status.stderr

    second = cli("bootstrap", inventory, "--break-lock", "--json",
                 log_file=tmp_path / "second.log", cache=tmp_path / "cache")
    assert second.code == 1, second.stderr
    node = {n["name"]: n for n in second.report["nodes"]}["cp-1"]
    assert node["outcome"] == "failed"
    assert "kubeadm on this node is running, not waiting for a trigger" in node["message"]
    assert trigger_and_config(lab, "cp-1") == before  # neither rewritten nor touched
    assert lines_since_trigger(lab, "cp-1") == PRINTED + 2  # still the same, hanging, init
