"""The kinds of difference ``drift`` looks for: one pure function each, ``(Wanted, Found)`` in,
``DriftItem``\\ s out.

A kind is registered with ``@kind("name")``: its name labels its items, its count in the JSON
report and its ``k8slk_ops_drift_items{kind="name"}`` series. Adding a kind is adding one more
function here (and, if it needs a fact no kind reads yet, a field of ``Found`` filled where the
cluster is read, ``steps/drift.py``). Each function says what fixes each difference, as a
``NextStep``: the command when the tool has one, else kubeadm's documented way.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from k8slk_ops.base.nextstep import NextStep, tool_command, tool_line
from k8slk_ops.cluster import addonrecord
from k8slk_ops.cluster.nodemeta import Current, NodeMetaDiff, differences
from k8slk_ops.drift.model import ABSENT, ConfigDoc, DriftItem, DriftResult, Found, Wanted
from k8slk_ops.drift.read import COMPONENTS
from k8slk_ops.kubeadm import KubeadmError, KubeVersion
from k8slk_ops.kubeadm.args import to_pairs
from k8slk_ops.node import paths

Compare = Callable[[Wanted, Found], list[DriftItem]]
KINDS: dict[str, Compare] = {}


def kind(name: str) -> Callable[[Compare], Compare]:
    """Register a comparison under ``name`` (the order of registration is the report's)."""

    def register(compare: Compare) -> Compare:
        KINDS[name] = compare
        return compare

    return register


def compare(wanted: Wanted, found: Found) -> DriftResult:
    """Every kind's differences, in the order the kinds are registered."""
    items = [item for compare_kind in KINDS.values() for item in compare_kind(wanted, found)]
    return DriftResult(tuple(items), tuple(KINDS))


# -- values as data ----------------------------------------------------------------------------

# Where kubeadm keeps component flags in a ClusterConfiguration (a map before v1beta4, a list
# of {name, value} from v1beta4 on): read as flags whatever the style, so that a cluster made
# by an older kubeadm compares with what a newer one renders.
ARG_PATHS = tuple(COMPONENTS.values())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True)


