"""cluster.addons read at load time, cluster.kubeProxy rendered, readiness explained (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k8slk_ops.cluster import addonrecord
from k8slk_ops.cluster.membership import members_of
from k8slk_ops.engine import podnetwork
from k8slk_ops.inventory import InventoryError, load_inventory
from k8slk_ops.inventory.addons import Addon
from k8slk_ops.kubeadm import ConfigApi, parse_nodes_json, render_init
from tests.unit.test_kubeadm_render import docs, init_spec

NETWORK = ("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
           "message:Network plugin returns error: cni plugin not initialized")


def inventory(tmp_path: Path, addons: str, version: str = "v1.31.3") -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(
        f"cluster:\n  name: lab\n  kubernetesVersion: {version}\n  addons: {addons}\n"
        "nodes:\n  - {name: cp-1, address: 10.0.0.1, role: control-plane}\n"
    )
    return path


def test_placeholders_are_filled_in_and_a_directory_is_read_in_name_order(
    tmp_path: Path,
) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "b.yml").write_text("cidr: ${podSubnet}\nliteral: $${HOME}\n")
    (net / "a.yaml").write_text(
        "svc: ${serviceSubnet}\nname: ${clusterName}\n"
        "api: ${controlPlaneEndpoint}\nv: ${kubernetesVersion}\n"
    )
    (net / "notes.txt").write_text("${ignored}")
    inv = load_inventory(inventory(tmp_path, "[net]"))
    first, second = inv.addon_manifests
    assert (first.name, second.name) == ("net/a.yaml", "net/b.yml")
    assert first.text == "svc: 10.96.0.0/12\nname: lab\napi: 10.0.0.1:6443\nv: v1.31.3\n"
    assert second.text == "cidr: 10.244.0.0/16\nliteral: ${HOME}\n"
    assert first.key == "net__a.yaml" and len(first.sha256) == 64


def test_kubernetes_version_placeholder_needs_the_version_set(tmp_path: Path) -> None:
    (tmp_path / "cni.yaml").write_text("image: x:${kubernetesVersion}\n")
    path = tmp_path / "inv.yml"
    path.write_text("cluster:\n  name: lab\n  addons: [cni.yaml]\n"
                    "nodes:\n  - {name: cp-1, address: 10.0.0.1, role: control-plane}\n")
    with pytest.raises(InventoryError, match=r"needs cluster\.kubernetesVersion set"):
        load_inventory(path)


def test_missing_files_and_empty_directories_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InventoryError) as err:
        load_inventory(inventory(tmp_path, "[gone.yaml, empty]"))
    text = str(err.value)
    assert f"inv.yml:4:12: cluster.addons[0]: no such file or directory: {tmp_path / 'gone.yaml'}" in text
    assert "inv.yml:4:23: cluster.addons[1]" in text and "holds no *.yaml or *.yml manifest" in text


def test_a_manifest_over_the_size_bound_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_bytes(b"#" * (2 << 20))
    with pytest.raises(InventoryError, match="larger than 1 MiB"):
        load_inventory(inventory(tmp_path, "[big.yaml]"))


@pytest.mark.parametrize("api", [ConfigApi.V1BETA3, ConfigApi.V1BETA4])
def test_kube_proxy_false_skips_its_phase(api: ConfigApi) -> None:
    init = docs(render_init(init_spec(kube_proxy=False), api))["InitConfiguration"]
    assert init["skipPhases"] == ["addon/kube-proxy"]
    assert "skipPhases" not in docs(render_init(init_spec(), api))["InitConfiguration"]


def test_kube_proxy_false_on_v1beta2_renders_no_skip_phases() -> None:
    init = docs(render_init(init_spec("v1.21.14", kube_proxy=False), ConfigApi.V1BETA2))
    assert "skipPhases" not in init["InitConfiguration"]


def node_list(*conditions: dict[str, str]) -> str:
    items = [{"metadata": {"name": f"n-{i}"}, "status": {"conditions": [c]}}
             for i, c in enumerate(conditions)]
    return json.dumps({"kind": "List", "items": items})


def test_the_ready_condition_explains_a_not_ready_node() -> None:
    out = node_list(
        {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": NETWORK},
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "posting"},
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
         "message": "Kubelet stopped\x1b[2J posting\nnode status."},
    )
    nodes = parse_nodes_json(out)
    assert (nodes[0].not_ready_reason, nodes[0].not_ready_message) == ("KubeletNotReady", NETWORK)
    assert (nodes[1].not_ready_reason, nodes[1].not_ready_message) == ("", "")
    assert nodes[2].not_ready_message == "Kubelet stopped [2J posting node status."
    members = members_of(out)
    assert members["n-0"].network_missing and members["n-0"].not_ready_text.startswith(
        "KubeletNotReady: container runtime network not ready")
    assert not members["n-1"].network_missing and members["n-1"].not_ready_text == ""
    assert podnetwork.report_messages(False, members.values()) == [podnetwork.REPORT_MESSAGE]
    assert podnetwork.report_messages(True, members.values()) == []


def test_the_record_reads_strings_only() -> None:
    doc = {"data": {"a.yaml": "f00", "x": 1}}
    assert addonrecord.parse_record(json.dumps(doc)) == {"a.yaml": addonrecord.RecordEntry("f00")}
    made = json.loads(addonrecord.record_manifest({"b": addonrecord.RecordEntry("2"),
                                                   "a": addonrecord.RecordEntry("1")}))
    assert made["metadata"] == {"name": "k8slk-ops-addons", "namespace": "kube-system",
                                "labels": {"app.kubernetes.io/managed-by": "k8slk-ops"}}
    assert made["data"] == {"a": "1", "b": "2"}


DEMO = """\
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
# nothing here
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo}
data: {a: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
"""
DEMO_OBJECTS = (
    addonrecord.RecordedObject("v1", "Namespace", "", "demo"),
    addonrecord.RecordedObject("v1", "ConfigMap", "demo", "settings"),
    addonrecord.RecordedObject("apps/v1", "Deployment", "demo", "web"),
)


def test_an_entry_names_the_objects_its_manifest_held_and_reads_back() -> None:
    addon = Addon(Path("demo.yaml"), "demo.yaml", DEMO, "d" * 64)
    entry = addonrecord.RecordEntry.of(addon)
    assert entry == addonrecord.RecordEntry("d" * 64, DEMO_OBJECTS)  # the empty document: none
    value = entry.value()
    assert json.loads(value) == {"sha256": "d" * 64, "objects": [
        ["v1", "Namespace", "", "demo"], ["v1", "ConfigMap", "demo", "settings"],
        ["apps/v1", "Deployment", "demo", "web"]]}
    assert " " not in value  # compact: the ConfigMap stays small
    assert addonrecord.RecordEntry.parse(value) == entry
    record = addonrecord.parse_record(addonrecord.record_manifest({"demo.yaml": entry}).decode())
    assert record == {"demo.yaml": entry}
    assert [o.ref for o in entry.objects or ()] == [
        "namespace/demo", "configmap/settings", "deployment.apps/web"]
    assert [o.label for o in entry.objects or ()] == [
        "Namespace demo", "ConfigMap demo/settings", "Deployment demo/web"]


@pytest.mark.parametrize(("value", "entry"), [
    # an entry of old: the bare SHA-256, its objects unknown
    ("a" * 64, addonrecord.RecordEntry("a" * 64)),
    ("true", addonrecord.RecordEntry("true")),  # kube-proxy-removed
    # new, with no object (a manifest of empty documents)
    ('{"sha256":"bb","objects":[]}', addonrecord.RecordEntry("bb", ())),
    # unreadable objects: none is guessed, the entry reads as one of old
    ('{"sha256":"bb","objects":[["v1","ConfigMap","x"]]}', addonrecord.RecordEntry("bb")),
    ('{"sha256":"bb","objects":"no"}', addonrecord.RecordEntry("bb")),
    ('{"sha256":"bb"', addonrecord.RecordEntry('{"sha256":"bb"')),
])
def test_an_entry_is_read_in_either_form(value: str, entry: addonrecord.RecordEntry) -> None:
    assert addonrecord.RecordEntry.parse(value) == entry
    if entry.objects is None and entry.sha256 == value:
        assert entry.value() == value  # an entry of old is written back as it was


def test_a_manifest_of_too_many_objects_is_recorded_by_its_hash_alone() -> None:
    many = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i:05}, "
                   "namespace: a-rather-long-namespace-name}\n" for i in range(3000))
    entry = addonrecord.RecordEntry.of(Addon(Path("m.yaml"), "m.yaml", many, "e" * 64))
    assert entry == addonrecord.RecordEntry("e" * 64)
    assert len(entry.value()) <= addonrecord.MAX_ENTRY_BYTES


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from k8slk_ops.inventory import addons

    read: list[Path] = []
    real = addons.read_text

    def counting(path: Path) -> str:
        read.append(path)
        return real(path)

    monkeypatch.setattr(addons, "read_text", counting)
    return read


def test_a_file_named_many_times_is_refused_before_anything_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 entries naming one 1 MiB file took 467 MB before "listed twice" was said."""
    (tmp_path / "cni.yaml").write_bytes(b"#" * ((1 << 20) - 16) + b"\nkind: x\n")
    read = _count_reads(monkeypatch)
    with pytest.raises(InventoryError) as err:
        load_inventory(inventory(tmp_path, "[" + ", ".join(["cni.yaml"] * 400) + "]"))
    assert read == []
    lines = str(err.value).splitlines()
    assert "inv.yml:4:22: cluster.addons[1]: cni.yaml is listed twice" in lines[0]
    assert len([line for line in lines if "listed twice" in line]) <= 399


def test_the_manifests_together_are_bounded_and_the_entry_going_over_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k8slk_ops.inventory.addons import MAX_TOTAL_BYTES

    size = (1 << 20) - 4096
    count = MAX_TOTAL_BYTES // size + 1  # each under the per-file bound, together over
    for i in range(count):
        (tmp_path / f"m{i:02d}.yaml").write_bytes(b"#" * (size - 1) + b"\n")
    read = _count_reads(monkeypatch)
    names = [f"m{i:02d}.yaml" for i in range(count)]
    path = inventory(tmp_path, "[" + ", ".join(names) + "]")
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    text = str(err.value)
    column = 12 + sum(len(n) + 2 for n in names[:-1])
    assert f"inv.yml:4:{column}: cluster.addons[{count - 1}]: the addon manifests hold more " \
        f"than {MAX_TOTAL_BYTES >> 20} MiB together" in text
    assert f"before {names[-1]}" in text
    assert len(read) == count - 1  # the one going over is not read
