"""Rebuilding a cluster onto blank control planes: ``etcd restore SNAPSHOT --pki FILE``.

Pure: facts and values in, decisions and argv out. docs/etcd-restore.md ("Every control plane
lost") says why it is built this way: the first control plane gets the cluster's CAs and
service-account keys from the ``.pki.tar`` and its etcd data directory from the snapshot
(restored as a cluster of one member, under its own name and peer URL), then kubeadm's init
runs there on those files; the other control planes join it as new members, as bootstrap joins
them.

On each control plane the rebuild keeps its state in ``REBUILD_DIR`` (the node's persistent
disk, 0700): the uploaded ``snapshot.db``, ``staging/`` where the restore writes, and the
``marker`` (``<sha256> init|join``) written before the node's kubeadm is triggered. The marker
is what tells a control plane rebuilt by an earlier run of the same snapshot (which a run cut
short leaves behind, and which is taken up again) from one that was never blank (refused).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from k8slk_ops.cluster import etcdctl
from k8slk_ops.cluster.etcdrestore import (
    CONTAINER_DIR,
    KUBEADM_DATA_DIR,
    EtcdManifest,
    offline_tool,
)
from k8slk_ops.node import paths
from k8slk_ops.node.facts import KubeadmState, NodeFacts

# Seen from the SSH shell, beside the plain restore's directory and never the same one: a
# plain restore's marker there means something else.
REBUILD_DIR = paths.REBUILD_DIR
SNAPSHOT = f"{REBUILD_DIR}/snapshot.db"
MARKER = paths.REBUILD_MARKER
STAGING = f"{REBUILD_DIR}/staging"
# kubeadm init's preflight check that refuses a non-empty /var/lib/etcd: the restored data
# directory is the point, so the init of a rebuild makes it a warning (and only that one).
DATA_DIR_CHECK = "DirAvailable--var-lib-etcd"
ETCD_PEER_PORT = 2380

Stage = Literal["init", "join"]


def marker_text(sha256: str, stage: Stage) -> str:
    return f"{sha256} {stage}\n"


def parse_marker(text: str | None) -> tuple[str, Stage] | None:
    words = (text or "").split()
    if len(words) == 2 and words[1] in ("init", "join"):
        return words[0], "init" if words[1] == "init" else "join"
    return None


def blank(facts: NodeFacts) -> bool:
    """kubeadm never ran on this node since it booted: its script waits for the trigger and
    nothing of an earlier init or join is on its disk."""
    return (facts.kubeadm_state is KubeadmState.WAITING and not facts.marker
            and not facts.admin_conf)


@dataclass(frozen=True)
class ControlPlaneSeen:
    """What the plan knows of one control plane of the inventory."""

    name: str
    facts: NodeFacts | None  # None: not reachable
    unreachable: str = ""


def refusals(control_planes: Iterable[ControlPlaneSeen], sha256: str) -> list[str]:
    """Why a rebuild from the snapshot ``sha256`` cannot start, one line per control plane
    (empty: it can). Each must be reachable and blank, or carry this snapshot's marker (an
    earlier run of the same rebuild got as far as triggering its kubeadm)."""
    problems = []
    for cp in control_planes:
        if cp.facts is None:
            problems.append(
                f"{cp.name} cannot be reached ({cp.unreachable or 'no facts'}): every control "
                "plane of the inventory takes part in a rebuild; bring it up (a blank machine "
                "at its address), or take it out of the inventory, then run again")
            continue
        marker = parse_marker(cp.facts.rebuild)
        if marker is not None and marker[0] == sha256:
            continue
        if marker is not None:
            problems.append(
                f"{cp.name} was rebuilt from another snapshot (SHA-256 {marker[0]}): finish "
                "that rebuild with its own snapshot, or reset and reboot every control plane "
                f"and remove {REBUILD_DIR} on each")
            continue
        if not blank(cp.facts):
            problems.append(
                f"{cp.name} is not blank (kubeadm is {cp.facts.kubeadm_state.value} there, "
                "not waiting for its first trigger): `etcd restore --pki` rebuilds onto "
                "control planes that all were lost and replaced by blank machines; a cluster "
                "whose control planes still hold their etcd is restored without --pki, and a "
                "node that must be made blank is reset (`k8slk-ops reset INVENTORY --node "
                f"{cp.name} --yes`) and rebooted")
    return problems


def member(name: str, address: str, image: str) -> EtcdManifest:
    """The one member of the restored data directory: the name and peer URL that kubeadm
    init's etcd manifest gives this node (its node name, its advertise address), so that etcd,
    which ignores --initial-cluster once its data directory holds a member, starts as it."""
    host = f"[{address}]" if ":" in address else address
    return EtcdManifest(name, f"https://{host}:{ETCD_PEER_PORT}", KUBEADM_DATA_DIR, image)


def restore_argv(one: EtcdManifest, sha256: str, skip_hash_check: bool) -> list[str]:
    """The restore as the one-off container runs it: a cluster of this one member, into the
    staging directory. The token is derived from the snapshot, as the plain restore's."""
    argv = [
        offline_tool(one.image), "snapshot", "restore", f"{CONTAINER_DIR}/snapshot.db",
        f"--name={one.name}", f"--initial-cluster={one.name}={one.peer_url}",
        f"--initial-cluster-token=k8slk-rebuild-{sha256[:16]}",
        f"--initial-advertise-peer-urls={one.peer_url}",
        f"--data-dir={CONTAINER_DIR}/staging",
    ]
    if skip_hash_check:
        argv.append("--skip-hash-check")
    return argv


