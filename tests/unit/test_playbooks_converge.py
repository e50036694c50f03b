"""Each built-in playbook converges: its plan lists what would change, applying it changes
that, and planning again finds nothing to change (pyinfra's operation tests work this way).

For remove-node and reset, "nothing to change" means the removed nodes are out of the
cluster's membership and a new plan has no action left for them. A plan is read from
``plan COMMAND --json`` (or ``--dry-run --json`` where the command needs node names); a
changing action is one of a step kind that changes a node (see ``clirun.CHANGING_STEPS``), and
the report marks the nodes that have one ``planned``.
"""

from __future__ import annotations

from pathlib import Path

from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import CliRun, K8slk
from tests.unit.conftest import FleetFactory


def plan(k8slk: K8slk, *args: str | Path) -> CliRun:
    run = k8slk(*args, "--json")
    assert run.code == 0, run.why()
    assert run.report["dryRun"] is True
    return run


def planned(run: CliRun) -> set[str]:
    return {name for name, outcome in run.outcomes.items() if outcome == "planned"}


def test_bootstrap_converges(fleet: InProcessFleet, k8slk: K8slk) -> None:
    before = plan(k8slk, "plan", "bootstrap", fleet.inventory)
    assert before.changes() == {("init", "cp-1"), ("join", "w-1"), ("join", "w-2")}
    assert planned(before) == {"cp-1", "w-1", "w-2"}
    assert "write-file" not in fleet.commands()  # planning wrote nothing

    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()

    after = plan(k8slk, "plan", "bootstrap", fleet.inventory)
    assert after.changes() == set() and planned(after) == set()
    assert set(after.outcomes.values()) <= {"unchanged", "skipped"}


