"""What a Kubernetes minor release does that the one before or after does not: the one table.

A double that claims to be v1.21 must do what a real v1.21 does, or a manifest written for
v1.21 passes in the lab and fails on the real cluster (or the other way round). Each fact that
changed between the minors the lab runs is a row here, with the first minor that has it
(``since``) and the first that no longer has it (``until``, None: still there). Every double
reads these rows through the functions below: kubeadm's mark-control-plane phase (init and
join) and its CoreDNS addon, the API server's discovery and REST paths, the in-process fleet's
Nodes and its simulated ``kubectl apply``. Nothing else in the lab spells these keys.

Sources (see also docs/kubernetes-versions.md):

- Control-plane label and taint: KEP-2067 "Rename the kubeadm 'master' label and taint"
  (kubernetes/enhancements, keps/sig-cluster-lifecycle/kubeadm/2067-rename-master-label-taint),
  kubernetes/kubeadm#2200, and the changelogs: 1.20 adds the ``control-plane`` label beside
  ``master`` (and tells users to tolerate a future ``control-plane`` taint); 1.24
  (kubernetes/kubernetes#107533) stops adding the ``master`` label and adds the
  ``control-plane`` taint beside the ``master`` one; 1.25 (kubernetes/kubernetes#110095) stops
  adding the ``master`` taint; 1.26 drops the ``master`` toleration from kubeadm's CoreDNS.
- kubeadm's printed ``[mark-control-plane]`` lines: real ``kubeadm init`` output of each era.
- Group versions served: the Deprecated API Migration Guide (kubernetes.io/docs/reference/
  using-api/deprecation-guide) and "Deprecated APIs Removed In 1.16" (kubernetes.io blog,
  2019-07-18).

This module is plain data and the standard library: it runs in the nodes under Debian's
python3 and is imported by the fleet as ``tests.lab.doubles.k8sdouble.kubeversions``.
"""

from __future__ import annotations

from dataclasses import dataclass

MASTER = "node-role.kubernetes.io/master"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
EXCLUDE_FROM_LB = "node.kubernetes.io/exclude-from-external-load-balancers"
CRITICAL_ADDONS_ONLY = "CriticalAddonsOnly"


@dataclass(frozen=True)
class Span:
    """Minors ``since`` (inclusive) up to ``until`` (exclusive; None: every later one)."""

    since: int
    until: int | None = None

    def covers(self, minor: int) -> bool:
        return self.since <= minor and (self.until is None or minor < self.until)


@dataclass(frozen=True)
class Mark:
    """A label or NoSchedule taint kubeadm puts on every control-plane Node it inits or joins."""

    key: str
    span: Span
    shown: str = ""  # how kubeadm's mark-control-plane line names it, when not just the key


CONTROL_PLANE_LABELS: tuple[Mark, ...] = (
    Mark(MASTER, Span(0, 20)),
    Mark(MASTER, Span(20, 24), shown=f"{MASTER}(deprecated)"),
    Mark(CONTROL_PLANE, Span(20)),
    Mark(EXCLUDE_FROM_LB, Span(20)),
)
CONTROL_PLANE_TAINTS: tuple[Mark, ...] = (
    Mark(MASTER, Span(0, 25)),
    Mark(CONTROL_PLANE, Span(24)),
)
# The NoSchedule taints kubeadm's CoreDNS Deployment tolerates (beside CriticalAddonsOnly).
COREDNS_TOLERATED: tuple[Mark, ...] = (
    Mark(MASTER, Span(0, 26)),
    Mark(CONTROL_PLANE, Span(20)),
)


@dataclass(frozen=True)
class Served:
    """A kind the API server serves in a group version, for the minors of ``span``."""

    group: str  # "" for the core group
    version: str
    kind: str
    span: Span

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RBAC = "rbac.authorization.k8s.io"
RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
CORE_KINDS = ("Namespace", "Node", "Pod", "ConfigMap", "Secret", "ServiceAccount", "Service")
# Each group's versions newest first: discovery lists them in this order and prefers the first
# one a minor serves. Only kinds the lab's API double stores are listed.
SERVED: tuple[Served, ...] = (
    *(Served("", "v1", kind, Span(0)) for kind in CORE_KINDS),
    *(Served("apps", "v1", kind, Span(9)) for kind in ("DaemonSet", "Deployment", "ReplicaSet")),
    *(Served("apps", "v1beta2", kind, Span(8, 16))
      for kind in ("DaemonSet", "Deployment", "ReplicaSet")),
    Served("apps", "v1beta1", "Deployment", Span(6, 16)),
    *(Served("extensions", "v1beta1", kind, Span(0, 16))
      for kind in ("DaemonSet", "Deployment", "ReplicaSet")),
    Served("extensions", "v1beta1", "PodSecurityPolicy", Span(0, 16)),
    Served("batch", "v1", "CronJob", Span(21)),
    Served("batch", "v1beta1", "CronJob", Span(8, 25)),
    Served("coordination.k8s.io", "v1", "Lease", Span(14)),
    Served("coordination.k8s.io", "v1beta1", "Lease", Span(12, 22)),
    Served("policy", "v1", "PodDisruptionBudget", Span(21)),
    Served("policy", "v1beta1", "PodDisruptionBudget", Span(5, 25)),
    Served("policy", "v1beta1", "PodSecurityPolicy", Span(10, 25)),
    *(Served(RBAC, "v1", kind, Span(8)) for kind in RBAC_KINDS),
    *(Served(RBAC, "v1beta1", kind, Span(6, 22)) for kind in RBAC_KINDS),
)
# The group version of the Eviction that ``pods/eviction`` takes (what ``kubectl drain`` reads
# from discovery to choose the body it posts).
EVICTION: tuple[Served, ...] = (
    Served("policy", "v1", "Eviction", Span(22)),
    Served("policy", "v1beta1", "Eviction", Span(5, 22)),
)


