"""The etcd static pod of a simulated control plane: ``crictl`` in the kubelet container, and
``etcdctl`` inside the etcd container, answering as etcd 3.4 does.

A control plane that is an etcd member has a running ``etcd`` container, unless the member is
stopped (``Cluster.etcd_stopped``): then ``crictl ps`` does not list it. Quorum is counted over
the cluster's etcd members: with half or more stopped, ``endpoint health`` times out the way
etcdctl does and the endpoint reports no leader. ``snapshot save`` writes a real etcd 3.4
snapshot (``data/etcd-snapshot.db``, taken from a real etcd holding ``/registry/minions/...``
keys) into the node's etcd data directory; ``snapshot status`` reads it back. Once the
node's ``etcd-healthcheck-client`` certificate (the one etcdctl is given) has expired, etcd
refuses it: every call ends in a failed TLS handshake (``tls: bad certificate``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from k8sdouble import kubeadmtexts as texts

from tests.fleet import certs
from tests.fleet.cluster import ETCD_VERSION, Cluster, etcd_image
from tests.fleet.node import SimNode
from tests.fleet.result import Result

SNAPSHOT = (Path(__file__).parent / "data" / "etcd-snapshot.db").read_bytes()
SNAPSHOT_STATUS = {"hash": 1955560298, "revision": 6, "totalKey": 9, "totalSize": 20480}
DATA_DIR = "/var/lib/etcd"  # in the etcd container
HOST_DATA_DIR = "/var/node/var/lib/etcd"  # from the SSH shell
CLUSTER_ID = 14841639068965178418
DEADLINE = (
    '{"level":"warn","ts":"2026-01-01T00:00:00.000Z","caller":"clientv3/retry_interceptor.go:62",'
    '"msg":"retrying of unary invoker failed","target":"endpoint://client-0/127.0.0.1:2379",'
    '"attempt":0,"error":"rpc error: code = DeadlineExceeded desc = context deadline exceeded"}\n'
)

# What etcdctl prints when etcd refuses its client certificate (expired): the TLS handshake
# fails on every retry until the command's deadline.
BAD_CERTIFICATE = DEADLINE.replace(
    "context deadline exceeded",
    'latest balancer error: connection error: desc = \\"transport: authentication handshake '
    'failed: remote error: tls: bad certificate\\"',
)


def container_id(node: SimNode) -> str:
    return hashlib.sha256(f"etcd-{node.name}".encode()).hexdigest()


def member_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1


def running(node: SimNode) -> bool:
    cluster = node.cluster
    return node.name in cluster.etcd_members and node.name not in cluster.etcd_stopped


def has_quorum(node: SimNode) -> bool:
    cluster = node.cluster
    up = cluster.etcd_members - cluster.etcd_stopped
    return len(up) * 2 > len(cluster.etcd_members)


def crictl(node: SimNode, argv: list[str]) -> Result:
    args = argv[1:]
    if args[:1] == ["ps"]:
        return _ps(node, args[1:])
    if args[:1] == ["exec"]:
        rest = [a for a in args[1:] if a not in ("-i", "-t", "--interactive", "--tty")]
        if not rest or not running(node) or rest[0] != container_id(node):
            cid = rest[0] if rest else ""
            return Result.error(1, f'time="2026-01-01T00:00:00Z" level=fatal msg="execing command '
                                   f'in container: rpc error: code = NotFound desc = could not find '
                                   f'container \\"{cid}\\": not found"\n')
        if len(rest) < 2:
            return Result.error(1, "crictl exec: command must not be empty\n")
        if os.path.basename(rest[1]) != "etcdctl":
            return Result.error(1, f'OCI runtime exec failed: exec: "{rest[1]}": executable file '
                                   "not found in $PATH\n")
        return etcdctl(node, rest[1:])
    return Result.error(1, f"crictl: no such command {args[:1]}\n")


def _ps(node: SimNode, args: list[str]) -> Result:
    name = args[args.index("--name") + 1] if "--name" in args else ""
    parked = certs.parked(node)  # the static pod manifests are out: the kubelet stopped them
    shown = running(node) and not parked and (not name or re.search(name, "etcd") is not None)
    cid = container_id(node)
    if "-q" in args or "--quiet" in args:
        ids = [cid] if shown else []
        if certs.of(node) is not None and not parked and re.search(name, "kube-apiserver"):
            ids.append(cid[::-1])
        return Result.ok("".join(i + "\n" for i in ids))
    if "-o" in args and args[args.index("-o") + 1] == "json":
        containers = [] if not shown else [{
            "id": cid, "podSandboxId": cid[::-1],
            "metadata": {"name": "etcd", "attempt": 0},
            "image": {"image": etcd_image(node.cluster.etcd_version(node.name))},
            "state": "CONTAINER_RUNNING",
            "labels": {"io.kubernetes.container.name": "etcd",
                       "io.kubernetes.pod.name": f"etcd-{node.name}",
                       "io.kubernetes.pod.namespace": "kube-system"},
        }]
        return Result.ok(json.dumps({"containers": containers}, indent=2) + "\n")
    header = "CONTAINER           IMAGE               CREATED             STATE               NAME                ATTEMPT             POD ID\n"
    tag = f"{node.cluster.etcd_version(node.name)}-0"
    row = f"{cid[:13]}       {tag:<20}1 minute ago        Running             etcd                0                   {cid[::-1][:13]}\n"
    return Result.ok(header + (row if shown else ""))


def member_at(node: SimNode, endpoint: str) -> str | None:
    """The member whose client URL is ``endpoint``; 127.0.0.1 is the node's own."""
    host = endpoint.removeprefix("https://").rsplit(":", 1)[0]
    if host == "127.0.0.1":
        return node.name
    for name, address in node.cluster.etcd_addresses.items():
        if address == host and name in node.cluster.etcd_members:
            return name
    return None


