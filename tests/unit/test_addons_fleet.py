"""cluster.addons and cluster.kubeProxy against the in-process fleet, whose kubelets are strict:
no Node is Ready before a pod network (a DaemonSet mounting /etc/cni/net.d) is applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fleet import layout
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk

RECORD = ("ConfigMap", "kube-system", "k8slk-ops-addons")
KUBE_PROXY = ("DaemonSet", "kube-system", "kube-proxy")
CNI = ("DaemonSet", "kube-system", "lab-cni")
BOOTSTRAP = Path(__file__).resolve().parents[2] / "playbooks" / "bootstrap.yml"


def set_cluster(inventory: Path, *lines: str) -> None:
    """Add ``cluster:`` keys to a fleet inventory."""
    text = inventory.read_text()
    inventory.write_text(text.replace("cluster:\n", "cluster:\n" + "".join(
        f"  {line}\n" for line in lines), 1))


def quick_ready(tmp_path: Path) -> Path:
    """bootstrap with a 2 s ready timeout, to see the ready stage fail without waiting 5 m."""
    book = tmp_path / "bootstrap-quick.yml"
    book.write_text(BOOTSTRAP.read_text().replace("wait-ready: {timeout: 5m}",
                                                  "wait-ready: {timeout: 2s}"))
    return book


def stage_order(run: Any) -> list[str]:
    return [s["stage"] for s in run.report["plan"]]


def test_bootstrap_applies_the_addon_after_init_before_joins(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    assert run.outcomes == {"cp-1": "ok", "w-1": "ok", "w-2": "ok"}
    order = stage_order(run)
    assert order.index("init") < order.index("addons") < order.index("join-workers")
    objects = fleet.objects()
    assert CNI in objects and KUBE_PROXY in objects
    record = objects[RECORD]["data"]
    assert set(record) == {layout.POD_NETWORK}
    assert "applied pod-network.yaml" in run.log


def test_a_second_run_applies_nothing_and_says_so(fleet: InProcessFleet, k8slk: K8slk) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    again = k8slk("bootstrap", fleet.inventory, "--json")
    assert again.code == 0, again.why()
    assert again.outcomes == {"cp-1": "unchanged", "w-1": "unchanged", "w-2": "unchanged"}
    assert again.report["changed"] is False
    assert "apply-addons" not in again.planned_steps()
    assert "addons applied already (1 manifest(s) unchanged)" in again.log
    add = k8slk("add-node", fleet.inventory, "--json")
    assert add.code == 0 and add.report["changed"] is False, add.why()


def test_a_changed_manifest_is_applied_again_and_reported_as_a_change(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    assert k8slk("bootstrap", fleet.inventory).code == 0
    before = fleet.objects()[RECORD]["data"][layout.POD_NETWORK]
    manifest = fleet.directory / layout.POD_NETWORK
    manifest.write_text(manifest.read_text().replace('"name": "lab-cni"', '"name": "lab-cni2"'))
    again = k8slk("add-node", fleet.inventory, "--json")
    assert again.code == 0, again.why()
    assert again.report["changed"] is True
    assert again.outcomes["cp-1"] == "ok"
    assert "apply-addons" in again.planned_steps()
    assert fleet.objects()[RECORD]["data"][layout.POD_NETWORK] != before


CRD_LESS = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: kube-router, namespace: kube-system}
---
apiVersion: extensions/v1beta1
kind: DaemonSet
metadata: {name: kube-router, namespace: kube-system}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
"""
MAPPING_DS = ('resource mapping not found for name: "kube-router" namespace: "kube-system" from '
              '"STDIN": no matches for kind "DaemonSet" in version "extensions/v1beta1"')
MAPPING_W = ('resource mapping not found for name: "w" namespace: "" from "STDIN": no matches '
             'for kind "Widget" in version "example.com/v1"')


