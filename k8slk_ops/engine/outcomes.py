"""Building a run's report from what the run found and did.

The lifecycle (``operation.py``) hands over the cluster's facts and reachability, the executor's
per-node results and the run's state; this module turns them into the ``RunReport`` that
``report.py`` renders. It decides the exit code and the run-level messages (an undeleted token,
a failed cleanup); it prints nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from k8slk_ops import kubeadm
from k8slk_ops.base.errors import EXIT_INTERRUPTED, EXIT_NODE_FAILED, EXIT_OK
from k8slk_ops.base.nextstep import NextStep
from k8slk_ops.cluster.membership import etcd_did_not_answer
from k8slk_ops.engine import podnetwork
from k8slk_ops.engine.context import RunState
from k8slk_ops.engine.plan import Plan
from k8slk_ops.engine.probe import Cluster
from k8slk_ops.output.events import Outcome, RunReport
from k8slk_ops.output.rows import EtcdRow, Layout, NodeRow, RestoreCheckRow, StatusRow

NOTHING_TO_DO = "nothing to do: the cluster already matches"
_BAD = frozenset({Outcome.FAILED, Outcome.UNREACHABLE, Outcome.SKIPPED, Outcome.CANCELLED})


def note_versions(report: RunReport, cluster: Cluster) -> None:
    """Each reachable node's kubeadm version, as its facts say."""
    for node in report.nodes:
        facts = cluster.facts.get(node.name)
        if facts is not None:
            node.version = facts.kubeadm_version


def _row(report: RunReport, cluster: Cluster, state: RunState, name: str) -> NodeRow | None:
    """The row the run's steps made for the node (a playbook of one's own may run any of
    them), and for ``status`` a row for a node it could not reach. Which columns show it is
    the command's layout, never the row's kind."""
    if name in state.status:
        return state.status[name]
    if name in state.certs_rows:
        return state.certs_rows[name]
    if name in state.etcd:
        return EtcdRow(state.etcd[name])
    if state.restore_check is not None and state.restore_check.node == name:
        return RestoreCheckRow(state.restore_check)
    if report.layout is Layout.STATUS and name in cluster.unreachable:
        return StatusRow(reachable=False,
                         host_key=cluster.host_key_state.get(name, "not checked"),
                         error=cluster.unreachable[name])
    return None


def note_unreachable(report: RunReport, cluster: Cluster, again: str) -> None:
    """What to do about each node the run could not reach and so could not do its part on (a
    node ``remove-node --force`` removed while unreachable ended ok: nothing to do)."""
    for node in report.nodes:
        left = node.outcome in (Outcome.UNREACHABLE, Outcome.FAILED)
        if left and node.name in cluster.unreachable and node.next_step is None:
            node.next_step = cluster.next_step(node.name, again)


def note_lock_lost(report: RunReport, next_step: NextStep) -> None:
    """The nodes a run left undone when the cluster lock stopped being its own: why, and what
    to do (``lock.lock_next_step``)."""
    for node in report.nodes:
        if node.outcome is Outcome.SKIPPED and node.next_step is None:
            node.message = "not started: the cluster lock was lost to another run"
            node.next_step = next_step


def finish_run(report: RunReport, cluster: Cluster, state: RunState, interrupted: bool,
               again: str = "") -> None:
    """Fill in the report of an executed plan (the executor has set each node's outcome);
    ``again`` is the command that runs it again, which an unreachable node's row ends with."""
    report.interrupted = interrupted
    report.changed = any(n.outcome == Outcome.OK for n in report.nodes)
    for node in report.nodes:
        node.version = state.versions.get(node.name) or node.version
        node.row = _row(report, cluster, state, node.name)
    note_unreachable(report, cluster, again)
    if state.kubeconfig is not None:
        report.data["kubeconfig"] = str(state.kubeconfig)
    has_addons = bool(cluster.inventory.addon_manifests)
    report.messages += podnetwork.report_messages(has_addons, state.members.values())
    if state.api_error:
        report.messages.append(api_silence(state.api_error))
    expired = kubeadm.expired_advice(state.certs, state.kubelet_certs,
                                     str(cluster.inventory.source), datetime.now(UTC),
                                     api_silent=bool(state.api_error))
    report.messages += expired
    note_etcd(report, state)
    note_drift(report, state)
    for err in state.cleanup_errors:
        report.messages.append(f"cleanup failed: {err}")
    for name, flag in sorted(state.kubeadm_cut.items()):
        report.messages.append(
            f"{name}: kubeadm {flag} was triggered and goes on on the node after the stop; the "
            "run's credentials are revoked, so it may fail: check with `k8slk-ops status`; if "
            "its kubeadm failed, reset the node (`kubeadm reset -f`) and reboot it, then run "
            "the command again"
        )
    if state.tokens:
        report.messages.append(
            "WARNING: could not delete bootstrap token(s) "
            + ", ".join(state.tokens)
            + "; delete them with `kubeadm token delete`"
        )
    if report.interrupted:
        report.exit_code = EXIT_INTERRUPTED
    elif state.api_error or expired or any(n.outcome in _BAD for n in report.nodes) or (
            state.drift is not None and state.drift.items):
        report.exit_code = EXIT_NODE_FAILED
    else:
        report.exit_code = EXIT_OK