def answers(node: SimNode, name: str | None) -> bool:
    cluster = node.cluster
    return name is not None and name in cluster.etcd_members and name not in cluster.etcd_stopped


def etcdctl(node: SimNode, argv: list[str]) -> Result:
    words = [a for a in argv[1:] if not a.startswith("--")]
    flags = [a for a in argv[1:] if a.startswith("--")]
    if words[:2] == ["snapshot", "status"] and len(words) >= 3:
        return _snapshot_status(node, words[2])
    if not any(f.startswith("--cert=") for f in flags):
        return Result.error(1, DEADLINE + "Error: context deadline exceeded\n")  # no client cert
    if certs.expired(node, "etcd-healthcheck-client"):  # etcd refuses the client certificate
        return Result.error(1, BAD_CERTIFICATE + "Error: context deadline exceeded\n")
    endpoints = [f.split("=", 1)[1] for f in flags if f.startswith("--endpoints=")]
    if len(endpoints) != 1 or "," in endpoints[0]:
        return Result.error(1, f"Error: the fleet's etcdctl takes one endpoint, got {endpoints}\n")
    target = member_at(node, endpoints[0])
    if "--cluster" in flags and target == node.name and words[:1] == ["endpoint"]:
        return _cluster(node, words[1:2])
    if target != node.name:  # another member, reached over the network
        if not answers(node, target):
            return Result.error(1, DEADLINE.replace("127.0.0.1:2379", endpoints[0].removeprefix(
                "https://")) + "Error: context deadline exceeded\n")
        if words[:2] == ["endpoint", "status"]:
            status = _endpoint_status(node, target or "", endpoints[0])
            return Result.ok(json.dumps([status]) + "\n")
        return Result.error(1, f"Error: the fleet answers only endpoint status at {endpoints[0]}\n")
    if words[:2] == ["snapshot", "save"] and len(words) >= 3:
        path = words[2]
        node.write(_host_path(path), SNAPSHOT, 0o600)
        return Result.ok(f"Snapshot saved at {path}\n")
    if words[:2] == ["endpoint", "status"]:
        return Result.ok(json.dumps([_endpoint_status(node)]) + "\n")
    if words[:2] == ["endpoint", "health"]:
        if not has_quorum(node):
            return Result(1, b"", (DEADLINE + "https://127.0.0.1:2379 is unhealthy: failed to "
                          "commit proposal: context deadline exceeded\nError: unhealthy cluster\n"
                          ).encode())
        return Result.ok(json.dumps([{"endpoint": "https://127.0.0.1:2379", "health": True,
                                      "took": "1.2ms"}]) + "\n")
    if words[:2] == ["member", "list"]:
        addresses = node.cluster.etcd_addresses
        members = [{"ID": member_id(n), "name": n,
                    "peerURLs": [f"https://{addresses[n]}:2380"],
                    "clientURLs": [f"https://{addresses[n]}:2379"]}
                   for n in sorted(node.cluster.etcd_members)]
        return Result.ok(json.dumps({"header": {"cluster_id": CLUSTER_ID}, "members": members}))
    if words[:2] == ["member", "remove"] and len(words) == 3:
        return _member_remove(node, words[2])
    return Result.error(1, f"Error: unknown command {words[:2]} for \"etcdctl\"\n")


