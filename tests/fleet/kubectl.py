"""The simulated kubectl: the node list, and the node verbs k8slk-ops uses (drain, delete).

It talks to the fleet's one cluster, and only from a node that has admin.conf (the image sets
``KUBECONFIG=/etc/kubernetes/admin.conf``); elsewhere it fails as kubectl does with no config.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from tests.fleet import certs, etcd, leases, objects
from tests.fleet.cluster import Cluster, Member, flag_value, parse_duration
from tests.fleet.node import ADMIN_CONF, SimNode
from tests.fleet.result import NeedsInput, Pending, Result, Stream

# What a real API server answers once its etcd has lost quorum (after its request timeout).
ETCD_GONE = "Error from server: etcdserver: request timed out\n"
NO_SERVER = (
    "The connection to the server localhost:8080 was refused - did you specify the right host "
    "or port?\n"
)


def cli(node: SimNode, argv: list[str]) -> Result | Pending | NeedsInput | Stream:
    args = argv[1:]
    cluster = node.cluster
    if node.files.get(ADMIN_CONF) is None or not cluster.initialised:
        return Result.error(1, NO_SERVER)
    if cluster.etcd_members and not etcd.has_quorum(node):
        return Result.error(1, ETCD_GONE)
    refused = certs.api_refusal(node)  # expired certificates loaded by the API
    if refused is not None:
        return refused
    words = _positional(args)
    lease = _lease(node, args, words)
    if lease is not None:
        return lease
    if args[:3] == ["get", "--raw", "/readyz"]:
        return Result.ok("ok")
    if words[:2] == ["get", "pods"] and flag_value(args, "-n") == "kube-system":
        selector = flag_value(args, "--field-selector") or ""
        return Result.ok(cluster.static_pods_json(selector.removeprefix("spec.nodeName=")))
    if args[:2] == ["get", "nodes"] or args[:2] == ["get", "node"]:
        output = _output(args)
        names = words[2:]
        if "--watch" in args or "-w" in args:
            return _watch_nodes(cluster, names, output, "--output-watch-events" in args)
        missing = [n for n in names if n not in cluster.members]
        if missing:
            return Result.error(1, f'Error from server (NotFound): nodes "{missing[0]}" not found\n')
        if output == "json":
            if len(names) == 1:
                obj = cluster.node_object(cluster.members[names[0]])
                return Result.ok(json.dumps(obj, indent=4) + "\n")
            return Result.ok(cluster.nodes_json())
        rows = [("NAME", "STATUS", "ROLES", "AGE", "VERSION")]
        for m in cluster.members.values():
            if names and m.name not in names:
                continue
            status = "Ready" if cluster.ready(m) else "NotReady"
            if m.unschedulable:
                status += ",SchedulingDisabled"
            rows.append((m.name, status, cluster.roles(m), "1m",
                         m.kubelet_version))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        text = "".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                       + "\n" for r in rows)
        return Result.ok(text)
    if len(words) >= 2 and words[0] in ("cordon", "uncordon", "drain"):
        member = cluster.members.get(words[1])
        if member is None:
            return Result.error(1, f'Error from server (NotFound): nodes "{words[1]}" not found\n')
        member.unschedulable = words[0] != "uncordon"
        pod = cluster.guarded_pods.get(member.name)
        gate = cluster.drain_gates.get(member.name)
        if words[0] == "drain" and gate is not None:
            drained = Result.ok(f"node/{member.name} cordoned\nnode/{member.name} drained\n")

            async def held() -> Result:
                await gate.wait()
                return drained

            return Pending(held)
        if words[0] == "drain" and pod is not None:
            timeout = flag_value(args, "--timeout") or "0s"
            refused = _drain_refused(member.name, pod, timeout)
            if member.name not in cluster.slow_drains:
                return refused

            async def retry_until_timeout() -> Result:
                await asyncio.sleep(parse_duration(timeout).total_seconds())
                return refused

            return Pending(retry_until_timeout)
        verb = {"cordon": "cordoned", "uncordon": "uncordoned", "drain": "drained"}[words[0]]
        prefix = f"node/{member.name} cordoned\n" if words[0] == "drain" else ""
        return Result.ok(f"{prefix}node/{member.name} {verb}\n")
    if words[:2] == ["patch", "node"] and len(words) == 3:
        return _patch_node(cluster, words[2], args)
    if words[:2] == ["annotate", "node"] and len(words) >= 4:
        return _annotate(cluster.members.get(words[2]), words[2], words[3:], "--overwrite" in args)
    if words[:3] == ["delete", "secret", "kubeadm-certs"]:
        if cluster.cert_key is None:
            if "--ignore-not-found" in args:
                return Result.ok()
            return Result.error(1, 'Error from server (NotFound): secrets "kubeadm-certs" not found\n')
        cluster.cert_key = cluster.cert_key_expires = None
        return Result.ok('secret "kubeadm-certs" deleted\n')
    answer = _objects(node, args, words)
    if answer is not None:
        return answer
    if words[:2] == ["delete", "node"] and len(words) >= 3:
        out = []
        for name in words[2:]:
            if cluster.members.pop(name, None) is None:
                return Result.error(1, f'Error from server (NotFound): nodes "{name}" not found\n')
            cluster.etcd_members.discard(name)
            out.append(f'node "{name}" deleted\n')
        return Result.ok("".join(out))
    return Result.error(1, f'error: unknown command "{" ".join(words[:2])}" for "kubectl"\n')


def _patch_node(cluster: Cluster, name: str, args: list[str]) -> Result:
    """``kubectl patch node NAME --type=merge -p JSON``: a JSON merge patch (RFC 7386) of the
    Node's labels, annotations and taints, answered as kubectl does (``patched``, or
    ``patched (no change)``). A merge patch replaces the whole taint list."""
    member = cluster.members.get(name)
    if member is None:
        return Result.error(1, f'Error from server (NotFound): nodes "{name}" not found\n')
    kind = flag_value(args, "--type") or "strategic"
    if kind != "merge":
        return Result.error(1, f"error: the simulated kubectl takes --type=merge, not {kind}\n")
    try:
        patch = json.loads(flag_value(args, "-p") or flag_value(args, "--patch") or "")
    except ValueError:
        return Result.error(1, "error: unable to parse \"\": yaml: invalid patch\n")
    before = json.dumps(cluster.node_object(member), sort_keys=True)
    meta = patch.get("metadata") or {}
    for field_name, target in (("labels", member.labels), ("annotations", member.annotations)):
        for key, value in (meta.get(field_name) or {}).items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    spec = patch.get("spec") or {}
    if "taints" in spec:
        taints = spec["taints"] or []
        kubeadm_keys = [t["key"] for t in taints if t.get("effect") == "NoSchedule"
                        and "value" not in t and t["key"] in member.taints]
        member.taints = tuple(kubeadm_keys)
        member.extra_taints = [t for t in taints if t.get("key") not in kubeadm_keys
                               and t.get("key") != "node.kubernetes.io/unschedulable"]
    changed = json.dumps(cluster.node_object(member), sort_keys=True) != before
    return Result.ok(f"node/{name} patched{'' if changed else ' (no change)'}\n")


def _annotate(member: Member | None, name: str, pairs: list[str], overwrite: bool) -> Result:
    """``kubectl annotate node NAME k=v... [--overwrite]`` and ``k-`` (removal), as kubectl
    answers them: a changed value without --overwrite is refused, a missing key to remove is
    not an error."""
    if member is None:
        return Result.error(1, f'Error from server (NotFound): nodes "{name}" not found\n')
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq and key.endswith("-"):
            member.annotations.pop(key[:-1], None)
            continue
        if not eq:
            return Result.error(1, f"error: invalid annotation format: {pair}\n")
        if key in member.annotations and member.annotations[key] != value and not overwrite:
            return Result.error(
                1, f"error: --overwrite is false but found the following declared annotation(s): "
                f"'{key}' already has a value ({member.annotations[key]})\n")
        member.annotations[key] = value
    return Result.ok(f"node/{name} annotated\n")


def _lease(node: SimNode, args: list[str], words: list[str]) -> Result | NeedsInput | None:
    """create/replace -f - of a Lease, get/delete lease NAME; None for anything else."""
    store = node.cluster.leases
    output = _output(args)
    if words[:1] in (["create"], ["replace"]) and flag_value(args, "-f") == "-":
        verb = leases.create if words[0] == "create" else leases.replace
        return NeedsInput(lambda data: verb(store, data, output))
    if len(words) >= 3 and words[1] in ("lease", "leases", "lease.coordination.k8s.io"):
        ns = flag_value(args, "-n") or flag_value(args, "--namespace") or "default"
        if words[0] == "get":
            return leases.get(store, ns, words[2])
        if words[0] == "delete":
            return leases.delete(store, ns, words[2], "--ignore-not-found" in args)
    return None


def _objects(node: SimNode, args: list[str], words: list[str]) -> Result | NeedsInput | None:
    """apply -f -, get configmap NAME, delete KIND/NAME: the objects besides Nodes."""
    cluster = node.cluster
    namespace = flag_value(args, "-n") or flag_value(args, "--namespace") or "default"
    ignore = "--ignore-not-found" in args
    if words[:1] == ["apply"] and flag_value(args, "-f") == "-":

        def apply(stdin: bytes) -> Result:
            result, network = objects.apply(cluster.objects, stdin, cluster.version)
            cluster.network = cluster.network or network
            return result

        return NeedsInput(apply)
    if words[:2] in (["get", "configmaps"], ["get", "configmap"], ["get", "cm"]) and len(
            words) == 2 and _output(args) == "json":
        return objects.listed(cluster.objects, "ConfigMap", namespace)
    if words[:2] == ["get", "configmap"] and len(words) == 3:
        return objects.get(cluster.objects, "ConfigMap", namespace, words[2], ignore)
    if words[:1] == ["delete"] and len(words) >= 2 and all("/" in w for w in words[1:]):
        return objects.delete(cluster.objects, words[1:], namespace, ignore)
    return None


def _drain_refused(node: str, pod: str, timeout: str) -> Result:
    """kubectl drain when a PodDisruptionBudget refuses the eviction until the timeout: the
    node stays cordoned, exit 1 (kubectl's own lines, the retries cut to one)."""
    namespace, _, name = pod.partition("/")
    timeout = _go_duration(timeout)
    why = f'error when evicting pods/"{name}" -n "{namespace}"'
    out = f"node/{node} cordoned\nevicting pod {pod}\n"
    err = (
        f"{why} (will retry after 5s): Cannot evict pod as it would violate the pod's "
        "disruption budget.\n"
        f'There are pending pods in node "{node}" when an error occurred: [{why}: global '
        f"timeout reached: {timeout}]\n"
        f'error: unable to drain node "{node}" due to error: [{why}: global timeout reached: '
        f"{timeout}], continuing command...\n"
        f"There are pending nodes to be drained:\n {node}\n"
        f"error: [{why}: global timeout reached: {timeout}]\n"
    )
    return Result(1, out.encode(), err.encode())


def _go_duration(text: str) -> str:
    """A duration as Go prints it (``5m`` -> ``5m0s``, ``90s`` -> ``1m30s``)."""
    try:
        seconds = int(parse_duration(text).total_seconds())
    except ValueError:
        return text
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


_VALUED = {"-f", "--filename", "-o", "--output", "-l", "--selector", "-n", "--namespace", "--timeout",
           "--grace-period", "--kubeconfig", "-p", "--patch", "--type"}


# How often the simulated API server looks for changed Nodes to send to a watch (a real one is
# told by etcd at once; readiness here is read off the clock, so it is looked at).
WATCH_TICK = 0.05


def _watch_nodes(cluster: Cluster, names: list[str], output: str,
                 events: bool) -> Stream | Result:
    """``kubectl get nodes --watch``: the nodes as they are (each an ADDED event), then each
    change of one as it happens (MODIFIED, DELETED), until the channel closes. ``-o json``
    prints each Node as kubectl does (indented), with ``--output-watch-events`` one compact
    ``{"type": ..., "object": ...}`` per line; otherwise a table row per change."""
    if output not in ("", "json"):
        return Result.error(1, f"error: the fleet's kubectl cannot watch with -o {output}\n")

    def shown(kind: str, member: Member, obj: dict[str, object]) -> str:
        if output == "json" and events:
            return json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n"
        if output == "json":
            return json.dumps(obj, indent=4) + "\n"
        status = "Ready" if cluster.ready(member) else "NotReady"
        return f"{member.name}   {status}   {cluster.roles(member)}   1m   " \
               f"{member.kubelet_version}\n"

    async def chunks() -> AsyncIterator[bytes]:
        seen: dict[str, tuple[object, ...]] = {}
        last: dict[str, tuple[Member, dict[str, object]]] = {}
        header = output == ""
        while True:
            out = ["NAME   STATUS   ROLES   AGE   VERSION\n"] if header else []
            header = False
            current = {n: _watch_key(cluster, m) for n, m in cluster.members.items()
                       if not names or n in names}
            for name, key in current.items():
                if seen.get(name) == key:
                    continue
                member = cluster.members[name]
                obj = cluster.node_object(member)
                last[name] = (member, obj)
                out.append(shown("ADDED" if name not in seen else "MODIFIED", member, obj))
            for name in [n for n in seen if n not in current]:
                member, obj = last.pop(name)
                out.append(shown("DELETED", member, obj))
            seen = current
            if out:
                yield "".join(out).encode()
            await asyncio.sleep(WATCH_TICK)

    return Stream(chunks)


def _watch_key(cluster: Cluster, m: Member) -> tuple[object, ...]:
    """What a Node's object shows, but for its heartbeat time: a change is a watch event."""
    return (cluster.ready(m), m.unschedulable, tuple(sorted(m.labels.items())), m.taints,
            tuple(sorted(m.annotations.items())), m.kubelet_version, m.control_plane,
            m.kubelet_cert_expired, m.name in cluster.silent_kubelets, cluster.network)


def _positional(args: list[str]) -> list[str]:
    """The words that are not options nor option values."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


def _output(args: list[str]) -> str:
    for i, arg in enumerate(args):
        if arg in ("-o", "--output") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(("-o=", "--output=")):
            return arg.split("=", 1)[1]
        if arg.startswith("-o") and len(arg) > 2:
            return arg[2:]
    return ""