def note_drift(report: RunReport, state: RunState) -> None:
    """``drift``: the differences found (the report's table and JSON), and one line that says
    how many, or that there are none."""
    found = state.drift
    if found is None:
        return
    report.drift = found
    if not found.items:
        report.messages.append("no drift: the cluster matches what the inventory renders")
        return
    counts = ", ".join(f"{found.count(k)} {k}" for k in found.kinds if found.count(k))
    report.messages.append(f"drift: {len(found.items)} difference(s) ({counts})")


def note_etcd(report: RunReport, state: RunState) -> None:
    """The snapshot written (``report.data["snapshot"]``) and each etcd member's line."""
    for name in sorted(state.etcd):
        report.messages.append(state.etcd[name].line())
    for stale in state.etcd_stale.values():
        report.messages.append(stale.line())
    for removal in state.etcd_removed:
        report.messages.append(removal.line())
    if state.etcd_removed:
        report.data["etcdMembersRemoved"] = [r.to_report() for r in state.etcd_removed]
    rebuilt = state.etcd_rebuild.result
    if rebuilt is not None:
        report.data["etcdRebuild"] = rebuilt.to_report()
        report.messages.append(
            f"cluster rebuilt on {rebuilt.first} from {rebuilt.snapshot} (revision "
            f"{rebuilt.revision}, {rebuilt.keys} keys) and the keys of {rebuilt.pki}; joined "
            f"again: {', '.join(rebuilt.joined) or 'none'}"
        )
        for kept in rebuilt.kept:
            report.messages.append(f"etcd data found before the rebuild kept on {kept}")
    restored = state.etcd_restore.result
    if restored is not None:
        report.data["etcdRestore"] = restored.to_report()
        report.messages.append(
            f"etcd restored from {restored.snapshot} (revision {restored.revision}, "
            f"{restored.keys} keys) on {', '.join(restored.members)}"
        )
        for kept in restored.kept:
            report.messages.append(f"old etcd data kept on {kept} (remove it once satisfied)")
    snap = state.snapshot
    if snap is not None:
        report.data["snapshot"] = snap.to_report()
        report.messages.append(
            f"snapshot written: {snap.path} ({snap.size} bytes, revision {snap.status.revision}, "
            f"{snap.status.total_keys} keys, from {snap.node}, verified by {snap.verified_by})"
        )
        if snap.pki is not None:  # names and a hash only: the archive holds private keys
            report.messages.append(
                f"PKI archive written: {snap.pki.path} (sha256 {snap.pki.sha256}; "
                f"{', '.join(snap.pki.members)})"
            )
        for old in snap.pruned:
            report.messages.append(f"deleted snapshot {old} (--keep)")
        for odd in snap.dated_later:
            report.messages.append(
                f"kept {odd}: its name is dated after the snapshot just taken (check this "
                "machine's clock, or move the file if this tool did not write it)"
            )
    check = state.restore_check
    if check is not None:  # the row's message too: the table shows it beside the node
        report.data["restoreCheck"] = check.to_report()
        report.messages.append(check.line())
        if check.verified:
            for node in report.nodes:
                if node.name == check.node and not node.message:
                    node.message = check.line()


def finish_dry_run(report: RunReport, cluster: Cluster, plan: Plan, again: str = "") -> None:
    """The report of a plan shown and not run: which nodes would change."""
    touched = plan.nodes_touched()
    changing = {
        p.node
        for s in plan.stages
        for p in s.nodes
        if any(step.call.step.changes for step in p.steps)
    }
    for node in report.nodes:
        if node.name in cluster.unreachable:
            node.outcome = Outcome.UNREACHABLE
            node.message = cluster.unreachable[node.name]
        elif node.name in changing:
            node.outcome = Outcome.PLANNED
        elif node.name in touched:
            node.outcome = Outcome.UNCHANGED
    note_unreachable(report, cluster, again)
    report.data["planText"] = plan.to_text()
    if plan.warnings:
        report.data["planWarnings"] = list(plan.warnings)
    report.exit_code = EXIT_OK


def api_silence(api_error: str) -> str:
    """The run's message when no control plane's API answered: why, and, when the API servers
    said their etcd did not answer, that it is etcd (quorum lost or members down) to look at."""
    why = ""
    if etcd_did_not_answer(api_error):
        why = " (its etcd does not answer: quorum lost or members down; see `etcd status`)"
    return f"the Kubernetes API does not answer{why}: {api_error}"