def _cluster(node: SimNode, what: list[str]) -> Result:
    """``endpoint status|health --cluster``: etcdctl reads the member list through the given
    endpoint, then asks each member's client URL itself. etcd 3.4's forms: a row per member
    that answered (status) or per member (health), a line on stderr for each failure, exit 1."""
    cluster = node.cluster
    urls = [(n, f"https://{cluster.etcd_addresses[n]}:2379") for n in sorted(cluster.etcd_members)]
    if what == ["status"]:
        rows, errors = [], ""
        for name, url in urls:
            if answers(node, name):
                rows.append(_endpoint_status(node, name, url))
            else:
                errors += (DEADLINE.replace("127.0.0.1:2379", url.removeprefix("https://"))
                           + f"Failed to get the status of endpoint {url} (context deadline "
                           "exceeded)\n")
        return Result(1 if errors else 0, (json.dumps(rows) + "\n").encode(), errors.encode())
    if what == ["health"]:
        rows, bad = [], False
        for name, url in urls:
            ok = answers(node, name) and has_quorum(node)
            row: dict[str, object] = {"endpoint": url, "health": ok, "took": "1.2ms"}
            if not ok:
                row["error"] = "context deadline exceeded"
                bad = True
            rows.append(row)
        return Result(1 if bad else 0, (json.dumps(rows) + "\n").encode(),
                      b"Error: unhealthy cluster\n" if bad else b"")
    return Result.error(1, f"Error: unknown command {what} for \"etcdctl endpoint\"\n")


def _member_remove(node: SimNode, hex_id: str) -> Result:
    """etcd 3.4's answers: the removal needs quorum; an unknown ID is etcd's own error."""
    cluster = node.cluster
    if not has_quorum(node):
        return Result.error(1, DEADLINE + "Error: context deadline exceeded\n")
    for name in sorted(cluster.etcd_members):
        if f"{member_id(name):x}" == hex_id:
            cluster.etcd_members.discard(name)
            cluster.etcd_stopped.discard(name)
            return Result.ok(f"Member {hex_id} removed from cluster {CLUSTER_ID:x}\n")
    return Result.error(1, "Error: etcdserver: member not found\n")


def check_etcd(cluster: Cluster) -> str | None:
    """kubeadm's check-etcd before a control-plane join: every listed member must answer."""
    for name in sorted(cluster.etcd_members):
        if name in cluster.etcd_stopped:
            return texts.phase_error("check-etcd", texts.etcd_unhealthy(
                f"https://{cluster.etcd_addresses[name]}:2379"))
    return None


def _endpoint_status(node: SimNode, name: str = "",
                     endpoint: str = "https://127.0.0.1:2379") -> dict[str, object]:
    leader = min(node.cluster.etcd_members - node.cluster.etcd_stopped) if has_quorum(node) else ""
    return {
        "Endpoint": endpoint,
        "Status": {
            "header": {"cluster_id": CLUSTER_ID, "member_id": member_id(name or node.name),
                       "revision": 6, "raft_term": 2},
            "version": node.cluster.etcd_version(name or node.name), "dbSize": 20480,
            "leader": member_id(leader) if leader else 0,
            "raftIndex": 9, "raftTerm": 2, "raftAppliedIndex": 9, "dbSizeInUse": 20480,
        },
    }


def _snapshot_status(node: SimNode, path: str) -> Result:
    data = node.read(_host_path(path))
    if data is None:
        return Result.error(1, f"Error: stat {path}: no such file or directory\n")
    if data != SNAPSHOT:
        return Result.error(1, "panic: invalid database\n")
    return Result.ok(json.dumps(SNAPSHOT_STATUS) + "\n")


def _host_path(path: str) -> str:
    if path.startswith(DATA_DIR + "/"):
        return HOST_DATA_DIR + path[len(DATA_DIR):]
    return path