def _joined(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else json.dumps(list(values))


def flags_at(doc: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The flags a ClusterConfiguration gives a component (``path``: its ``extraArgs``), each
    with its values in order (v1beta4 may repeat a flag); empty when it gives none."""
    node: Any = doc
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    try:
        pairs = to_pairs(node, ".".join(path))
    except KubeadmError:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for name, value in pairs:
        out[name] = (*out.get(name, ()), value)
    return out


def settings(doc: Mapping[str, Any]) -> dict[str, str]:
    """A configuration as ``dotted.path -> value`` leaves (``apiVersion`` and ``kind`` left out;
    a list is one value; component flags one leaf per flag, ``apiServer.extraArgs.NAME``)."""
    out: dict[str, str] = {}

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if path in ARG_PATHS:
            for name, values in flags_at(doc, path).items():
                out[".".join((*path, name))] = _joined(values)
        elif isinstance(value, Mapping):
            for key, inner in value.items():
                if path or key not in ("apiVersion", "kind"):
                    walk(inner, (*path, str(key)))
        elif path:
            out[".".join(path)] = _text(value)

    walk(doc, ())
    return out


# A field or flag whose name says it holds a credential: its values are compared, never shown
# (kubeadm's own word for a value it will not print).
WITHHELD = "<value withheld>"
_SECRET_WORDS = ("secret", "password", "token")


def _shown(name: str, value: str) -> str:
    """``value`` as a report may show it: withheld when ``name`` says it is a credential."""
    if value != ABSENT and any(w in name.lower() for w in _SECRET_WORDS):
        return WITHHELD
    return value


def _item(kind_name: str, where: str, what: str, expected: str, found: str,
          fix: NextStep) -> DriftItem:
    return DriftItem(kind_name, where, what, _shown(what, expected), _shown(what, found), fix)


def _is_flag(key: str) -> bool:
    return any(key.startswith(".".join(p) + ".") for p in ARG_PATHS)


def _config_items(
    kind_name: str, wanted: Mapping[str, Any], found: ConfigDoc, fix: NextStep, absent: NextStep
) -> list[DriftItem]:
    """A rendered configuration against the one the cluster keeps: every leaf the tool renders
    (what the cluster adds, kubeadm's defaults, is not the inventory's), and every flag the
    cluster keeps that the inventory no longer sets (kubeadm keeps only the flags it was given)."""
    if found.doc is None:
        return [DriftItem(kind_name, found.where, "the configuration", "present",
                          f"unreadable: {found.error}" if found.error else ABSENT, absent)]
    want, have = settings(wanted), settings(found.doc)
    items = [_item(kind_name, found.where, key, value, have.get(key, ABSENT), fix)
             for key, value in want.items() if have.get(key) != value]
    items += [_item(kind_name, found.where, key, ABSENT, value, fix)
              for key, value in have.items() if _is_flag(key) and key not in want]
    return items


def in_kubelet(*argv: str) -> str:
    """A command run inside a LinuxKit node's kubelet container, where kubeadm is."""
    return shlex.join(["ctr", "-n", paths.CONTAINERD_NAMESPACE, "tasks", "exec", "--exec-id",
                       "k8slk-drift", paths.KUBELET_TASK, *argv])


REWRITE_MANIFESTS = in_kubelet("kubeadm", "upgrade", "node", "phase", "control-plane",
                               "--certificate-renewal=false")
EDIT_KUBEADM_CONFIG = "kubectl -n kube-system edit configmap kubeadm-config"
EDIT_KUBELET_CONFIG = "kubectl -n kube-system edit configmap kubelet-config"


# -- the kinds ---------------------------------------------------------------------------------


@kind("nodes")
def nodes(wanted: Wanted, found: Found) -> list[DriftItem]:
    """Nodes of the inventory that are not in the cluster (joined by ``add-node``), and nodes
    of the cluster that are not in the inventory (left alone: the tool manages only its own)."""
    items = []
    for name, role in wanted.nodes.items():
        if name not in found.members:
            join = tool_command("add-node", wanted.inventory, name)
            items.append(DriftItem("nodes", name, "node", f"in the cluster ({role})", ABSENT,
                                   NextStep(f"join it: `{join}`", join)))
    for name in found.members:
        if name not in wanted.nodes:
            items.append(DriftItem(
                "nodes", name, "node", "not in the inventory", "in the cluster",
                NextStep("k8slk-ops leaves a node it does not know alone: add it to the "
                         "inventory to manage it, or take it out of the cluster yourself "
                         f"(`kubectl drain {name} --ignore-daemonsets`, then "
                         f"`kubectl delete node {name}`)")))
    return items


def _metadata(wanted: Wanted, found: Found) -> list[NodeMetaDiff]:
    """What ``apply`` would change in each member's labels and taints (``nodemeta``: the keys
    the inventory lists, and those the tool recorded as its own and the inventory dropped)."""
    diffs = []
    for name, desired in wanted.node_metadata.items():
        member = found.members.get(name)
        if member is not None:
            diffs.append(differences(name, desired, Current.of(member)))
    return diffs


def _apply_fix(wanted: Wanted) -> NextStep:
    line = tool_line("apply", wanted.inventory)
    return NextStep(f"set it as the inventory says: `{line}` (a label or taint the inventory "
                    "never listed is left alone)", line)


@kind("labels")
def labels(wanted: Wanted, found: Found) -> list[DriftItem]:
    """A label the inventory lists that the Node lacks or carries with another value (changed
    by hand), and one the tool set that the inventory no longer lists."""
    return [
        DriftItem("labels", diff.node, f"label {c.key}", ABSENT if c.new is None else c.new,
                  ABSENT if c.old is None else c.old, _apply_fix(wanted))
        for diff in _metadata(wanted, found) for c in diff.labels
    ]


@kind("taints")
def taints(wanted: Wanted, found: Found) -> list[DriftItem]:
    """The same for taints, told apart by key and effect."""
    return [
        DriftItem("taints", diff.node, f"taint {c.ident}", ABSENT if c.new is None else str(c.new),
                  ABSENT if c.old is None else str(c.old), _apply_fix(wanted))
        for diff in _metadata(wanted, found) for c in diff.taints
    ]


def _version(text: str) -> KubeVersion | None:
    try:
        return KubeVersion.parse(text)
    except KubeadmError:
        return None


@kind("versions")
def versions(wanted: Wanted, found: Found) -> list[DriftItem]:
    """Each node's kubelet against ``cluster.kubernetesVersion``, or, when the inventory pins
    none, against the cluster's own version (its kubeadm-config): a roll that stopped half way
    leaves kubelets behind."""
    source = "cluster.kubernetesVersion"
    expected = wanted.kubernetes_version
    if not expected and found.kubeadm_config.doc is not None:
        expected = _text(found.kubeadm_config.doc.get("kubernetesVersion") or "")
        source = "the cluster's version (kubeadm-config)"
    want = _version(expected)
    if want is None:
        return []
    items = []
    for name in wanted.nodes:
        member = found.members.get(name)
        have = _version(member.kubelet_version) if member is not None else None
        if have is None or have == want:
            continue
        upgrade = tool_line("upgrade", wanted.inventory, "--to", str(want))
        if have < want:
            fix = NextStep(f"have the boot server serve the {want} image, then run "
                           f"`{upgrade}`", upgrade)
        else:
            fix = NextStep(f"a kubelet is never downgraded: once every node runs {have}, set "
                           f"cluster.kubernetesVersion to {have} in the inventory (now "
                           f"{source} says {want})")
        items.append(DriftItem("versions", name, "kubelet version", str(want), str(have), fix))
    return items


@kind("addons")
def addons(wanted: Wanted, found: Found) -> list[DriftItem]:
    """``cluster.addons`` against the cluster's record of what was applied
    (``addonrecord``): a manifest never applied or changed since, one applied and since
    taken out of the inventory, and ``cluster.kubeProxy`` against what was done about it."""
    record = found.addon_record
    where = f"ConfigMap {addonrecord.NAMESPACE}/{addonrecord.NAME}"
    apply = tool_command("add-node", wanted.inventory)
    fix = NextStep(f"apply it: `{apply}` applies every manifest changed since it was applied "
                   "(and joins any node missing)", apply)
    items = []
    for addon in wanted.addons:
        entry = record.get(addon.key)
        have = entry.sha256 if entry is not None else ""
        if have != addon.sha256:
            shown = f"applied, sha256 {have[:12]}" if have else "never applied"
            items.append(DriftItem("addons", addon.name, "manifest applied",
                                   f"sha256 {addon.sha256[:12]}", shown, fix))
    prune = tool_line("apply", wanted.inventory, "--prune")
    for key, entry in addonrecord.left_entries(record, (a.key for a in wanted.addons)):
        found_text = f"applied, sha256 {entry.sha256[:12]}"
        if entry.objects is not None:
            fixed = NextStep(f"delete what it made: `{prune}` deletes its {len(entry.objects)} "
                             "object(s) and its record entry (or add it back to cluster.addons)",
                             prune)
        else:
            patch = addonrecord.forget_command(key)
            fixed = NextStep(
                "its record entry was written before the record kept objects, so `apply "
                "--prune` cannot delete it: delete what it made if it is no longer wanted "
                f"(`kubectl delete --ignore-not-found -f FILE`), then take it out of the "
                f"record: `{patch}`", patch)
        items.append(DriftItem("addons", where, f"manifest {key}", "(not in cluster.addons)",
                               found_text, fixed))
    removed = addonrecord.KUBE_PROXY_REMOVED in record
    if not wanted.kube_proxy and not removed:
        items.append(DriftItem("addons", "kube-system/kube-proxy", "kube-proxy",
                               "removed (cluster.kubeProxy: false)", "not removed", fix))
    if wanted.kube_proxy and removed:
        install = in_kubelet("kubeadm", "init", "phase", "addon", "kube-proxy")
        items.append(DriftItem(
            "addons", "kube-system/kube-proxy", "kube-proxy", "installed (cluster.kubeProxy: "
            "true)", "removed by an earlier run",
            NextStep(f"install it again from the primary control plane (`{install}`), then "
                     f"take {addonrecord.KUBE_PROXY_REMOVED} out of the record", install)))
    return items


@kind("cluster-config")
def cluster_config(wanted: Wanted, found: Found) -> list[DriftItem]:
    """The ClusterConfiguration kubeadm keeps in ``kubeadm-config`` against the one the tool
    renders from the inventory: only what the tool renders, compared as data."""
    fix = NextStep(
        "kubeadm does not apply a changed ClusterConfiguration by itself: set it in the "
        f"kubeadm-config ConfigMap (`{EDIT_KUBEADM_CONFIG}`, key ClusterConfiguration), then "
        "rewrite each control plane's static pod manifests from it, one control plane at a "
        "time (the static-pods differences name the nodes and the command)",
        EDIT_KUBEADM_CONFIG)
    absent = NextStep(
        "kubeadm's configuration is not in the cluster: upload it from the primary control "
        f"plane (`{in_kubelet('kubeadm', 'init', 'phase', 'upload-config', 'kubeadm')} "
        "--config FILE`, FILE holding the ClusterConfiguration the inventory renders)")
    return _config_items("cluster-config", wanted.cluster_configuration, found.kubeadm_config,
                         fix, absent)


@kind("kubelet-config")
def kubelet_config(wanted: Wanted, found: Found) -> list[DriftItem]:
    """The KubeletConfiguration kubeadm keeps in ``kubelet-config`` against the rendered one:
    the fields the tool renders and the inventory overrides; kubeadm's defaults are not
    compared (a field taken out of the inventory cannot be told from a default)."""
    update = in_kubelet("kubeadm", "upgrade", "node", "phase", "kubelet-config")
    fix = NextStep(
        f"set it in the kubelet-config ConfigMap (`{EDIT_KUBELET_CONFIG}`, key kubelet), then "
        f"on each node in turn `{update}` and restart its kubelet", EDIT_KUBELET_CONFIG)
    absent = NextStep(
        "the kubelets' configuration is not in the cluster: upload it from the primary control "
        f"plane (`{in_kubelet('kubeadm', 'init', 'phase', 'upload-config', 'kubelet')} "
        "--config FILE`)")
    return _config_items("kubelet-config", wanted.kubelet_configuration, found.kubelet_config,
                         fix, absent)


# Flags kubeadm writes differently on each control plane: never compared between nodes.
NODE_FLAGS = {
    "kube-apiserver": frozenset({"advertise-address", "etcd-servers"}),
    "etcd": frozenset({"advertise-client-urls", "initial-advertise-peer-urls", "initial-cluster",
                       "initial-cluster-state", "listen-client-urls", "listen-metrics-urls",
                       "listen-peer-urls", "name"}),
}


def _rewrite(node: str, component: str, config_first: bool) -> NextStep:
    """A static pod's flags change only when its manifest is written again: kubeadm writes
    it from the kubeadm-config ConfigMap, and the kubelet restarts the pod (a roll)."""
    first = ("first set the flag in the kubeadm-config ConfigMap (the cluster-config "
             "difference), then " if config_first else "")
    return NextStep(
        f"{first}rewrite {node}'s static pod manifests from the kubeadm-config ConfigMap; the "
        f"kubelet restarts {component} with them (a roll: one control plane at a time, each "
        f"Ready before the next): on {node}, `{REWRITE_MANIFESTS}`", REWRITE_MANIFESTS)


@kind("static-pods")
def static_pods(wanted: Wanted, found: Found) -> list[DriftItem]:
    """Each control plane's static pod flags: those the inventory sets (``extraArgs``)
    against the rendered values, and any other flag whose value on one control plane is not
    the one most control planes have (a flag edited by hand), named with the node."""
    config = wanted.cluster_configuration
    etcd = config.get("etcd")
    external = isinstance(etcd, Mapping) and "external" in etcd
    kept = found.kubeadm_config.doc or {}
    items = []
    for component, path in COMPONENTS.items():
        if component == "etcd" and external:
            continue
        want = flags_at(config, path)
        unapplied = flags_at(kept, path) != want
        pods = {n: found.static_pods[n][component] for n in wanted.control_planes
                if n in found.static_pods and component in found.static_pods[n]}
        for node, pod in pods.items():
            if pod.flags is None:
                items.append(DriftItem(
                    "static-pods", node, f"{component} manifest ({pod.path})",
                    "kubeadm's static pod", pod.error or ABSENT, _rewrite(node, component, False)))
                continue
            for name, values in want.items():
                have = pod.flags.get(name)
                if have != values:
                    items.append(_item(
                        "static-pods", node, f"{component} --{name}", _joined(values),
                        _joined(have) if have else ABSENT, _rewrite(node, component, unapplied)))
        items += _odd_flags(component, set(want), {n: p.flags for n, p in pods.items()
                                                   if p.flags is not None})
    return items


def _odd_flags(component: str, owned: set[str],
               flags: Mapping[str, Mapping[str, tuple[str, ...]]]) -> list[DriftItem]:
    """Flags the inventory does not set whose value on a control plane differs from the one
    most control planes have; when no value has a majority, every control plane's is named."""
    if len(flags) < 2:
        return []
    skip = owned | NODE_FLAGS.get(component, frozenset())
    names = sorted({n for f in flags.values() for n in f} - skip)
    items = []
    for name in names:
        seen = {node: f.get(name) for node, f in flags.items()}
        common, count = Counter(seen.values()).most_common(1)[0]
        majority = count * 2 > len(seen)
        for node, values in seen.items():
            if majority and values == common:
                continue
            expected = (_joined(common) if common else ABSENT) if majority else \
                "the same on every control plane"
            items.append(_item("static-pods", node, f"{component} --{name}", expected,
                               _joined(values) if values else ABSENT,
                               _rewrite(node, component, False)))
    return items
