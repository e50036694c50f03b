"""upgrade in-process against the fleet: a cluster bootstrapped at v1.30, the fleet's boot
server then serving v1.31 (``reboot`` in a node's shell boots it, with a new host key), the
kubeadm double's upgrade apply/node moving the control planes' static pods."""

from __future__ import annotations

from pathlib import Path

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk

OLD, NEW = "v1.30.5", "v1.31.3"


def bumped(fleet: InProcessFleet, k8slk: K8slk, *, accept: bool = True) -> Path:
    """Bootstrapped at OLD, serving NEW, and an inventory beside the fleet's asking for NEW."""
    boot = k8slk("bootstrap", fleet.inventory, "--json")
    assert boot.code == 0, boot.why()
    fleet.serve_image(NEW)
    text = Path(fleet.inventory).read_text().replace(OLD, NEW)
    if accept:
        text = text.replace("  hostKeyPolicy: strict\n",
                            "  hostKeyPolicy: strict\n  hostKeyAfterReboot: accept\n")
    path = Path(fleet.inventory).parent / "upgrade.yml"
    path.write_text(text)
    return path


def versions(fleet: InProcessFleet) -> dict[str, tuple[str, bool]]:
    return {n: (m.kubelet_version, m.unschedulable) for n, m in fleet.members().items()}


def test_plan_upgrade_shows_the_order_and_touches_nothing(
    fleet_factory: object, k8slk: K8slk
) -> None:
    fleet = fleet_factory(3, 1, kubernetes_version=OLD)  # type: ignore[operator]
    inventory = bumped(fleet, k8slk)
    plan = k8slk("plan", "upgrade", inventory, "--json")
    assert plan.code == 0, plan.why()
    stages = {s["stage"]: [n["node"] for n in s["nodes"]] for s in plan.report["plan"]}
    assert stages["primary"] == ["cp-1"] and stages["workers"] == ["w-1", "w-2"]
    assert versions(fleet) == {n: (OLD, False) for n in ("cp-1", "w-1", "w-2")}


def test_a_skipped_minor_is_refused_before_anything(fleet_factory: object, k8slk: K8slk) -> None:
    fleet = fleet_factory(2, 1, kubernetes_version=OLD)  # type: ignore[operator]
    inventory = bumped(fleet, k8slk)
    run = k8slk("upgrade", inventory, "--yes", "--to", "v1.32.0")
    assert run.code == 1
    assert "skips a minor version" in run.stdout + run.stderr
    assert fleet.boots("cp-1") == 1 and versions(fleet)["cp-1"] == (OLD, False)