def cat_snapshot(node: SimNode, data: bytes) -> bytes:
    """What ``cat`` of a file in the etcd data directory sends: cut short when the fault says."""
    return data[: len(data) // 2] if node.cluster.snapshot_cut else data


# -- the etcd image and restores (etcd restore) ----------------------------------------------

IMAGE = etcd_image(ETCD_VERSION)  # what the fleet's control planes run: etcd 3.4
MANIFEST = "/var/node/etc/kubernetes/manifests/etcd.yaml"


def write_manifest(node: SimNode) -> None:
    """kubeadm's etcd static pod manifest (the flags the restore reads), written at init/join."""
    address = node.spec.address
    node.write(MANIFEST, json.dumps({  # JSON is YAML: the tool reads it with a YAML parser
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "etcd", "namespace": "kube-system"},
        "spec": {"containers": [{"name": "etcd", "image": IMAGE, "command": [
            "etcd", f"--name={node.name}", f"--data-dir={DATA_DIR}",
            f"--initial-advertise-peer-urls=https://{address}:2380",
            f"--initial-cluster={node.name}=https://{address}:2380",
        ]}]},
    }).encode(), 0o600)


def ctr_run(node: SimNode, args: list[str]) -> Result:
    """``ctr --namespace k8s.io run --rm --mount type=bind,src=S,dst=D,... IMAGE ID CMD...``:
    a one-off container of the etcd image (etcd 3.4: etcd and etcdctl, no etcdutl, no shell),
    its paths under D being the node's under S."""
    mounts: list[tuple[str, str]] = []
    while args and args[0].startswith("-"):
        if args[0] == "--mount" and len(args) > 1:
            opts = dict(o.split("=", 1) for o in args[1].split(",") if "=" in o)
            mounts.append((opts["dst"], opts["src"]))
            args = args[2:]
        else:
            args = args[1:]
    if len(args) < 3:
        return Result.error(1, "ctr: image ref and container id must be provided\n")
    image, _cid, argv = args[0], args[1], args[2:]
    if image != IMAGE:
        return Result.error(1, f"ctr: image \"{image}\": not found\n")
    if argv[0] != "etcdctl" and argv[0] != "etcd":
        return Result.error(1, f"ctr: failed to create shim task: OCI runtime create failed: "
                               f"exec: \"{argv[0]}\": executable file not found in $PATH: unknown\n")

    def host(path: str) -> str:
        for dst, src in mounts:
            if path == dst or path.startswith(dst + "/"):
                return src + path[len(dst):]
        return "/nonexistent" + path  # outside the mounts: the image has no such file

    words = [a for a in argv[1:] if not a.startswith("--")]
    flags = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
    if words[:2] == ["snapshot", "status"] and len(words) >= 3:
        return _snapshot_status(node, host(words[2]))
    if words[:2] == ["snapshot", "restore"] and len(words) >= 3:
        return _restore(node, host(words[2]), host(flags.get("data-dir", "default.etcd")), flags)
    return Result.error(1, f"Error: unknown command {words[:2]} for \"etcdctl\"\n")


def _restore(node: SimNode, snapshot: str, data_dir: str, flags: dict[str, str]) -> Result:
    """etcd 3.4's restore: refuses a data directory that exists, a file that is not a snapshot;
    writes the new member's data. What it was asked is kept on the cluster for the tests."""
    cluster = node.cluster
    if node.name in cluster.restore_fails:  # the fault knob: this node's restore fails once
        cluster.restore_fails.discard(node.name)
        return Result.error(1, "Error: write /restore/staging/member/snap/db: no space left on "
                               "device\n")
    if any(p.startswith(data_dir + "/") for p in node.files):
        return Result.error(1, f"Error: data-dir \"{data_dir}\" exists\n")
    data = node.read(snapshot)
    if data is None:
        return Result.error(1, f"Error: stat {snapshot}: no such file or directory\n")
    if data != SNAPSHOT:
        return Result.error(1, "Error: snapshot missing hash but --skip-hash-check=false\n")
    node.write(f"{data_dir}/member/snap/db", SNAPSHOT, 0o600)
    cluster.restores.append((node.name, dict(flags)))
    return Result(0, b"", b'{"level":"info","msg":"restored snapshot"}\n')