def minor(version: str) -> int:
    """1.21 of ``v1.21.14`` (a version this lab does not know the shape of is the newest)."""
    parts = version.strip().lstrip("v").split(".")
    try:
        return int(parts[1]) if parts[0] == "1" else 1000
    except (IndexError, ValueError):
        return 1000


def control_plane_labels(minor_: int) -> tuple[str, ...]:
    return tuple(m.key for m in CONTROL_PLANE_LABELS if m.span.covers(minor_))


def is_control_plane(labels: dict[str, str]) -> bool:
    """A Node kubeadm marked as a control plane, in any minor (``master`` alone before 1.20,
    ``control-plane`` alone from 1.24)."""
    return MASTER in labels or CONTROL_PLANE in labels


def control_plane_taints(minor_: int) -> tuple[str, ...]:
    """The keys of the NoSchedule taints kubeadm adds to a control-plane Node."""
    return tuple(m.key for m in CONTROL_PLANE_TAINTS if m.span.covers(minor_))


def coredns_tolerations(minor_: int) -> list[dict[str, str]]:
    """The tolerations of kubeadm's CoreDNS Deployment, in its manifest's order."""
    return [{"key": CRITICAL_ADDONS_ONLY, "operator": "Exists"}] + [
        {"key": m.key, "effect": "NoSchedule"} for m in COREDNS_TOLERATED
        if m.span.covers(minor_)]


def mark_control_plane_lines(minor_: int, node: str) -> tuple[str, str]:
    """The two lines kubeadm's mark-control-plane phase prints (init and join alike)."""
    labels = [m.shown or m.key for m in CONTROL_PLANE_LABELS if m.span.covers(minor_)]
    # Before 1.20 kubeadm added one label and printed it with its (empty) value.
    what = f"the labels: [{' '.join(labels)}]" if minor_ >= 20 else f"the label \"{MASTER}=''\""
    taints = " ".join(f"{key}:NoSchedule" for key in control_plane_taints(minor_))
    head = f"[mark-control-plane] Marking the node {node} as control-plane by adding"
    return f"{head} {what}", f"{head} the taints [{taints}]"


def served(minor_: int) -> tuple[Served, ...]:
    return tuple(s for s in SERVED if s.span.covers(minor_))


def serves(minor_: int, api_version: str, kind: str) -> bool:
    """Whether a v1.``minor_`` API server has ``kind`` in ``api_version`` (``apps/v1``)."""
    return any(s.group_version == api_version and s.kind == kind for s in served(minor_))


def eviction(minor_: int) -> Served:
    return next(s for s in EVICTION if s.span.covers(minor_))


def upgraded_marks(minor_: int, labels: dict[str, str],
                   taints: list[dict[str, str]]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A control-plane Node's labels and taints after ``kubeadm upgrade apply`` to ``minor_``
    (one minor up): what this minor no longer adds is removed, what it adds first is added,
    anything else on the Node stays. So 1.20 adds the control-plane label, 1.24 removes the
    master label and adds the control-plane taint, 1.25 removes the master taint."""
    def changes(marks: tuple[Mark, ...]) -> tuple[set[str], set[str]]:
        now = {m.key for m in marks if m.span.covers(minor_)}
        before = {m.key for m in marks if m.span.covers(minor_ - 1)}
        return before - now, now - before

    gone, added = changes(CONTROL_PLANE_LABELS)
    new_labels = {k: v for k, v in labels.items() if k not in gone}
    new_labels.update({key: "" for key in sorted(added) if key not in new_labels})
    gone, added = changes(CONTROL_PLANE_TAINTS)
    new_taints = [t for t in taints if t.get("key") not in gone]
    new_taints += [{"key": key, "effect": "NoSchedule"} for key in sorted(added)
                   if not any(t.get("key") == key for t in new_taints)]
    return new_labels, new_taints
