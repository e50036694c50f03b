"""Each kind of drift as a table: facts in (Wanted, Found), items out, as data."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from k8slk_ops import drift
from k8slk_ops.cluster.addonrecord import RecordedObject, RecordEntry
from k8slk_ops.cluster.membership import Member
from k8slk_ops.cluster.nodemeta import Desired, OwnedKeys
from k8slk_ops.drift import ABSENT, ConfigDoc, DriftItem, Found, StaticPod, Wanted, WantedAddon
from k8slk_ops.drift import kinds as k
from k8slk_ops.drift.read import ReadError, parse_configmaps, parse_static_pod
from k8slk_ops.kubeadm.kubectl import Taint
from k8slk_ops.node.linuxkit import parse_files

INV = "inv.yml"
KUBEADM_CM = "ConfigMap kube-system/kubeadm-config"
KUBELET_CM = "ConfigMap kube-system/kubelet-config"
CONFIG = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
          "clusterName": "lab", "controlPlaneEndpoint": "10.0.0.11:6443",
          "networking": {"dnsDomain": "cluster.local", "podSubnet": "10.244.0.0/16"},
          "apiServer": {"extraArgs": [{"name": "audit-log-maxage", "value": "30"}]}}
KUBELET = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
           "cgroupDriver": "cgroupfs"}
# What kubeadm keeps: what it was given, its defaults beside it.
KEPT = {**CONFIG, "certificatesDir": "/etc/kubernetes/pki", "kubernetesVersion": "v1.31.3",
        "etcd": {"local": {"dataDir": "/var/lib/etcd"}}}
KEPT_KUBELET = {**KUBELET, "clusterDNS": ["10.96.0.10"], "rotateCertificates": True}
API_FLAGS = {"advertise-address": ("10.0.0.11",), "audit-log-maxage": ("30",),
             "authorization-mode": ("Node,RBAC",)}


def member(name: str, version: str = "v1.31.3", cp: bool = False) -> Member:
    return Member(name, True, cp, kubelet_version=version)


def pods(address: str = "10.0.0.11", **api: str) -> dict[str, StaticPod]:
    flags = {**API_FLAGS, "advertise-address": (address,),
             **{name.replace("_", "-"): (value,) for name, value in api.items()}}
    out = {c: StaticPod(c, drift.manifest_path(c), {}) for c in drift.COMPONENTS}
    out["kube-apiserver"] = StaticPod("kube-apiserver", drift.manifest_path("kube-apiserver"),
                                      {n: v for n, v in flags.items() if v != ("",)})
    return out


def wanted(**changes: Any) -> Wanted:
    base = Wanted(INV, {"cp-1": "control-plane", "cp-2": "control-plane", "w-1": "worker"},
                  "", CONFIG, KUBELET, (WantedAddon("cni/net.yaml", "cni__net.yaml", "a" * 64),))
    return dataclasses.replace(base, **changes)


def found(**changes: Any) -> Found:
    base = Found(
        members={"cp-1": member("cp-1", cp=True), "cp-2": member("cp-2", cp=True),
                 "w-1": member("w-1")},
        kubeadm_config=ConfigDoc(KUBEADM_CM, KEPT),
        kubelet_config=ConfigDoc(KUBELET_CM, KEPT_KUBELET),
        addon_record={"cni__net.yaml": RecordEntry("a" * 64)},  # of old: no objects
        static_pods={"cp-1": pods(), "cp-2": pods("10.0.0.12")},
    )
    return dataclasses.replace(base, **changes)


def rows(items: list[DriftItem]) -> list[tuple[str, str, str, str, str]]:
    return [(i.kind, i.where, i.what, i.expected, i.found) for i in items]


def test_a_cluster_as_rendered_has_no_drift_of_any_kind() -> None:
    result = drift.compare(wanted(), found())
    assert result.items == ()
    assert result.kinds == ("nodes", "labels", "taints", "versions", "addons", "cluster-config",
                            "kubelet-config", "static-pods")
    assert result.to_json()["counts"] == dict.fromkeys(result.kinds, 0)


@pytest.mark.parametrize(("members", "expected"), [
    ({"cp-1": member("cp-1", cp=True), "cp-2": member("cp-2", cp=True)},
     [("nodes", "w-1", "node", "in the cluster (worker)", ABSENT)]),
    ({"cp-1": member("cp-1", cp=True), "cp-2": member("cp-2", cp=True), "w-1": member("w-1"),
      "old-1": member("old-1")},
     [("nodes", "old-1", "node", "not in the inventory", "in the cluster")]),
])
def test_nodes(members: dict[str, Member], expected: list[tuple[str, ...]]) -> None:
    items = k.nodes(wanted(), found(members=members))
    assert rows(items) == expected


def test_a_missing_node_is_joined_and_an_unknown_one_left_alone() -> None:
    members = {"cp-1": member("cp-1", cp=True), "old-1": member("old-1")}
    items = {i.where: i.fix for i in k.nodes(wanted(), found(members=members))}
    assert items["w-1"].command == "k8slk-ops add-node inv.yml --node w-1"
    assert items["cp-2"].command == "k8slk-ops add-node inv.yml --node cp-2"
    assert items["old-1"].command == ""
    assert "leaves a node it does not know alone" in items["old-1"].action


@pytest.mark.parametrize(("pinned", "kept", "versions", "expected"), [
    # the inventory pins the version: every kubelet against it
    ("v1.31.3", "v1.31.3", {"w-1": "v1.30.7"}, [("w-1", "v1.31.3", "v1.30.7")]),
    ("1.31.3", "v1.31.3", {}, []),  # the same version, written without its v
    # no version pinned: the cluster's own (kubeadm-config) is what a kubelet should run
    ("", "v1.31.3", {"cp-2": "v1.30.7"}, [("cp-2", "v1.31.3", "v1.30.7")]),
    ("", "", {"cp-2": "v1.30.7"}, []),  # nothing to compare with
    ("v1.30.7", "v1.30.7", {"w-1": "v1.31.3"}, [("w-1", "v1.30.7", "v1.31.3")]),  # newer
])
def test_versions(pinned: str, kept: str, versions: dict[str, str],
                  expected: list[tuple[str, str, str]]) -> None:
    members = {n: dataclasses.replace(m, kubelet_version=versions.get(n, "v1.31.3" if kept !=
                                                                       "v1.30.7" else kept))
               for n, m in found().members.items()}
    config = {**KEPT, "kubernetesVersion": kept} if kept else {**CONFIG}
    items = k.versions(wanted(kubernetes_version=pinned),
                       found(members=members, kubeadm_config=ConfigDoc(KUBEADM_CM, config)))
    assert [(i.where, i.expected, i.found) for i in items] == expected
    assert all(i.what == "kubelet version" for i in items)


def test_an_older_kubelet_is_upgraded_a_newer_one_is_never_downgraded() -> None:
    members = {**found().members, "w-1": member("w-1", "v1.30.7"), "cp-2": member("cp-2",
                                                                                  "v1.32.0")}
    fixes = {i.where: i.fix for i in k.versions(wanted(kubernetes_version="v1.31.3"),
                                                found(members=members))}
    assert fixes["w-1"].command == "k8slk-ops upgrade inv.yml --to v1.31.3"
    assert "serve the v1.31.3 image" in fixes["w-1"].action
    assert fixes["cp-2"].command == ""
    assert "never downgraded" in fixes["cp-2"].action


@pytest.mark.parametrize(("addons", "kube_proxy", "record", "expected"), [
    # never applied
    ((WantedAddon("cni/net.yaml", "cni__net.yaml", "a" * 64),), True, {},
     [("cni/net.yaml", "manifest applied", f"sha256 {'a' * 12}", "never applied")]),
    # changed since it was applied
    ((WantedAddon("cni/net.yaml", "cni__net.yaml", "b" * 64),), True,
     {"cni__net.yaml": "a" * 64},
     [("cni/net.yaml", "manifest applied", f"sha256 {'b' * 12}", f"applied, sha256 {'a' * 12}")]),
    # applied, and since taken out of the inventory
    ((), True, {"cni__net.yaml": "a" * 64},
     [("ConfigMap kube-system/k8slk-ops-addons", "manifest cni__net.yaml",
       "(not in cluster.addons)", f"applied, sha256 {'a' * 12}")]),
    # kubeProxy: false, and kube-proxy never removed
    ((), False, {}, [("kube-system/kube-proxy", "kube-proxy", "removed (cluster.kubeProxy: "
                      "false)", "not removed")]),
    ((), False, {"kube-proxy-removed": "true"}, []),
    ((), True, {"kube-proxy-removed": "true"},
     [("kube-system/kube-proxy", "kube-proxy", "installed (cluster.kubeProxy: true)",
       "removed by an earlier run")]),
])
def test_addons(addons: tuple[WantedAddon, ...], kube_proxy: bool, record: dict[str, str],
                expected: list[tuple[str, ...]]) -> None:
    entries = {key: RecordEntry.parse(value) for key, value in record.items()}
    items = k.addons(wanted(addons=addons, kube_proxy=kube_proxy), found(addon_record=entries))
    assert [(i.where, i.what, i.expected, i.found) for i in items] == expected
    assert {i.kind for i in items} <= {"addons"}


def test_an_addon_out_of_the_inventory_is_taken_out_of_the_record_by_name() -> None:
    [item] = k.addons(wanted(addons=()), found())
    assert item.fix.command == (
        "kubectl -n kube-system patch configmap k8slk-ops-addons --type json -p "
        "'[{\"op\": \"remove\", \"path\": \"/data/cni__net.yaml\"}]'")
    [changed] = k.addons(wanted(addons=(WantedAddon("cni/net.yaml", "cni__net.yaml", "b" * 64),)),
                         found())
    assert changed.fix.command == "k8slk-ops add-node inv.yml"


def test_an_addon_out_of_the_inventory_whose_objects_are_recorded_is_pruned_by_apply() -> None:
    objects = (RecordedObject("v1", "Namespace", "", "demo"),
               RecordedObject("v1", "ConfigMap", "demo", "settings"))
    [item] = k.addons(wanted(addons=(), kube_proxy=False),
                      found(addon_record={"demo.yaml": RecordEntry("c" * 64, objects),
                                          "kube-proxy-removed": RecordEntry("true")}))
    assert (item.where, item.what, item.expected, item.found) == (
        "ConfigMap kube-system/k8slk-ops-addons", "manifest demo.yaml", "(not in cluster.addons)",
        f"applied, sha256 {'c' * 12}")
    assert item.fix.command == "k8slk-ops apply inv.yml --prune"
    assert "deletes its 2 object(s)" in item.fix.action


def _kept(**config: Any) -> ConfigDoc:
    return ConfigDoc(KUBEADM_CM, {**KEPT, **config})


@pytest.mark.parametrize(("wanted_config", "kept", "expected"), [
    # an argument changed in the inventory and never applied (the kept one in v1beta3's map
    # style: compared as flags, whatever the style)
    ({**CONFIG, "apiServer": {"extraArgs": [{"name": "audit-log-maxage", "value": "60"}]}},
     _kept(apiServer={"extraArgs": {"audit-log-maxage": "30"}}),
     [("apiServer.extraArgs.audit-log-maxage", "60", "30")]),
    # an argument taken out of the inventory, still in the cluster
    ({**CONFIG, "apiServer": {}}, _kept(),
     [("apiServer.extraArgs.audit-log-maxage", ABSENT, "30")]),
    # a new argument for another component
    ({**CONFIG, "scheduler": {"extraArgs": {"v": 2}}}, _kept(),
     [("scheduler.extraArgs.v", "2", ABSENT)]),
    # kubeadm's defaults beside what it was given are not the inventory's
    (CONFIG, _kept(imageRepository="registry.k8s.io", dns={}), []),
    # a field of the inventory's, as data: the same list, other whitespace in the YAML
    ({**CONFIG, "apiServer": {**CONFIG["apiServer"], "certSANs": ["a.example", "10.0.0.10"]}},
     _kept(apiServer={**CONFIG["apiServer"], "certSANs": ["a.example", "10.0.0.10"]}), []),
    ({**CONFIG, "networking": {**CONFIG["networking"], "podSubnet": "10.32.0.0/12"}}, _kept(),
     [("networking.podSubnet", "10.32.0.0/12", "10.244.0.0/16")]),
    # a pinned version the cluster is not at yet
    ({**CONFIG, "kubernetesVersion": "v1.32.0"}, _kept(),
     [("kubernetesVersion", "v1.32.0", "v1.31.3")]),
    (CONFIG, ConfigDoc(KUBEADM_CM, None), [("the configuration", "present", ABSENT)]),
    (CONFIG, ConfigDoc(KUBEADM_CM, None, "its ClusterConfiguration is not YAML: ..."),
     [("the configuration", "present", "unreadable: its ClusterConfiguration is not YAML: ...")]),
])
def test_cluster_config(wanted_config: Mapping[str, Any], kept: ConfigDoc,
                        expected: list[tuple[str, str, str]]) -> None:
    items = k.cluster_config(wanted(cluster_configuration=wanted_config),
                             found(kubeadm_config=kept))
    assert [(i.what, i.expected, i.found) for i in items] == expected
    assert all((i.kind, i.where) == ("cluster-config", KUBEADM_CM) for i in items)


@pytest.mark.parametrize(("wanted_kubelet", "kept", "expected"), [
    (KUBELET, KEPT_KUBELET, []),
    ({**KUBELET, "maxPods": 200}, KEPT_KUBELET, [("maxPods", "200", ABSENT)]),
    ({**KUBELET, "maxPods": 200}, {**KEPT_KUBELET, "maxPods": 110}, [("maxPods", "200", "110")]),
    ({**KUBELET, "evictionHard": {"memory.available": "200Mi"}},
     {**KEPT_KUBELET, "evictionHard": {"memory.available": "100Mi"}},
     [("evictionHard.memory.available", "200Mi", "100Mi")]),
    ({**KUBELET, "cgroupDriver": "systemd"}, KEPT_KUBELET,
     [("cgroupDriver", "systemd", "cgroupfs")]),
])
def test_kubelet_config(wanted_kubelet: Mapping[str, Any], kept: Mapping[str, Any],
                        expected: list[tuple[str, str, str]]) -> None:
    items = k.kubelet_config(wanted(kubelet_configuration=wanted_kubelet),
                             found(kubelet_config=ConfigDoc(KUBELET_CM, kept)))
    assert [(i.what, i.expected, i.found) for i in items] == expected
    assert all(i.fix.command == "kubectl -n kube-system edit configmap kubelet-config"
               for i in items)


@pytest.mark.parametrize(("static", "expected"), [
    # a flag the inventory sets, edited by hand on one control plane
    ({"cp-1": pods(), "cp-2": pods("10.0.0.12", audit_log_maxage="7")},
     [("cp-2", "kube-apiserver --audit-log-maxage", "30", "7")]),
    # gone from one manifest
    ({"cp-1": pods(audit_log_maxage=""), "cp-2": pods("10.0.0.12")},
     [("cp-1", "kube-apiserver --audit-log-maxage", "30", ABSENT)]),
    # a flag the inventory does not set: the odd control plane against the others
    ({"cp-1": pods(v="5"), "cp-2": pods("10.0.0.12"), "cp-3": pods("10.0.0.13")},
     [("cp-1", "kube-apiserver --v", ABSENT, "5")]),
    # two control planes that disagree: neither has a majority, both are named
    ({"cp-1": pods(authorization_mode="AlwaysAllow"), "cp-2": pods("10.0.0.12")},
     [("cp-1", "kube-apiserver --authorization-mode", "the same on every control plane",
       "AlwaysAllow"),
      ("cp-2", "kube-apiserver --authorization-mode", "the same on every control plane",
       "Node,RBAC")]),
    # node-specific flags differ on every control plane, as kubeadm writes them
    ({"cp-1": pods(), "cp-2": pods("10.0.0.12"), "cp-3": pods("10.0.0.13")}, []),
    # a control plane that could not be read is not drift (it is reported unreachable)
    ({"cp-1": pods()}, []),
])
def test_static_pods(static: dict[str, dict[str, StaticPod]],
                     expected: list[tuple[str, str, str, str]]) -> None:
    nodes = {n: "control-plane" for n in ("cp-1", "cp-2", "cp-3")}
    items = k.static_pods(wanted(nodes=nodes), found(static_pods=static))
    assert [(i.where, i.what, i.expected, i.found) for i in items] == expected
    assert {i.kind for i in items} <= {"static-pods"}


def test_a_missing_manifest_and_the_roll_that_fixes_a_flag() -> None:
    static = {"cp-1": {**pods(), "kube-apiserver": StaticPod(
        "kube-apiserver", drift.manifest_path("kube-apiserver"), None)}, "cp-2": pods("10.0.0.12")}
    [item] = k.static_pods(wanted(), found(static_pods=static))
    assert (item.where, item.what, item.found) == (
        "cp-1", "kube-apiserver manifest (/var/node/etc/kubernetes/manifests/kube-apiserver.yaml)",
        ABSENT)
    assert item.fix.command == ("ctr -n services.linuxkit tasks exec --exec-id k8slk-drift "
                                "kubelet kubeadm upgrade node phase control-plane "
                                "--certificate-renewal=false")


def test_an_inventory_change_asks_for_the_configmap_first() -> None:
    config = {**CONFIG, "apiServer": {"extraArgs": {"audit-log-maxage": "60"}}}
    items = k.static_pods(wanted(cluster_configuration=config), found())
    assert [(i.where, i.expected, i.found) for i in items] == [("cp-1", "60", "30"),
                                                               ("cp-2", "60", "30")]
    assert all(i.fix.action.startswith("first set the flag in the kubeadm-config ConfigMap")
               for i in items)
    by_hand = k.static_pods(wanted(), found(static_pods={"cp-1": pods(audit_log_maxage="7"),
                                                         "cp-2": pods("10.0.0.12")}))
    assert by_hand[0].fix.action.startswith("rewrite cp-1's static pod manifests")


def test_external_etcd_has_no_etcd_manifest_to_compare() -> None:
    config = {**CONFIG, "etcd": {"external": {"endpoints": ["https://10.0.0.5:2379"]}}}
    static = {n: {**p, "etcd": StaticPod("etcd", drift.manifest_path("etcd"), None)}
              for n, p in found().static_pods.items()}
    assert k.static_pods(wanted(cluster_configuration=config), found(static_pods=static)) == []


def test_a_new_kind_is_one_more_function() -> None:
    @drift.kind("example")
    def example(w: Wanted, f: Found) -> list[DriftItem]:
        return [DriftItem("example", "cp-1", "x", "1", "2", drift.kinds.NextStep("do it"))]

    try:
        result = drift.compare(wanted(), found())
        assert result.kinds[-1] == "example"
        assert result.to_json()["counts"]["example"] == 1
    finally:
        del drift.KINDS["example"]


# -- reading what the cluster printed -----------------------------------------------------------


def _cm(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "kube-system"}, "data": data}


def test_configmaps_are_read_from_one_list() -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [
        _cm("kubeadm-config", {"ClusterConfiguration": yaml.safe_dump(KEPT)}),
        _cm("kubelet-config", {"kubelet": yaml.safe_dump(KEPT_KUBELET)}),
        _cm("k8slk-ops-addons", {"cni__net.yaml": "a" * 64}),
        _cm("coredns", {"Corefile": "."}),
    ]}
    maps = parse_configmaps(json.dumps(listed))
    assert maps.kubeadm_config == ConfigDoc(KUBEADM_CM, KEPT)
    assert maps.kubelet_config == ConfigDoc(KUBELET_CM, KEPT_KUBELET)
    assert maps.addon_record == {"cni__net.yaml": RecordEntry("a" * 64)}


def test_kubelet_config_of_a_minor_before_1_24() -> None:
    listed = {"kind": "List", "items": [
        _cm("kubelet-config-1.22", {"kubelet": "cgroupDriver: systemd\n"}),
        _cm("kubelet-config-1.23", {"kubelet": "cgroupDriver: cgroupfs\n"}),
    ]}
    maps = parse_configmaps(json.dumps(listed))
    assert maps.kubelet_config == ConfigDoc("ConfigMap kube-system/kubelet-config-1.23",
                                            {"cgroupDriver": "cgroupfs"})
    assert maps.kubeadm_config == ConfigDoc(KUBEADM_CM, None)
    assert maps.addon_record == {}


@pytest.mark.parametrize(("text", "error"), [
    ("- not\n- a mapping\n", "its ClusterConfiguration is not a mapping"),
    ("a: [\n", "its ClusterConfiguration is not YAML"),
])
def test_an_unreadable_configuration_says_why(text: str, error: str) -> None:
    listed = {"kind": "List", "items": [_cm("kubeadm-config", {"ClusterConfiguration": text})]}
    doc = parse_configmaps(json.dumps(listed)).kubeadm_config
    assert doc.doc is None and doc.error.startswith(error)


@pytest.mark.parametrize("text", ["", "not json", '{"kind": "ConfigMap"}'])
def test_a_list_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ReadError):
        parse_configmaps(text)


def test_static_pod_flags_as_kubeadm_writes_them() -> None:
    manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{
        "name": "kube-apiserver", "command": ["kube-apiserver", "--advertise-address=10.0.0.11",
                                              "--tls-cipher-suites=a,b", "--admission=x=y",
                                              "--v=2", "--v=4", "--flag"]}]}})
    pod = parse_static_pod("kube-apiserver", "/m.yaml", manifest.encode())
    assert pod.flags == {"advertise-address": ("10.0.0.11",), "tls-cipher-suites": ("a,b",),
                         "admission": ("x=y",), "v": ("2", "4"), "flag": ("",)}
    assert parse_static_pod("etcd", "/e.yaml", None) == StaticPod("etcd", "/e.yaml", None)
    broken = parse_static_pod("etcd", "/e.yaml", b"spec: [")
    assert broken.flags is None and "edited by hand" in broken.error


def test_several_files_in_one_reading() -> None:
    out = b"5 /a\nab\ncd-1 /b\n0 /c\n"
    assert parse_files(out, ["/a", "/b", "/c"]) == {"/a": b"ab\ncd", "/b": None, "/c": b""}
    for cut in (b"5 /a\nab", b"5 /a\nab\ncd", b"x /a\n"):
        with pytest.raises(ValueError):
            parse_files(cut, ["/a", "/b"])


def test_a_credential_is_compared_and_never_shown() -> None:
    config = {**CONFIG, "apiServer": {"extraArgs": [
        {"name": "audit-log-maxage", "value": "30"},
        {"name": "oidc-client-secret", "value": "s3cr3t-new"}]}}
    kept = _kept(apiServer={"extraArgs": [{"name": "audit-log-maxage", "value": "30"},
                                          {"name": "oidc-client-secret", "value": "s3cr3t"}]})
    items = k.cluster_config(wanted(cluster_configuration=config), found(kubeadm_config=kept))
    assert [(i.what, i.expected, i.found) for i in items] == [
        ("apiServer.extraArgs.oidc-client-secret", "<value withheld>", "<value withheld>")]
    static = {"cp-1": pods(oidc_client_secret="s3cr3t"), "cp-2": pods("10.0.0.12")}
    by_hand = k.static_pods(wanted(nodes={"cp-1": "control-plane", "cp-2": "control-plane",
                                          "cp-3": "control-plane"}),
                            found(static_pods={**static, "cp-3": pods("10.0.0.13")}))
    assert [(i.where, i.expected, i.found) for i in by_hand] == [
        ("cp-1", ABSENT, "<value withheld>")]
    assert "s3cr3t" not in json.dumps([i.to_json() for i in items + by_hand])


NO_SCHEDULE = Taint("dedicated", "NoSchedule", "db")


@pytest.mark.parametrize(("node", "desired", "expected"), [
    # listed and carried: nothing
    (Member("w-1", True, False, labels={"tier": "db"}, owned=OwnedKeys(frozenset({"tier"}))),
     Desired({"tier": "db"}), []),
    # changed by hand: named with the value it should have and the one it has
    (Member("w-1", True, False, labels={"tier": "web"}, owned=OwnedKeys(frozenset({"tier"}))),
     Desired({"tier": "db"}), [("labels", "w-1", "label tier", "db", "web")]),
    # never set (a node that joined before the inventory listed it)
    (Member("w-1", True, False), Desired({"tier": "db"}),
     [("labels", "w-1", "label tier", "db", ABSENT)]),
    # owned, then dropped from the inventory: it should go
    (Member("w-1", True, False, labels={"tier": "db"}, owned=OwnedKeys(frozenset({"tier"}))),
     Desired(), [("labels", "w-1", "label tier", ABSENT, "db")]),
    # set by hand, never listed: not the tool's, not drift
    (Member("w-1", True, False, labels={"team": "a"}), Desired(), []),
    # a taint listed and missing, one owned and dropped
    (Member("w-1", True, False), Desired(taints=(NO_SCHEDULE,)),
     [("taints", "w-1", "taint dedicated:NoSchedule", str(NO_SCHEDULE), ABSENT)]),
    (Member("w-1", True, False, taints=(NO_SCHEDULE,),
            owned=OwnedKeys(frozenset(), frozenset({"dedicated:NoSchedule"}))),
     Desired(), [("taints", "w-1", "taint dedicated:NoSchedule", ABSENT, str(NO_SCHEDULE))]),
])
def test_labels_and_taints_the_inventory_owns(
    node: Member, desired: Desired, expected: list[tuple[str, ...]]
) -> None:
    members = {"cp-1": member("cp-1", cp=True), "cp-2": member("cp-2", cp=True), "w-1": node}
    items = [*k.labels(wanted(node_metadata={"w-1": desired}), found(members=members)),
             *k.taints(wanted(node_metadata={"w-1": desired}), found(members=members))]
    assert rows(items) == expected
    assert all(i.fix.command == f"k8slk-ops apply {INV}" for i in items)
