"""The crictl double: the kubelet's static pods as containers, ``ps`` and ``exec``.

The kubelet double records each static pod it runs (``record``: name, pid, a container ID made
from both, and the image its manifest names) under /run/lab-pods, and forgets it when the pod
stops. The image crictl reports is that one, as a real container's is the image its pod spec
named when it was created: the lab's etcd manifest names the etcd image the node's containerd
holds (Debian's etcd, tagged with its own version), so ``crictl ps``, the mirror pod and etcd's
``endpoint status`` all name the same etcd. ``crictl ps`` lists the
running ones (``--name`` is a regular expression, ``-q`` IDs only, ``-o json`` crictl's JSON),
and ``crictl exec ID CMD...`` runs CMD "in" the container: the lab's container is the kubelet's
own, so only the binaries the real image has may run (etcd's image: etcd, etcdctl, etcdutl;
no shell), with crictl's own refusals for an unknown container or binary.

The lab's nodes share one loopback, so a node's own member is on its address, not on
127.0.0.1: an exec'd argument naming ``127.0.0.1:2379`` is pointed at the node's address,
which is what 127.0.0.1 means inside a hostNetwork pod on a real node.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from typing import Any

from k8sdouble import env

POD_DIR = "/run/lab-pods"
# Per static pod: its image's repository (when a record names no image) and the binaries the
# real image holds (what ``exec`` may run).
IMAGES = {
    "etcd": ("registry.k8s.io/etcd", {"etcd", "etcdctl", "etcdutl"}),
    "kube-apiserver": ("registry.k8s.io/kube-apiserver", {"kube-apiserver"}),
}


def record(name: str, pid: int, image: str = "") -> None:
    cid = hashlib.sha256(f"{name}-{pid}-{time.time()}".encode()).hexdigest()
    env.write_atomic(f"{POD_DIR}/{name}.json",
                     json.dumps({"id": cid, "name": name, "pid": pid, "created": time.time(),
                                 "image": image}),
                     0o600)


def image_of(pod: dict[str, Any]) -> str:
    return str(pod.get("image") or IMAGES.get(pod["name"], ("", set()))[0])


def forget(name: str) -> None:
    env.path(f"{POD_DIR}/{name}.json").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by the kubelet) is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def running() -> list[dict[str, Any]]:
    folder = env.path(POD_DIR)
    pods = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            pod = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(pod["pid"])):
            pods.append(pod)
    return pods


def fatal(message: str) -> int:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f'time="{stamp}" level=fatal msg="{message}"', file=sys.stderr)
    return 1


def ps(args: list[str]) -> int:
    name, quiet, output = "", False, "table"
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--name" and i + 1 < len(args):
            name, i = args[i + 1], i + 1
        elif a.startswith("--name="):
            name = a.split("=", 1)[1]
        elif a in ("-q", "--quiet"):
            quiet = True
        elif a in ("-o", "--output") and i + 1 < len(args):
            output, i = args[i + 1], i + 1
        i += 1
    pods = [p for p in running() if not name or re.search(name, p["name"])]
    if quiet:
        for p in pods:
            print(p["id"])
        return 0
    if output == "json":
        print(json.dumps({"containers": [_json(p) for p in pods]}, indent=2))
        return 0
    print(f"{'CONTAINER':<20}{'IMAGE':<20}{'CREATED':<20}{'STATE':<20}{'NAME':<20}"
          f"{'ATTEMPT':<20}POD ID")
    for p in pods:
        print(f"{p['id'][:13]:<20}{image_of(p)[-19:]:<20}"
              f"{'About a minute ago':<20}{'Running':<20}{p['name']:<20}{'0':<20}"
              f"{p['id'][-13:]}")
    return 0


def _json(p: dict[str, Any]) -> dict[str, Any]:
    node = env.node().name
    return {
        "id": p["id"], "podSandboxId": p["id"][::-1],
        "metadata": {"name": p["name"], "attempt": 0},
        "image": {"image": image_of(p)},
        "state": "CONTAINER_RUNNING", "createdAt": str(int(p["created"] * 1e9)),
        "labels": {"io.kubernetes.container.name": p["name"],
                   "io.kubernetes.pod.name": f"{p['name']}-{node}",
                   "io.kubernetes.pod.namespace": "kube-system"},
    }


def exec_(args: list[str]) -> int:
    rest = list(args)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "--timeout" and rest:  # -i, -t, -s take no value
            rest.pop(0)
    if not rest:
        return fatal("ID cannot be empty")
    cid, argv = rest[0], rest[1:]
    matches = [p for p in running() if p["id"].startswith(cid)]
    if not matches:
        return fatal(f"execing command in container: rpc error: code = NotFound desc = could "
                     f"not find container \\\"{cid}\\\": container with ID starting with {cid} "
                     "not found: ID does not exist")
    if not argv:
        return fatal("command cannot be empty")
    pod = matches[0]
    allowed = IMAGES.get(pod["name"], ("", set()))[1]
    if os.path.basename(argv[0]) not in allowed:
        return fatal(f"execing command in container: OCI runtime exec failed: exec failed: unable "
                     f"to start container process: exec: \\\"{argv[0]}\\\": executable file not "
                     "found in $PATH: unknown")
    address = env.node().address
    argv = [a.replace("127.0.0.1:2379", f"{address}:2379") for a in argv]
    sys.stdout.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        return fatal(f"exec: {exc}")
    return 1  # not reached


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: crictl [global options] command [command options] [arguments...]")
        return 0
    while argv and argv[0].startswith("-"):  # --runtime-endpoint X, --timeout X ...
        argv = argv[2:] if "=" not in argv[0] else argv[1:]
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "ps":
        return ps(args)
    if command == "exec":
        return exec_(args)
    return fatal(f"No help topic for '{command}'")
