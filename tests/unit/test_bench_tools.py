"""The benchmark's own helpers: the open-file check before a fleet comes up, and the phases
read from the stopwatch's marks."""

from __future__ import annotations

import resource

import pytest

from tests import bench, benchlab
from tests.benchphases import spans


def test_a_hard_open_file_limit_too_low_for_the_fleet_is_said_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = {"now": (1024, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda which, value: limits.update(now=value))
    why = bench.raise_nofile(5000)
    assert why is not None and "5000 nodes" in why and "4096" in why
    assert limits["now"] == (4096, 4096)  # the soft limit was lifted all the same
    assert bench.raise_nofile(1000) is None


def test_phases_are_spans_between_marks_with_the_report_after_the_last() -> None:
    marks = [
        ["imported", 0.5, 0.3],
        ["inventory start", 0.5, 0.3], ["inventory end", 0.7, 0.45],
        ["facts of 3 start", 0.8, 0.5], ["facts of 3 end", 1.8, 0.9],
        ["stage join start", 1.9, 0.9], ["stage join end", 4.0, 1.0],
        ["exit", 4.5, 1.2],
    ]
    assert spans(marks) == [
        ("start and imports", 0.5, 0.3),
        ("inventory", 0.2, 0.15),
        ("facts of 3", 1.0, 0.4),
        ("stage join", 2.1, 0.1),
        ("report and exit", 0.5, 0.2),
    ]


LOG = """\
2026-12-07T05:57:01Z kubeadm.out Waiting for /run/kubeadm-run to exist before running kubeadm commands
2026-12-07T05:57:11Z kubeadm.out sleeping a bit more to make sure file is written
2026-12-07T05:57:12Z kubeadm.out Found kubeadm flag {flag}
2026-12-07T05:57:13Z kubeadm.out [preflight] Running pre-flight checks
2026-12-07T05:57:{end}Z kubeadm.out kubeadm has completed... removing configuration
"""


def test_the_lab_timeline_lines_up_the_tools_stages_with_the_nodes_logs() -> None:
    primary = benchlab.node_times("cp-1", LOG.format(flag="init", end="19"))
    assert primary.seconds == 8.0  # settle + kubeadm init, from its own log
    assert primary.triggered is not None
    # Two workers triggered at :27 (logs shifted by 16 s), the slower done 6 s later.
    joined = [
        benchlab.NodeTimes("w-1", primary.triggered + 16, primary.triggered + 21),
        benchlab.NodeTimes("w-2", primary.triggered + 16, primary.triggered + 22),
    ]
    started = primary.triggered - 1.5  # the tool started 1.5 s before the init trigger was seen
    marks = [["epoch", started, 0.0], ["stage init start", 1.4, 0.5], ["stage init end", 10.3, 0.6],
             ["stage ready start", 24.0, 1.0], ["stage ready end", 25.0, 1.1], ["exit", 25.5, 1.2]]
    last_join = primary.triggered + 22
    ready = [last_join - 2.0, last_join + 1.0]  # the last Node Ready 1 s after the last join
    one = benchlab.timeline(0, (1.0, 1.0, 1.0), started, started + 25.5, marks, primary, joined,
                            ready)
    assert one.to_init_trigger == 1.5
    assert (one.init_tool, one.init_nodes) == (8.9, 8.0)
    assert one.init_end_to_first_join == 8.0  # kubeadm done at :19, joins seen at :27
    assert (one.joins_tool, one.joins_nodes) == (6.0, 6.0)
    assert one.after_last_join == 2.0 and one.ready_tool == 1.0
    assert (one.tool_total, one.critical_path, one.overhead) == (25.5, 14.0, 11.5)
    assert (one.turning_ready, one.after_last_ready, one.overhead_past_ready) == (1.0, 1.0, 10.5)
    other = benchlab.timeline(0, (2.0, 1.0, 1.0), started, started + 27.5, marks, primary, joined)
    table = benchlab.show("median of 2 runs", [one, other])
    assert "  total                                       26.50    14.00" in table
    overhead = next(line for line in table.splitlines() if "overhead" in line)
    assert overhead.split()[-1] == "12.50"  # the median of 11.5 and 13.5
    assert "load average before each run: 1.00 1.00 1.00; 2.00 1.00 1.00" in table


def test_a_node_without_a_completed_line_has_no_own_time() -> None:
    failed = benchlab.node_times("w-1", LOG.format(flag="join", end="19").splitlines()[0])
    assert (failed.triggered, failed.completed, failed.seconds) == (None, None, None)