def test_add_node_converges(fleet: InProcessFleet, k8slk: K8slk) -> None:
    first = k8slk("bootstrap", fleet.inventory_of(["cp-1", "w-1"]), "--json")
    assert first.code == 0, first.why()

    before = plan(k8slk, "plan", "add-node", fleet.inventory)
    assert before.changes() == {("join", "w-2")}
    assert planned(before) == {"w-2"}

    run = k8slk("add-node", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert run.outcomes["w-2"] == "ok"
    assert set(fleet.members()) == {"cp-1", "w-1", "w-2"}

    after = plan(k8slk, "plan", "add-node", fleet.inventory)
    assert after.changes() == set() and planned(after) == set()


def test_remove_node_converges(fleet: InProcessFleet, k8slk: K8slk) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    before = plan(k8slk, "remove-node", fleet.inventory, "w-2", "--dry-run")
    assert before.changes() == {("drain", "w-2"), ("kubeadm-reset", "w-2"), ("delete-node", "w-2")}
    assert planned(before) == {"w-2"}
    assert "w-2" in fleet.members()  # the dry run removed nothing

    run = k8slk("remove-node", fleet.inventory, "w-2", "--json")
    assert run.code == 0, run.why()
    assert set(fleet.members()) == {"cp-1", "w-1"}

    after = plan(k8slk, "remove-node", fleet.inventory, "w-2", "--dry-run")
    assert after.changes() == set() and planned(after) == set()


def test_plan_remove_node_plans_only_the_named_nodes(fleet: InProcessFleet, k8slk: K8slk) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    unnamed = k8slk("plan", "remove-node", fleet.inventory, "--json")
    assert unnamed.code == 2, unnamed.why()  # nothing named: refused, never "remove every node"
    assert "--node" in unnamed.stderr
    named = plan(k8slk, "plan", "remove-node", fleet.inventory, "--node", "w-2")
    assert planned(named) == {"w-2"}


def test_reset_converges(fleet_factory: FleetFactory, k8slk: K8slk) -> None:
    fleet = fleet_factory(4, 2)
    assert k8slk("bootstrap", fleet.inventory).code == 0
    before = plan(k8slk, "plan", "reset", fleet.inventory)
    assert before.changes() == {
        *((step, node) for node in ("w-1", "w-2", "cp-2")
          for step in ("drain", "kubeadm-reset", "delete-node")),
        ("kubeadm-reset", "cp-1"),
    }
    assert fleet.members().keys() == {"cp-1", "cp-2", "w-1", "w-2"}

    run = k8slk("reset", fleet.inventory, "--yes", "--json")
    assert run.code == 0, run.why()
    assert fleet.members() == {}

    after = plan(k8slk, "plan", "reset", fleet.inventory)
    assert after.changes() == set() and planned(after) == set()


def test_reset_of_some_nodes_converges(fleet: InProcessFleet, k8slk: K8slk) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    before = plan(k8slk, "reset", fleet.inventory, "--node", "w-1", "--dry-run")
    assert before.changes() == {("drain", "w-1"), ("kubeadm-reset", "w-1"),
                               ("delete-node", "w-1")}

    run = k8slk("reset", fleet.inventory, "--node", "w-1", "--yes", "--json")
    assert run.code == 0, run.why()
    assert set(fleet.members()) == {"cp-1", "w-2"}

    after = plan(k8slk, "reset", fleet.inventory, "--node", "w-1", "--dry-run")
    assert after.changes() == set() and planned(after) == set()


def test_status_changes_nothing_and_plans_nothing(fleet: InProcessFleet, k8slk: K8slk) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    writes = fleet.commands()["write-file"]
    before = plan(k8slk, "plan", "status", fleet.inventory)
    assert before.changes() == set()
    assert before.planned_steps() == {"status"}

    run = k8slk("status", fleet.inventory, "--json")
    assert run.code == 0, run.why()

    after = plan(k8slk, "plan", "status", fleet.inventory)
    assert after.changes() == set() and after.planned_steps() == {"status"}
    assert fleet.commands()["write-file"] == writes


def test_kubeconfig_changes_no_node_and_plans_the_same_fetch(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    writes = fleet.commands()["write-file"]
    out = tmp_path / "admin.kubeconfig"
    before = plan(k8slk, "plan", "kubeconfig", fleet.inventory)
    assert before.changes() == set() and before.planned_steps() == {"fetch-kubeconfig"}

    run = k8slk("kubeconfig", fleet.inventory, "-o", out, "--json")
    assert run.code == 0, run.why()
    assert out.stat().st_mode & 0o777 == 0o600
    assert f"server: https://{fleet.config.endpoint}" in out.read_text()

    after = plan(k8slk, "plan", "kubeconfig", fleet.inventory)
    assert after.changes() == set() and after.planned_steps() == {"fetch-kubeconfig"}
    assert fleet.commands()["write-file"] == writes


def test_kubeconfig_merge_keeps_other_clusters(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    out = tmp_path / "config"
    out.write_text("""\
apiVersion: v1
kind: Config
clusters:
- {name: other, cluster: {server: "https://10.9.9.9:6443"}}
users:
- {name: other-admin, user: {token: abc}}
contexts:
- {name: other, context: {cluster: other, user: other-admin}}
current-context: other
""")
    run = k8slk("kubeconfig", fleet.inventory, "-o", out, "--merge")
    assert run.code == 0, run.why()
    text = out.read_text()
    assert "https://10.9.9.9:6443" in text and f"https://{fleet.config.endpoint}" in text


def test_a_dry_run_prints_the_plan_and_changes_nothing(fleet: InProcessFleet, k8slk: K8slk) -> None:
    run = k8slk("bootstrap", fleet.inventory, "--dry-run")
    assert run.code == 0, run.why()
    text = run.stdout + run.stderr
    assert "plan: bootstrap" in text
    assert "cp-1: write /run/node/kubeadm.yaml" in text
    assert "write-file" not in fleet.commands() and "lock-take" not in fleet.commands()
    assert fleet.members() == {}
