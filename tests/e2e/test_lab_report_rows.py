"""Report rows on the lab: a failing worker's row names what to do next, and removing an
unreachable control plane reports the nodes that answered as they are."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import CliRun, cli, kubectl_nodes
from tests.e2e.test_lab_lost_control_plane import power_off_for_good
from tests.lab.fixture import require_doubles

pytestmark = pytest.mark.lab


def table_row(run: CliRun, node: str) -> str:
    rows = [line for line in run.stderr.splitlines() if line.startswith(f"{node} ")]
    assert rows, run.stderr
    return rows[-1]


def test_a_failing_worker_and_an_unreachable_control_plane(
    lab_factory: Any, tmp_path: Path
) -> None:
    require_doubles()
    lab = lab_factory(nodes=4, control_planes=3, settle=0.5)
    inventory = str(lab.inventory_path)
    lab.fault("w-1", "kubeadm-fail", "preflight")  # kubeadm's text: Port 10250 is in use

    boot = cli("bootstrap", inventory, "--json", log_file=tmp_path / "boot.log")
    assert boot.code == 1, boot.stderr
    nodes = {n["name"]: n for n in boot.report["nodes"]}
    assert nodes["w-1"]["outcome"] == "failed"
    assert "[Port-10250] Port 10250 is in use" in nodes["w-1"]["message"]
    reset = shlex.join(["k8slk-ops", "reset", inventory, "--node", "w-1"])
    add = shlex.join(["k8slk-ops", "add-node", inventory, "--node", "w-1"])
    assert nodes["w-1"]["next"] == {
        "action": f"free port 10250 on the node (an earlier Kubernetes holds it: `{reset}`); "
                  "reboot the node (kubeadm runs once per boot on a LinuxKit node), then run "
                  f"`{add}`",
        "command": add,
    }
    assert table_row(boot, "w-1").endswith(nodes["w-1"]["next"]["action"])
    assert f"; next: {nodes['w-1']['next']['action']}" in boot.log
    assert all(nodes[cp]["outcome"] == "ok" and nodes[cp]["next"] is None
               for cp in ("cp-1", "cp-2", "cp-3"))

    power_off_for_good(lab, "cp-3")  # sshd and etcd gone: --force takes its member out
    rm = cli("remove-node", inventory, "cp-3", "--force", "--yes", "--json",
             log_file=tmp_path / "rm.log")
    assert rm.code == 0, rm.stderr
    assert table_row(rm, "NODE").split()[:3] == ["NODE", "ROLE", "RESULT"]
    assert "REACHABLE" not in rm.stderr
    removed = {n["name"]: n for n in rm.report["nodes"]}
    for name in ("cp-1", "cp-2", "w-1"):
        assert removed[name]["outcome"] == "unchanged", rm.stderr
        assert removed[name]["details"] == {} and removed[name]["next"] is None
        assert table_row(rm, name).split()[2] == "unchanged"
    assert removed["cp-3"]["outcome"] == "ok"
    assert set(kubectl_nodes(lab)) == {"cp-1", "cp-2"}


def test_a_new_host_key_after_the_upgrade_reboot_names_the_key_and_the_setting(
    lab_factory: Any, tmp_path: Path
) -> None:
    from tests.e2e.test_upgrade import prepared

    lab, inventory = prepared(lab_factory, tmp_path, nodes=2, accept=False)
    run = cli("upgrade", str(inventory), "--yes", "--json", log_file=tmp_path / "x.log")
    assert run.code == 1, run.stderr
    cp1 = next(n for n in run.report["nodes"] if n["name"] == "cp-1")
    assert cp1["outcome"] == "failed" and "hostKeyAfterReboot is refuse" in cp1["message"]
    settings = yaml.safe_load(Path(inventory).read_text())["ssh"]
    address = lab.node("cp-1").address
    entry = address if int(settings.get("port", 22)) == 22 else f"[{address}]:{settings['port']}"
    known_hosts = Path(inventory).parent / settings["knownHosts"]  # beside the inventory
    forget = f"ssh-keygen -R {shlex.quote(entry)} -f {known_hosts}"
    assert cp1["next"]["command"] == forget, cp1["next"]
    assert "ssh.hostKeyAfterReboot: accept" in cp1["next"]["action"]
    again = shlex.join(["k8slk-ops", "upgrade", str(inventory)])
    assert f"run `{again}` with ssh.hostKeyPolicy: accept-new" in cp1["next"]["action"]
