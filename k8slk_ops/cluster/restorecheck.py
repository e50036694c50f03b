"""``etcd snapshot --verify-restore``: the new snapshot restored and read back on the node.

A snapshot that ``etcdctl snapshot status`` reads may still not restore (a bbolt page etcd
cannot open, a snapshot of the wrong thing), and the day that shows is the day it is needed.
So the snapshot just kept is restored into a scratch directory on the control plane with the
node's own etcd image (the binaries a real restore would use, see
:mod:`k8slk_ops.cluster.etcdrestore`), a throwaway etcd is started on it, and its keys and the
cluster's Node names are read back.

Pure: command lines in, parsed values out. Where things are, and why:

- the scratch directory is ``SCRATCH_PREFIX<run id>`` on the node's persistent disk (a restore
  can be as large as etcd's data; ``/run`` is memory), 0700: it holds every Secret in clear;
- the throwaway etcd runs in its own container of the etcd image, detached (``ctr run -d``:
  ctr refuses ``--rm`` with it, so it is deleted by name, always), without ``--net-host``: runc
  gives the container a network namespace of its own, with its own loopback, so its ports can
  clash neither with the node's etcd (host network, 2379/2380) nor with anything else on a
  machine whose loopback is shared (the lab's nodes share the host's). The ports are high ones
  all the same, so that it can never be taken for the node's etcd in a log;
- etcdctl reaches it through ``ctr task exec`` into that same container (same namespace);
- reads are serializable (``--consistency=s``): the one-member cluster answers them from its
  own data even while it is still electing itself leader.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from k8slk_ops.cluster import etcdrestore
from k8slk_ops.node.facts import TaskState, parse_tasks, tasks_header

# Seen from the SSH shell: the node's persistent /var/lib, beside the restore's own directory.
SCRATCH_PREFIX = "/var/node/var/lib/k8slk-ops-verify-"
CONTAINER_PREFIX = "k8slk-etcd-verify-"
MEMBER = "verify"  # the throwaway member's name
CLIENT_PORT = 32379
PEER_PORT = 32380
CLIENT_URL = f"http://127.0.0.1:{CLIENT_PORT}"
PEER_URL = f"http://127.0.0.1:{PEER_PORT}"
NODES_PREFIX = "/registry/minions/"  # where kube-apiserver keeps Node objects
# How long the throwaway etcd may take to answer: it opens the restored bbolt file first
# (seconds for a large one on a slow disk). etcdctl's dial blocks until it is served.
START_TIMEOUT = 120.0
# One read's dial: how long etcdctl waits for the throwaway etcd to serve before the tool looks
# whether it still runs (an etcd that died at start is seen after one dial, not the whole wait).
ATTEMPT_DIAL = 5.0


def scratch_dir(run_id: str) -> str:
    return f"{SCRATCH_PREFIX}{run_id or 'run'}"


def container_id(run_id: str) -> str:
    return f"{CONTAINER_PREFIX}{run_id or 'run'}"


# Where the containers see the scratch directory (the one-off helper mounts it there).
SNAPSHOT_IN_CONTAINER = f"{etcdrestore.CONTAINER_DIR}/snapshot.db"
DATA_IN_CONTAINER = f"{etcdrestore.CONTAINER_DIR}/data"


def snapshot_path(scratch: str) -> str:
    return f"{scratch}/snapshot.db"


def log_path(scratch: str) -> str:
    """The throwaway etcd's output, written by containerd's shim (``--log-uri file://``)."""
    return f"{scratch}/etcd.log"


def restore_argv(image: str) -> list[str]:
    """The snapshot restored into ``data`` in the scratch directory as a one-member cluster.
    No ``--skip-hash-check``: the file was made by ``snapshot save`` and carries its hash."""
    return [
        etcdrestore.offline_tool(image), "snapshot", "restore", SNAPSHOT_IN_CONTAINER,
        f"--name={MEMBER}", f"--initial-cluster={MEMBER}={PEER_URL}",
        f"--initial-advertise-peer-urls={PEER_URL}", f"--data-dir={DATA_IN_CONTAINER}",
    ]


def etcd_argv() -> list[str]:
    """The throwaway etcd on the restored data, on its own container's loopback, plain HTTP
    (nothing outside the container can reach it)."""
    return [
        "etcd", f"--name={MEMBER}", f"--data-dir={DATA_IN_CONTAINER}",
        f"--listen-client-urls={CLIENT_URL}", f"--advertise-client-urls={CLIENT_URL}",
        f"--listen-peer-urls={PEER_URL}", f"--initial-advertise-peer-urls={PEER_URL}",
        f"--initial-cluster={MEMBER}={PEER_URL}",
    ]


def server_argv(image: str, run_id: str) -> list[str]:
    """``ctr run -d`` of the throwaway etcd, the scratch directory mounted, its output logged."""
    scratch = scratch_dir(run_id)
    return etcdrestore.ctr_run_argv(image, container_id(run_id), etcd_argv(), mount=scratch,
                                    log_file=log_path(scratch))


def _etcdctl(run_id: str, exec_id: str, dial_timeout: float, *args: str) -> list[str]:
    """etcdctl in the throwaway etcd's container; ``exec_id`` unique per call (a read asked
    again must not meet the ID of one whose output was lost)."""
    return [
        "ctr", "--namespace", etcdrestore.CTR_NAMESPACE, "task", "exec", "--exec-id",
        exec_id, container_id(run_id),
        "etcdctl", f"--endpoints={CLIENT_URL}", f"--dial-timeout={dial_timeout:.0f}s",
        "--command-timeout=30s", *args,
    ]


def count_argv(run_id: str, exec_id: str, dial_timeout: float = ATTEMPT_DIAL) -> list[str]:
    """Every key, counted by etcd (``count`` of a range read with ``--limit=1``; 3.4's etcdctl
    has no ``--count-only``). Its dial blocks until the etcd serves or ``dial_timeout`` ends
    (gRPC connects again as soon as it can): asked again, it is also the wait for the start."""
    return _etcdctl(run_id, exec_id, dial_timeout, "get", "", "--prefix", "--keys-only",
                    "--limit=1", "--consistency=s", "-w", "json")


def nodes_argv(run_id: str, exec_id: str) -> list[str]:
    """The Node keys (names only: a value could hold anything)."""
    return _etcdctl(run_id, exec_id, 10, "get", NODES_PREFIX, "--prefix", "--keys-only",
                    "--consistency=s", "-w", "json")


def tasks_argv() -> list[str]:
    """The tasks of the etcd image's namespace (``TASK PID STATUS``): whether the throwaway
    etcd still runs, asked between two reads that found it not serving yet."""
    return ["ctr", "--namespace", etcdrestore.CTR_NAMESPACE, "task", "ls"]


def task_state(text: str, run_id: str) -> TaskState:
    """The throwaway etcd's task in ``ctr task ls``'s output: ``UNKNOWN`` when ctr printed no
    listing at all (its output is lost now and then), ``MISSING`` when it is not listed."""
    lines = text.splitlines()
    if not tasks_header(lines):
        return TaskState.UNKNOWN
    return parse_tasks(lines).get(container_id(run_id), TaskState.MISSING)


# Removes the throwaway etcd (its task killed and deleted, its container and snapshot
# deleted) and the scratch directory, each whether or not it exists; exits 1 naming what is
# still there. "$1": container ID, "$2": scratch directory.
CLEANUP_SCRIPT = (
    'ns="--namespace ' + etcdrestore.CTR_NAMESPACE + '"; '
    'ctr $ns task delete --force "$1" >/dev/null 2>&1; '
    'ctr $ns container delete "$1" >/dev/null 2>&1; '
    'rm -rf "$2"; left=""; '
    'if ctr $ns container info "$1" >/dev/null 2>&1; then left="container $1"; fi; '
    'if [ -e "$2" ]; then left="$left${left:+, }directory $2"; fi; '
    'if [ -n "$left" ]; then echo "still there: $left" >&2; exit 1; fi'
)


def cleanup_argv(run_id: str) -> list[str]:
    return ["sh", "-c", CLEANUP_SCRIPT, "sh", container_id(run_id), scratch_dir(run_id)]


def cleanup_by_hand(run_id: str) -> str:
    """What the operator runs on the node when the cleanup could not."""
    cid, scratch = container_id(run_id), scratch_dir(run_id)
    ns = etcdrestore.CTR_NAMESPACE
    return (f"`ctr --namespace {ns} task delete --force {cid}; ctr --namespace {ns} container "
            f"delete {cid}; rm -rf {scratch}` (it holds every Secret of the cluster)")


# What marks the lines of etcd's output that say why it stopped: a flag refused prints its
# error first and then the whole usage text, so the last lines alone say nothing.
_WHY = re.compile(r"error|fatal|panic|failed|not defined|cannot|invalid|no such|denied", re.I)


def log_excerpt(text: str, n: int) -> list[str]:
    """The throwaway etcd's last ``n`` lines that say why it stopped, else its last ``n``."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    telling = [line for line in lines if _WHY.search(line)]
    return (telling or lines)[-n:]


class CheckError(ValueError):
    """etcd's answer to a read is not what etcdctl prints."""


def _range(text: str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except ValueError:
        raise CheckError(f"{what}: etcdctl's answer is not JSON: {text.strip()[:200]!r}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("header"), dict):
        raise CheckError(f"{what}: not a range answer: {text.strip()[:200]!r}")
    return obj


def parse_count(text: str) -> int:
    """``get "" --prefix --limit=1 -w json``: ``count`` is every key in the range (absent, as
    protobuf's JSON leaves out zeros, when there are none)."""
    obj = _range(text, "key count")
    count = obj.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise CheckError(f"key count: count is not a number: {count!r}")
    return count


def parse_node_names(text: str) -> tuple[str, ...]:
    """``get /registry/minions/ --prefix --keys-only -w json``: the Node names, sorted (keys
    are base64 in etcdctl's JSON)."""
    obj = _range(text, "Node keys")
    names = []
    for kv in obj.get("kvs") or ():
        raw = kv.get("key") if isinstance(kv, dict) else None
        if not isinstance(raw, str):
            raise CheckError(f"Node keys: a key is not base64 text: {raw!r}")
        try:
            key = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CheckError(f"Node keys: a key is not base64 text: {raw[:80]!r}") from None
        if not key.startswith(NODES_PREFIX) or "/" in key[len(NODES_PREFIX):]:
            raise CheckError(f"Node keys: {key[:120]!r} is not under {NODES_PREFIX}")
        names.append(key[len(NODES_PREFIX):])
    return tuple(sorted(names))


@dataclass(frozen=True)
class RestoreCheck:
    """What restoring the new snapshot showed, for the report and the metrics."""

    node: str  # the control plane it was restored on
    verified: bool
    keys: int = 0
    nodes: tuple[str, ...] = ()
    error: str = ""  # why not verified

    def line(self) -> str:
        if not self.verified:
            return f"restore not verified: {self.error}"
        return (f"restore verified: {self.keys} keys, {len(self.nodes)} nodes "
                f"({', '.join(self.nodes)})")

    def to_report(self) -> dict[str, Any]:
        return {"node": self.node, "verified": self.verified, "keys": self.keys,
                "nodes": list(self.nodes), "error": self.error}
