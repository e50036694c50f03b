"""``--metrics-file``: a run's report as Prometheus text for node_exporter's textfile collector.

A job run from cron is watched through its metrics, not its mail: whatever the run did
(succeeded, failed on a node, could not start, was interrupted) the file is rewritten at the end
with the run's start time, duration, exit code and result, the nodes per outcome, the expiry of
each control plane's earliest certificate and of its CA (when the run read them), and the last
etcd snapshot (when the run took one). The file is written atomically (a temporary file with a
random name, then renamed over ``F``, mode 0644): the collector never reads half a file, and a
link planted in the textfile directory is never written through (:mod:`k8slk_ops.base.localfile`).

Names follow Prometheus conventions: the ``k8slk_ops_`` prefix, base units (seconds, bytes),
``_timestamp_seconds`` for points in time, and labels ``command``, ``cluster`` and ``node``.
Times left are given both as the expiry's timestamp (which never goes stale, for alert rules:
``... - time()``) and as the seconds left when the run ended.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from k8slk_ops.base import localfile
from k8slk_ops.base.errors import (
    EXIT_CANNOT_START,
    EXIT_INTERRUPTED,
    EXIT_NODE_FAILED,
    EXIT_OK,
    EXIT_USAGE,
)
from k8slk_ops.output.events import Outcome, RunReport
from k8slk_ops.output.rows import cert_summary

PREFIX = "k8slk_ops_"
MAX_READ = 1 << 20  # an earlier metrics file larger than this is not ours
RESULTS = {
    EXIT_OK: "ok",
    EXIT_NODE_FAILED: "failed",
    EXIT_USAGE: "usage",
    EXIT_CANNOT_START: "cannot-start",
    EXIT_INTERRUPTED: "interrupted",
}


def result_name(exit_code: int) -> str:
    """The run's result as a label value: ``ok``, ``failed``, ``usage``, ``cannot-start``,
    ``interrupted`` (``error`` for any other code)."""
    return RESULTS.get(exit_code, "error")


@dataclass(frozen=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass
class Family:
    """One metric: its HELP and TYPE lines, then its samples."""

    name: str
    help: str
    kind: str = "gauge"
    samples: list[Sample] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append(Sample(tuple(labels.items()), value))

    def lines(self) -> list[str]:
        out = [f"# HELP {PREFIX}{self.name} {_escape_help(self.help)}",
               f"# TYPE {PREFIX}{self.name} {self.kind}"]
        for s in self.samples:
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in s.labels)
            out.append(f"{PREFIX}{self.name}{{{labels}}} {_number(s.value)}")
        return out


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(report: RunReport, now: datetime | None = None) -> str:
    """The Prometheus text of one run's report."""
    ended = report.ended or now or datetime.now(UTC)
    end = ended.timestamp()
    run = {"command": report.command, "cluster": report.cluster}
    families = [*_run_families(report, run, end), *_cert_families(report, run, end)]
    families.extend(_snapshot_families(report.data.get("snapshot"), run, end))
    families.extend(_restore_families(report.data.get("restoreCheck"), run))
    families.extend(_drift_families(report, run))
    lines = [line for family in families if family.samples for line in family.lines()]
    return "\n".join(lines) + "\n"


def _run_families(report: RunReport, run: dict[str, str], end: float) -> list[Family]:
    start = Family("run_start_timestamp_seconds", "When the run started, in Unix seconds.")
    start.add(report.started.timestamp(), **run)
    duration = Family("run_duration_seconds", "How long the run took.")
    duration.add(max(0.0, end - report.started.timestamp()), **run)
    code = Family("run_exit_code", "The run's exit code (0 ok, 1 a node failed, 2 bad usage, "
                  "3 could not start, 130 interrupted).")
    code.add(report.exit_code, **run)
    success = Family("run_success", "1 when the run ended with exit code 0, else 0.")
    success.add(1 if report.exit_code == EXIT_OK else 0, **run)
    result = Family("run_result", "The run's result: 1 for the result it ended with.")
    result.add(1, **run, result=result_name(report.exit_code))
    nodes = Family("run_nodes", "Nodes of the run per final outcome.")
    counts = {o: 0 for o in Outcome}
    for n in report.nodes:
        counts[n.outcome] += 1
    for outcome, count in counts.items():
        nodes.add(count, **run, outcome=outcome.value)
    return [start, duration, code, success, result, nodes]


def _drift_families(report: RunReport, run: dict[str, str]) -> list[Family]:
    """``drift``: the differences per kind, every kind compared (0 when it found none); none
    at all when nothing was compared (the run's exit code and result say why)."""
    if report.drift is None:
        return []
    items = Family("drift_items", "Differences between the cluster and what the inventory "
                   "renders, per kind (drift).")
    for kind in report.drift.kinds:
        items.add(report.drift.count(kind), **run, kind=kind)
    return [items]


