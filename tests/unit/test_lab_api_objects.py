"""The API double's object store, patches, selectors and discovery, without a server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

DOUBLES = Path(__file__).resolve().parents[1] / "lab" / "doubles"
if str(DOUBLES) not in sys.path:
    sys.path.insert(0, str(DOUBLES))

from k8sdouble import objects, resources, rest  # noqa: E402
from k8sdouble.objects import ApiFailure, Objects  # noqa: E402

CM = resources.find("", "v1", "configmaps")
DS = resources.find("apps", "v1", "daemonsets")
assert CM and DS


def test_strategic_merge_merges_named_lists_and_replaces_others() -> None:
    old = {"spec": {"containers": [{"name": "a", "image": "x:1", "args": ["-v"]},
                                   {"name": "b", "image": "y:1"}],
                    "tolerations": [{"operator": "Exists"}]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                      "containers": [{"name": "a", "image": "x:2"},
                                     {"name": "b", "$patch": "delete"}],
                      "tolerations": [{"key": "k", "operator": "Exists"}]}}
    new = objects.strategic_merge(old, patch)
    assert new["spec"]["containers"] == [{"name": "a", "image": "x:2", "args": ["-v"]}]
    assert new["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert objects.strategic_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"c": 2}}


def test_merge_patch_is_rfc7386() -> None:
    assert objects.merge_patch({"a": [1, 2], "b": {"c": 1}}, {"a": [3], "b": {"c": None}}) == {
        "a": [3], "b": {}}


def test_create_get_patch_delete_with_the_real_messages() -> None:
    data: dict[str, object] = {}
    store = Objects(data, 0.0)
    cm = store.create(CM, "kube-system", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert cm["metadata"]["namespace"] == "kube-system" and cm["metadata"]["uid"]
    with pytest.raises(ApiFailure) as clash:
        store.create(CM, "kube-system", {"metadata": {"name": "c"}})
    assert (clash.value.code, clash.value.message) == (409, 'configmaps "c" already exists')
    with pytest.raises(ApiFailure) as no_ns:
        store.create(CM, "nope", {"metadata": {"name": "c"}})
    assert (no_ns.value.code, no_ns.value.message) == (404, 'namespaces "nope" not found')
    rv = cm["metadata"]["resourceVersion"]
    new = store.patch(CM, "kube-system", "c", objects.MERGE_PATCH, {"data": {"b": "2"}})
    assert new["data"] == {"a": "1", "b": "2"} and new["metadata"]["resourceVersion"] != rv
    with pytest.raises(ApiFailure) as missing:
        store.get(DS, "kube-system", "x")
    assert missing.value.message == 'daemonsets.apps "x" not found'
    store.delete(CM, "kube-system", "c")
    assert store.find(CM, "kube-system", "c") is None


def test_selectors() -> None:
    pod = {"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"nodeName": "w-1"},
           "status": {"phase": "Running"}}
    assert objects.matches_fields(pod, "spec.nodeName=w-1,status.phase!=Succeeded")
    assert not objects.matches_fields(pod, "spec.nodeName==w-2")
    assert objects.matches_labels(pod, "app=web,tier in (fe,be),!gone")
    assert not objects.matches_labels(pod, "app!=web")


def test_discovery_lists_verbs_kinds_and_short_names() -> None:
    apps = resources.discovery(["apis", "apps", "v1"], "x", 31)
    assert apps is not None
    ds = next(r for r in apps["resources"] if r["name"] == "daemonsets")
    assert (ds["kind"], ds["namespaced"], ds["shortNames"]) == ("DaemonSet", True, ["ds"])
    assert {"create", "get", "list", "patch", "delete"} <= set(ds["verbs"])
    core = resources.discovery(["api", "v1"], "x", 31)
    assert core is not None
    assert any(r["name"] == "pods/eviction" and r["group"] == "policy" for r in core["resources"])
    assert resources.discovery(["apis", "example.com", "v1"], "x", 31) is None
    assert rest.parse(["apis", "example.com", "v1", "widgets"], 31) is None


def test_daemonset_fit_honours_taints_and_node_selector() -> None:
    node = {"metadata": {"labels": {"kubernetes.io/os": "linux"}},
            "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane",
                                 "effect": "NoSchedule"},
                                {"key": "node.kubernetes.io/unschedulable",
                                 "effect": "NoSchedule"}]}}
    anything = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    plain = {"spec": {}}
    windows = {"spec": {"tolerations": [{"operator": "Exists"}],
                        "nodeSelector": {"kubernetes.io/os": "windows"}}}
    assert rest.fits(anything, node)
    assert not rest.fits(plain, node)
    assert not rest.fits(windows, node)
