"""``when:`` on a stage: run it only on nodes whose facts match. Pure.

Conditions are a mapping of fact name to an expected value, or a list of accepted values; all
must hold. The facts are the ones gathered before planning, so a condition never costs a
round trip::

    when: {kubeadmState: [waiting, failed], role: worker, labels.zone: a}
"""

from __future__ import annotations

from typing import Any

from k8slk_ops.engine.context import PlanContext
from k8slk_ops.node.facts import KubeadmState

FACTS = {
    "name": "the node's name",
    "role": "control-plane or worker",
    "kubeadmState": "waiting, running, completed, configured, failed, missing or unknown",
    "kubeadmVersion": "what `kubeadm version -o short` printed, e.g. v1.31.3",
    "kubeletRunning": "true when the kubelet task runs",
    "marker": "true when /var/lib/kubelet/config.yaml exists",
    "member": "true when the node is in the cluster's node list",
    "ready": "true when the node is Ready",
    "unschedulable": "true when the node is cordoned",
}


_BOOLEAN = ("kubeletRunning", "marker", "member", "ready", "unschedulable")
# Facts with a closed set of values: a value outside it would silently never match.
_CHOICES: dict[str, tuple[str, ...]] = {
    "role": ("control-plane", "worker"),
    "kubeadmState": tuple(state.value for state in KubeadmState),
}


def check(conditions: dict[str, Any]) -> str | None:
    """Why the conditions are malformed, or None. A value of the wrong type or outside the
    fact's values is refused: it would never match, and the stage would quietly do nothing."""
    for key, value in conditions.items():
        if key not in FACTS and not key.startswith("labels."):
            known = ", ".join([*FACTS, "labels.<key>"])
            return f"unknown fact {key!r} in when; known: {known}"
        values = value if isinstance(value, list) else [value]
        if not values:
            return f"when: {key} needs at least one value"
        for item in values:
            problem = _value_problem(key, item)
            if problem:
                return f"when: {problem}, got {item!r}"
    return None


def _value_problem(key: str, value: object) -> str | None:
    if key in _BOOLEAN:
        return None if isinstance(value, bool) else f"{key} must be true or false"
    if not isinstance(value, str):
        return f"{key} must be a string (quote it)"
    choices = _CHOICES.get(key)
    if choices is not None and value not in choices:
        return f"{key} must be one of {', '.join(choices)}"
    return None


def fact_values(ctx: PlanContext, node: str) -> dict[str, Any]:
    spec = ctx.spec(node)
    facts = ctx.facts.get(node)
    member = ctx.cluster.members.get(node)
    values: dict[str, Any] = {
        "name": node,
        "role": spec.role,
        "member": member is not None,
        "ready": bool(member and member.ready),
        "unschedulable": bool(member and member.unschedulable),
    }
    if facts is not None:
        values.update(
            kubeadmState=facts.kubeadm_state.value,
            kubeadmVersion=facts.kubeadm_version,
            kubeletRunning=facts.kubelet_running,
            marker=facts.marker,
        )
    for key, value in spec.labels.items():
        values[f"labels.{key}"] = value
    return values


def matches(conditions: dict[str, Any], values: dict[str, Any]) -> bool:
    for key, expected in conditions.items():
        accepted = expected if isinstance(expected, list) else [expected]
        if key not in values or values[key] not in accepted:
            return False
    return True