def _cert_families(report: RunReport, run: dict[str, str], end: float) -> list[Family]:
    cert_at = Family("certificate_expiry_timestamp_seconds",
                     "When the control plane's earliest-expiring certificate expires.")
    cert_left = Family("certificate_remaining_seconds",
                       "Time left, when the run ended, before the control plane's "
                       "earliest-expiring certificate expires.")
    ca_at = Family("ca_expiry_timestamp_seconds",
                   "When the control plane's earliest-expiring certificate authority expires "
                   "(kubeadm does not renew it).")
    ca_left = Family("ca_remaining_seconds",
                     "Time left, when the run ended, before the control plane's earliest-expiring "
                     "certificate authority expires.")
    for n in report.nodes:
        labels = {**run, "node": n.name}
        summary = cert_summary(n.row)
        if summary is None:
            continue
        expires = summary.expires.timestamp() if summary.expires is not None else None
        if expires is not None:
            cert_at.add(expires, **labels)
            cert_left.add(expires - end, **labels)
        ca_expires = summary.ca_expires.timestamp() if summary.ca_expires is not None else None
        if ca_expires is not None:
            ca_at.add(ca_expires, **labels)
            ca_left.add(ca_expires - end, **labels)
    return [cert_at, cert_left, ca_at, ca_left]


def _snapshot_families(snapshot: Any, run: dict[str, str], end: float) -> Iterable[Family]:
    """The snapshot the run took (``report.data["snapshot"]``: sizeBytes, revision,
    timestampSeconds)."""
    if not isinstance(snapshot, dict):
        return []
    out = []
    size = snapshot.get("sizeBytes")
    if isinstance(size, int | float):
        fam = Family("etcd_snapshot_size_bytes", "Size of the last etcd snapshot taken.")
        fam.add(size, **run)
        out.append(fam)
    revision = snapshot.get("revision")
    if isinstance(revision, int | float):
        fam = Family("etcd_snapshot_revision", "etcd revision held by the last snapshot taken.")
        fam.add(revision, **run)
        out.append(fam)
    taken = snapshot.get("timestampSeconds")
    if isinstance(taken, int | float):
        at = Family("etcd_snapshot_timestamp_seconds",
                    "When the last etcd snapshot was taken, in Unix seconds.")
        at.add(taken, **run)
        age = Family("etcd_snapshot_age_seconds",
                     "Age of the last etcd snapshot when the run ended.")
        age.add(max(0.0, end - taken), **run)
        out += [at, age]
    return out


def _restore_families(check: Any, run: dict[str, str]) -> Iterable[Family]:
    """``etcd snapshot --verify-restore`` (``report.data["restoreCheck"]``): whether the
    snapshot taken restored and was read back, and how many keys it held (absent when the
    check did not run: no snapshot was taken, or it was not asked for)."""
    if not isinstance(check, dict) or not isinstance(check.get("verified"), bool):
        return []
    verified = Family("etcd_snapshot_restore_verified",
                      "1 when the snapshot the run took was restored into a throwaway etcd "
                      "and read back, 0 when that check failed.")
    verified.add(1 if check["verified"] else 0, **run)
    if not check["verified"]:
        return [verified]
    keys = Family("etcd_snapshot_restore_keys",
                  "Keys the throwaway etcd restored from the snapshot held.")
    keys.add(check.get("keys", 0), **run)
    return [verified, keys]


def check_target(path: Path) -> str | None:
    """Why ``path`` cannot take the metrics (its directory is missing, it is a link), or None."""
    parent = path.expanduser().parent
    if not parent.is_dir():
        return (f"--metrics-file {path}: directory {parent} does not exist (create it, or "
                "point --metrics-file at node_exporter's textfile directory)")
    if path.expanduser().is_symlink():
        return (f"--metrics-file {path} is a symbolic link; refusing to write through it (a "
                "link in the textfile directory can make this run overwrite another file). "
                "Name the file itself, or remove the link")
    return None


_SNAPSHOT_KEYS = {
    f"{PREFIX}etcd_snapshot_size_bytes": "sizeBytes",
    f"{PREFIX}etcd_snapshot_revision": "revision",
    f"{PREFIX}etcd_snapshot_timestamp_seconds": "timestampSeconds",
}


def previous_snapshot(text: str) -> dict[str, float]:
    """The snapshot an earlier run wrote into this file (our own lines), else empty."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        key = _SNAPSHOT_KEYS.get(name)
        if key is None:
            continue
        try:
            found[key] = float(rest.rpartition("} ")[2])
        except ValueError:
            continue
    return found if len(found) == len(_SNAPSHOT_KEYS) else {}


def write(path: Path, report: RunReport, now: datetime | None = None) -> None:
    """Write the report's metrics to ``path`` atomically, 0644, through :mod:`localfile`.

    The textfile directory is often writable by node_exporter's user while this runs as root:
    the file is never written by a predictable name nor through a link (a link at ``path`` is
    refused, :class:`~k8slk_ops.base.localfile.UnsafeTarget`). A run that took no snapshot (a failed
    ``etcd snapshot``) keeps the last one the file held, its age now older: an alert on the
    snapshot's age fires instead of losing its series."""
    target = path.expanduser()
    if "snapshot" not in report.data:
        old = localfile.read_own(target, MAX_READ)
        last = previous_snapshot(old.decode(errors="replace")) if old is not None else {}
        if last:
            report.data["snapshot"] = last
    localfile.replace(target, render(report, now).encode(), 0o644, what="--metrics-file")
