"""Which etcd a Kubernetes minor's kubeadm runs, and whether a roll may start from the etcd the
cluster runs now.

kubeadm keeps one table, ``SupportedEtcdVersion`` in ``cmd/kubeadm/app/constants``: the etcd
image tag it deploys per Kubernetes minor (a minor outside the table gets the nearest entry).
Patch releases of kubeadm move the patch of that etcd (backports); the major.minor per
Kubernetes minor has never moved, and the rule below reads only that.

What kubeadm enforces for a stacked etcd (the only kind this tool makes): nothing refuses an
older etcd. ``kubeadm upgrade apply`` (and ``upgrade node`` on the other control planes)
rewrites the local etcd manifest to the table's etcd when it is newer than the running one, and
keeps a newer one ("Won't downgrade etcd"; "is not newer than the currently installed ...
Skipping etcd upgrade"). etcd itself upgrades one minor at a time: a member of the table's minor
does not start on the data of a cluster two minors behind, kubeadm rolls the manifest back and
the control plane's upgrade fails half-way. So the real floor is one minor below the table's
etcd: ``refusal`` refuses a roll whose members are older than that, and a roll whose members
disagree on a minor with no roll explaining it (a half-finished etcd upgrade). External etcd
(``MinExternalEtcdVersion``, a preflight error of ``kubeadm init``) is not this tool's case.
See docs/kubernetes-versions.md for the sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from k8slk_ops.kubeadm.errors import VersionError
from k8slk_ops.kubeadm.versions import KubeVersion

# kubeadm's SupportedEtcdVersion as each minor's first release shipped it (registry.k8s.io tags).
KUBEADM_ETCD: dict[int, str] = {
    13: "3.2.24", 14: "3.3.10", 15: "3.3.10", 16: "3.3.15-0", 17: "3.4.3-0", 18: "3.4.3-0",
    19: "3.4.13-0", 20: "3.4.13-0", 21: "3.4.13-0", 22: "3.5.0-0", 23: "3.5.1-0",
    24: "3.5.3-0", 25: "3.5.4-0", 26: "3.5.6-0", 27: "3.5.7-0", 28: "3.5.9-0",
    29: "3.5.10-0", 30: "3.5.12-0", 31: "3.5.15-0", 32: "3.5.16-0", 33: "3.5.21-0",
    34: "3.6.4-0",
}

_ETCD_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:-\d+)?")


@dataclass(frozen=True, order=True)
class EtcdVersion:
    """An etcd server version (``3.4.23`` as ``endpoint status`` says) or image tag
    (``3.5.15-0``: the image's own revision after the dash is not etcd's)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> EtcdVersion:
        m = _ETCD_RE.fullmatch(text.strip())
        if m is None:
            raise VersionError(f"not an etcd version: {text!r} (expected like 3.5.15)")
        return cls(int(m[1]), int(m[2]), int(m[3]))

    @property
    def line(self) -> str:
        """``3.5``: what etcd's cluster version and its one-minor upgrade rule speak of."""
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def kubeadm_etcd(target: KubeVersion) -> EtcdVersion:
    """The etcd kubeadm of ``target``'s minor deploys (the nearest entry outside the table, as
    kubeadm's EtcdSupportedVersion does)."""
    minor = min(max(target.minor, min(KUBEADM_ETCD)), max(KUBEADM_ETCD))
    return EtcdVersion.parse(KUBEADM_ETCD[minor])


def oldest_upgradable(target: KubeVersion) -> EtcdVersion:
    """The oldest etcd kubeadm of ``target`` can take to its own: one minor below its table's."""
    wanted = kubeadm_etcd(target)
    return EtcdVersion(wanted.major, max(wanted.minor - 1, 0), 0)


@dataclass(frozen=True)
class MemberEtcd:
    """One member's running etcd, as the gate read it."""

    member: str  # the member's name (kubeadm's: its node's)
    version: EtcdVersion
    # Its control plane already runs the target (kubeadm upgraded its etcd with it).
    at_target: bool = False


def refusal(target: KubeVersion, members: Sequence[MemberEtcd]) -> str:
    """Why kubeadm of ``target`` cannot take this etcd through the roll, or ''. Pure.

    Refused: a member older than ``oldest_upgradable`` (kubeadm would write an etcd that does
    not start on its data), and members on different minors when the roll does not explain it:
    a roll in progress has its upgraded control planes' members on one minor and the others on
    one (older) minor; anything else is an etcd upgrade left half-done outside kubeadm."""
    if not members:
        return ""
    wanted, floor = kubeadm_etcd(target), oldest_upgradable(target)
    old = [m for m in members if m.version < floor]
    if old:
        said = ", ".join(f"{m.member} runs etcd {m.version}" for m in old)
        return (f"{said}: kubeadm {target.major}.{target.minor} upgrades stacked etcd to "
                f"{wanted} and etcd moves one minor at a time, so it needs {floor.line} or newer. "
                f"Upgrade etcd to {floor.line} first (the Kubernetes minor whose kubeadm "
                f"deploys it), then run again")
    if len({m.version.line for m in members}) == 1:
        return ""
    done = {(m.version.major, m.version.minor) for m in members if m.at_target}
    behind = {(m.version.major, m.version.minor) for m in members if not m.at_target}
    if len(done) <= 1 and len(behind) <= 1 and (not done or not behind or max(done) > max(behind)):
        return ""  # this roll's own work: kubeadm upgraded etcd with the nodes at the target
    said = ", ".join(f"{m.member} {m.version}" for m in sorted(members, key=lambda m: m.member))
    return (f"etcd's members disagree on the minor ({said}): an etcd upgrade was left "
            "half-done. Bring every member to one minor (`k8slk-ops etcd status` shows each "
            "member's version), then run again")


def summary(target: KubeVersion, members: Sequence[MemberEtcd]) -> str:
    """One line for the run: what was read and what kubeadm of ``target`` will make of it."""
    by_version: dict[EtcdVersion, list[str]] = {}
    for m in members:
        by_version.setdefault(m.version, []).append(m.member)
    read = "; ".join(f"{v} on {', '.join(sorted(names))}"
                     for v, names in sorted(by_version.items()))
    wanted = kubeadm_etcd(target)
    return f"etcd {read}; kubeadm {target.major}.{target.minor} deploys {wanted}"
