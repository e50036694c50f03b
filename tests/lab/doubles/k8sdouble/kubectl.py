"""The kubectl double: a fallback for hosts without a real kubectl binary, and loud about it.

The lab puts a real kubectl into the nodes (``tests/lab/image.py``); only when the host has none
does a node's kubectl lead here, and every call then says so on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from k8sdouble import config, env, nodes
from k8sdouble.client import Client
from k8sdouble.errors import ApiError, CommandError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CommandError(f"error: {message}", hint=False)


def _client(kubeconfig: str | None) -> Client:
    path = kubeconfig or os.environ.get("KUBECONFIG") or "/root/.kube/config"
    target = env.path(path) if path.startswith("/") else env.root() / path
    try:
        text = target.read_text()
    except OSError:
        if kubeconfig:
            raise CommandError(f"error: stat {path}: no such file or directory",
                               hint=False) from None
        raise CommandError("The connection to the server localhost:8080 was refused - did you "
                           "specify the right host or port?", hint=False) from None
    return Client.from_kubeconfig(text, timeout=30)


def _call(client: Client, method: str, path: str, body: object = None) -> object:
    try:
        return client.request(method, path, body)
    except ApiError as exc:
        if exc.status == 0 and exc.reason == "tls":
            raise CommandError(f"Unable to connect to the server: {exc.message}",
                               hint=False) from None
        if exc.status == 0:
            raise CommandError(f"The connection to the server {client.host}:{client.port} was "
                               "refused - did you specify the right host or port?",
                               hint=False) from None
        if exc.status == 404:
            raise CommandError(f"Error from server (NotFound): {exc.message}", hint=False) from None
        if exc.status == 401:
            raise CommandError("error: You must be logged in to the server (Unauthorized)",
                               hint=False) from None
        raise CommandError(f"Error from server ({exc.reason}): {exc.message}", hint=False) from None


def _get(client: Client, args: list[str]) -> int:
    p = Parser(prog="kubectl get")
    p.add_argument("resource")
    p.add_argument("names", nargs="*")
    p.add_argument("-o", "--output", default="")
    ns = p.parse_args(args)
    if ns.resource not in ("nodes", "node", "no"):
        raise CommandError(f'error: the server doesn\'t have a resource type "{ns.resource}"',
                           hint=False)
    if ns.names:
        items = [_call(client, "GET", f"/api/v1/nodes/{n}") for n in ns.names]
    else:
        items = _call(client, "GET", "/api/v1/nodes")["items"]  # type: ignore[index]
    if ns.output == "json":
        if len(ns.names) == 1:
            print(json.dumps(items[0], indent=4))
        else:
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items,
                              "metadata": {"resourceVersion": ""}}, indent=4))
    elif ns.output == "name":
        for item in items:
            print(f"node/{item['metadata']['name']}")  # type: ignore[index]
    elif ns.output in ("", "wide"):
        if not items:
            print("No resources found", file=sys.stderr)
            return 0
        print(nodes.table(items, wide=ns.output == "wide"), end="")  # type: ignore[arg-type]
    else:
        raise CommandError(f"error: unable to match a printer suitable for the output format "
                           f'"{ns.output}"', hint=False)
    return 0


def _schedulable(client: Client, args: list[str], cordon: bool) -> int:
    verb = "cordon" if cordon else "uncordon"
    p = Parser(prog=f"kubectl {verb}")
    p.add_argument("name")
    ns = p.parse_args(args)
    node = _call(client, "GET", f"/api/v1/nodes/{ns.name}")
    already = bool(node["spec"].get("unschedulable")) == cordon  # type: ignore[index]
    _call(client, "PATCH", f"/api/v1/nodes/{ns.name}", {"unschedulable": cordon})
    print(f"node/{ns.name} {'already ' if already else ''}{verb}ed")
    return 0


def _drain(client: Client, args: list[str]) -> int:
    p = Parser(prog="kubectl drain")
    p.add_argument("name")
    p.add_argument("--ignore-daemonsets", action="store_true")
    p.add_argument("--delete-emptydir-data", action="store_true")
    p.add_argument("--delete-local-data", action="store_true")
    p.add_argument("--force", action="store_true")
    p.add_argument("--timeout", default="0s")
    p.add_argument("--grace-period", type=int, default=-1)
    p.add_argument("--disable-eviction", action="store_true")
    ns = p.parse_args(args)
    _schedulable(client, [ns.name], True)
    blocked = _pdb_blocked(ns.name)
    if blocked and not ns.disable_eviction and ns.ignore_daemonsets:
        return _evict_until_timeout(ns.name, blocked, ns.timeout)
    if not ns.ignore_daemonsets:
        raise CommandError(
            f"error: unable to drain node \"{ns.name}\" due to error: cannot delete DaemonSet-"
            "managed Pods (use --ignore-daemonsets to ignore): kube-system/kube-proxy-x7k2p, "
            "continuing command...\nThere are pending nodes to be drained:\n "
            f"{ns.name}\ncannot delete DaemonSet-managed Pods (use --ignore-daemonsets to "
            "ignore): kube-system/kube-proxy-x7k2p", hint=False)
    print(f"Warning: ignoring DaemonSet-managed Pods: kube-system/kube-proxy-{ns.name[-5:]}",
          file=sys.stderr)
    print(f"node/{ns.name} drained")
    return 0


def _pdb_blocked(node: str) -> str:
    """``namespace/pod`` of a pod on ``node`` that its PodDisruptionBudget keeps, or ''."""
    try:
        return env.path(env.FAULT_DRAIN_BLOCK.format(node=node)).read_text().strip()
    except OSError:
        return ""


def _evict_until_timeout(node: str, pod: str, timeout: str) -> int:
    """kubectl drain against a PodDisruptionBudget: eviction refused (429), retried every 5 s
    until --timeout (0: for ever), then kubectl's own error and exit 1."""
    namespace, name = pod.split("/", 1)
    seconds = config.parse_duration(timeout) if timeout else 0.0
    print(f"evicting pod {pod}", flush=True)
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if seconds and left <= 0:
            break
        print(f'error when evicting pods/"{name}" -n "{namespace}" (will retry after 5s): '
              "Cannot evict pod as it would violate the pod's disruption budget.",
              file=sys.stderr, flush=True)
        time.sleep(min(5.0, left) if seconds else 5.0)
    why = (f'error when evicting pods/"{name}" -n "{namespace}": global timeout reached: '
           f"{_go_duration(seconds)}")
    print(f'error: unable to drain node "{node}" due to error: {why}, continuing command...\n'
          f"There are pending nodes to be drained:\n {node}\n{why}", file=sys.stderr)
    return 1