_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def pick_etcd_image(listing: str) -> str | None:
    """The etcd image in ``ctr images ls -q``'s output (one reference a line): one whose
    repository is ``.../etcd``, the newest by its tag's version when there are several; None
    when the node has none."""
    found: list[tuple[tuple[int, int, int], str]] = []
    for line in listing.splitlines():
        ref = line.strip()
        if "@" in ref or ":" not in ref.rsplit("/", 1)[-1]:
            continue
        repo, tag = ref.rsplit(":", 1)
        if repo.rsplit("/", 1)[-1] != "etcd":
            continue
        m = _VERSION.match(tag)
        found.append(((int(m[1]), int(m[2]), int(m[3])) if m else (0, 0, 0), ref))
    return max(found)[1] if found else None


def init_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The inventory's kubeadm overrides with ``DATA_DIR_CHECK`` added to the InitConfiguration's
    ``nodeRegistration.ignorePreflightErrors`` (kept with those the inventory lists)."""
    out = {kind: dict(body) for kind, body in overrides.items()}
    init = out.setdefault("InitConfiguration", {})
    registration = dict(init.get("nodeRegistration") or {})
    ignored = [str(c) for c in registration.get("ignorePreflightErrors") or []]
    if DATA_DIR_CHECK.lower() not in {c.lower() for c in ignored}:
        ignored.append(DATA_DIR_CHECK)
    registration["ignorePreflightErrors"] = ignored
    init["nodeRegistration"] = registration
    return out


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did, for the report (no secret: names and hashes only)."""

    snapshot: str
    sha256: str
    pki: str
    revision: int
    keys: int
    first: str  # the control plane the cluster was made again on
    joined: tuple[str, ...]
    kept: tuple[str, ...]  # node: data directory that was there before

    def to_report(self) -> dict[str, object]:
        return {"snapshot": self.snapshot, "sha256": self.sha256, "pki": self.pki,
                "revision": self.revision, "keys": self.keys, "first": self.first,
                "joined": list(self.joined), "kept": list(self.kept)}


@dataclass
class RebuildRun:
    """What the rebuild's stages hand each other: the snapshot's status as the first control
    plane's etcd image read it, the data directory found there and kept, the result."""

    status: etcdctl.SnapshotStatus | None = None
    kept: dict[str, str] = field(default_factory=dict)
    joined: list[str] = field(default_factory=list)
    result: RebuildResult | None = None