def test_kubectls_whole_error_names_each_failed_object_in_every_report(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    bad = fleet.directory / "crd-less.yaml"
    bad.write_text(CRD_LESS)
    text = fleet.inventory.read_text()
    fleet.inventory.write_text(text.replace("addons: [pod-network.yaml]",
                                            "addons: [pod-network.yaml, crd-less.yaml]"))
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 1
    cp = run.nodes["cp-1"]
    assert cp["outcome"] == "failed" and cp["phase"] == "addons"
    assert cp["message"].startswith(
        "kubectl apply of crd-less.yaml failed (exit 1): DaemonSet kube-system/kube-router "
        '(crd-less.yaml:5, document 2): no matches for kind "DaemonSet" in version '
        '"extensions/v1beta1"; ensure CRDs are installed first; Widget w (crd-less.yaml:9, '
        'document 3): no matches for kind "Widget" in version "example.com/v1"; ensure CRDs '
        "are installed first")
    hint = "ensure CRDs are installed first"
    lines = [MAPPING_DS, hint, MAPPING_W, hint,
             "failed: DaemonSet kube-system/kube-router at crd-less.yaml:5, document 2",
             "failed: Widget w at crd-less.yaml:9, document 3"]
    assert cp["logTail"] == lines
    assert "\n".join(f"  | {line}" for line in lines) in run.stderr  # the table's tail
    assert "\n".join(f"  | {line}" for line in lines) in run.log
    assert "result cp-1 failed phase=addons kubectl apply of crd-less.yaml failed" in run.log
    assert run.outcomes["w-1"] == run.outcomes["w-2"] == "skipped"
    assert set(fleet.members()) == {"cp-1"}  # no join after a failed addon
    # kubectl applied what it could, as the real one does; the record holds only the
    # manifests applied whole.
    assert ("ServiceAccount", "kube-system", "kube-router") in fleet.objects()
    assert set(fleet.objects()[RECORD]["data"]) == {layout.POD_NETWORK}


def test_a_vendor_manifest_with_shell_placeholders_applies_as_written(
    fleet: InProcessFleet, k8slk: K8slk
) -> None:
    manifest = fleet.directory / layout.POD_NETWORK
    text = manifest.read_text()
    manifest.write_text(text + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: "
                        "{name: router-cfg, namespace: kube-system}\ndata:\n  install: "
                        "'cp x ${TMP}; mv ${TMP} y'\n  typo: '${podSubet}'\n")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    data = fleet.objects()[("ConfigMap", "kube-system", "router-cfg")]["data"]
    assert data == {"install": "cp x ${TMP}; mv ${TMP} y", "typo": "${podSubet}"}
    warning = f"{manifest}:"
    assert any(warning in line and "${podSubet} is left as written" in line
               for line in run.log.splitlines())
    assert "${TMP}" not in run.log  # no warning for a name that is no near miss


def test_without_addons_the_ready_stage_fails_with_the_network_reason(
    fleet_factory: Any, k8slk: K8slk, tmp_path: Path
) -> None:
    fleet = fleet_factory(3, 1, pod_network_addon=False)
    plan = k8slk("plan", "bootstrap", fleet.inventory)
    assert plan.code == 0
    assert "WARNING: no cluster.addons in the inventory" in plan.stdout
    run = k8slk("run", quick_ready(tmp_path), fleet.inventory, "--json")
    assert run.code == 1
    assert set(fleet.members()) == {"cp-1", "w-1", "w-2"}  # init and joins went through
    for node in run.report["nodes"]:
        assert node["outcome"] == "failed" and node["phase"] == "ready", node
        assert "NetworkPluginNotReady" in node["message"]
    assert any("no pod network is installed" in m and "cluster.addons" in m
               for m in run.report["messages"])
    # The plain lines show why a node waits, as it waits.
    assert "NotReady: KubeletNotReady: container runtime network not ready" in run.stderr
    status = k8slk("status", fleet.inventory, "--json")
    rows = {n["name"]: n["details"] for n in status.report["nodes"]}
    assert all(not r["ready"] and "NetworkPluginNotReady" in r["notReadyReason"]
               for r in rows.values())
    text = k8slk("status", fleet.inventory)
    shown = text.stdout + text.stderr
    assert "NotReady" in shown and "cni plugin not initialized" in shown, shown


def test_kube_proxy_false_renders_skip_phases(fleet: InProcessFleet, k8slk: K8slk) -> None:
    set_cluster(fleet.inventory, "kubeProxy: false")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    objects = fleet.objects()
    assert KUBE_PROXY not in objects
    # kubeadm skipped the phase; the tool recorded that nothing is left to delete.
    assert objects[RECORD]["data"]["kube-proxy-removed"] == "true"


def test_kube_proxy_false_on_v1beta2_deletes_it_after_init(
    fleet_factory: Any, k8slk: K8slk
) -> None:
    fleet = fleet_factory(2, 1, kubernetes_version="v1.21.14")
    set_cluster(fleet.inventory, "kubeProxy: false")
    run = k8slk("bootstrap", fleet.inventory, "--json")
    assert run.code == 0, run.why()
    objects = fleet.objects()
    assert KUBE_PROXY not in objects
    assert ("ConfigMap", "kube-system", "kube-proxy") not in objects
    assert objects[RECORD]["data"]["kube-proxy-removed"] == "true"
    again = k8slk("bootstrap", fleet.inventory, "--json")
    assert again.report["changed"] is False, again.why()