def _go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole seconds: 3s, 5m0s, 1h0m0s."""
    h, rest = divmod(int(seconds), 3600)
    m, sec = divmod(rest, 60)
    return f"{h}h{m}m{sec}s" if h else (f"{m}m{sec}s" if m else f"{sec}s")


def _delete(client: Client, args: list[str]) -> int:
    p = Parser(prog="kubectl delete")
    p.add_argument("resource")
    p.add_argument("names", nargs="+")
    p.add_argument("--ignore-not-found", action="store_true")
    ns = p.parse_args(args)
    if ns.resource not in ("nodes", "node", "no"):
        raise CommandError(f'error: the server doesn\'t have a resource type "{ns.resource}"',
                           hint=False)
    for name in ns.names:
        try:
            _call(client, "DELETE", f"/api/v1/nodes/{name}")
        except CommandError:
            if ns.ignore_not_found:
                continue
            raise
        print(f'node "{name}" deleted')
    return 0


def _version(client: Client | None, args: list[str]) -> int:
    v = env.node().version
    print(f"Client Version: {v}\nKustomize Version: v5.4.2")
    if client is not None and "--client" not in args:
        server = _call(client, "GET", "/version")
        print(f"Server Version: {server['gitVersion']}")  # type: ignore[index]
    return 0


FALLBACK_WARNING = ("WARNING: this is the lab's kubectl double, not kubectl: the host has no real "
                    "kubectl binary (run tests/lab/install-deps.sh)")


def main(argv: list[str]) -> int:
    print(FALLBACK_WARNING, file=sys.stderr, flush=True)
    kubeconfig = None
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--kubeconfig":
            kubeconfig = next(it, None)
        elif arg.startswith("--kubeconfig="):
            kubeconfig = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    try:
        if not rest:
            print("kubectl controls the Kubernetes cluster manager.")
            return 0
        verb, args = rest[0], rest[1:]
        if verb == "version" and "--client" in args:
            return _version(None, args)
        client = _client(kubeconfig)
        if verb == "get":
            return _get(client, args)
        if verb in ("cordon", "uncordon"):
            return _schedulable(client, args, verb == "cordon")
        if verb == "drain":
            return _drain(client, args)
        if verb == "delete":
            return _delete(client, args)
        if verb == "version":
            return _version(client, args)
        raise CommandError(f'error: unknown command "{verb}" for "kubectl"', hint=False)
    except CommandError as exc:
        sys.stdout.flush()
        print(exc.text, file=sys.stderr)
        return exc.code
