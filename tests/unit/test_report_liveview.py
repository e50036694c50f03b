"""The live view at scale: per-stage counts from events, a frame that fits the terminal, the
final report that leads with totals, and the plain lines left as they were."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console, Group, RenderableType

from k8slk_ops.output.events import Event, EventKind, NodeReport, Outcome, RunReport
from k8slk_ops.output.liveview import ProgressModel, State, node_rows, stage_view
from k8slk_ops.output.redact import Redactor
from k8slk_ops.output.report import LiveReporter, LogFileReporter, PlainReporter, final_report
from k8slk_ops.output.rows import Layout, StatusRow

TOKEN = "abcdef.0123456789abcdef"


def ev(node: str | None, phase: str, kind: EventKind, message: str = "", at: float = 0.0,
       nodes: tuple[str, ...] = ()) -> Event:
    return Event(node, phase, kind, message, monotonic=at, nodes=nodes)


def names(n: int) -> list[str]:
    return [f"w-{i}" for i in range(1, n + 1)]


def screen(renderable: RenderableType, width: int = 80, height: int = 24) -> list[str]:
    """What a terminal of that size shows of a renderable, as lines of text."""
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None,
                      legacy_windows=False)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get().rstrip("\n").split("\n")


def join_stage(model: ProgressModel, nodes: list[str]) -> None:
    model.apply(ev(None, "join-workers", EventKind.STAGE, at=10.0, nodes=tuple(nodes)))


def test_an_announced_stage_counts_its_nodes_against_its_total() -> None:
    model = ProgressModel()
    nodes = names(10)
    join_stage(model, nodes)
    for i, name in enumerate(nodes[:6]):
        model.apply(ev(name, "join", EventKind.START, at=10.0 + i))
    model.apply(ev("w-1", "join", EventKind.OK, at=20.0))
    model.apply(ev("w-2", "join", EventKind.OK, at=20.0))
    model.apply(ev("w-3", "join", EventKind.FAIL, "kubeadm join failed", at=21.0))
    model.apply(ev("w-10", "join-workers", EventKind.SKIP, "already a member", at=10.0))
    stage = model.stages[-1]
    assert stage.total == 10
    assert stage.counts[State.OK] == 2
    assert stage.counts[State.FAILED] == 1
    assert stage.counts[State.RUNNING] == 3
    assert stage.counts[State.SKIPPED] == 1
    assert stage.waiting == 3
    assert [f.node for f in model.failures] == ["w-3"]
    assert set(stage.running) == {"w-4", "w-5", "w-6"}


def test_a_node_starting_its_next_step_runs_again_in_the_same_stage() -> None:
    model = ProgressModel()
    join_stage(model, ["w-1"])
    model.apply(ev("w-1", "join", EventKind.START, at=1.0))
    model.apply(ev("w-1", "join", EventKind.OK, at=2.0))
    model.apply(ev("w-1", "join", EventKind.START, at=2.0))
    stage = model.stages[-1]
    assert stage.counts[State.OK] == 0 and stage.counts[State.RUNNING] == 1
    assert stage.running["w-1"] == 2.0


def test_without_announced_stages_nodes_are_grouped_by_phase() -> None:
    model = ProgressModel()
    for name in names(3):
        model.apply(ev(name, "connect", EventKind.START, at=1.0))
        model.apply(ev(name, "connect", EventKind.OK, at=2.0))
    model.apply(ev("w-1", "preflight", EventKind.START, at=3.0))
    assert [(s.name, s.total) for s in model.stages] == [("connect", 3), ("preflight", 1)]
    assert model.stages[0].counts[State.OK] == 3
    assert model.stages[1].waiting == 0


def big_run(model: ProgressModel, nodes: int, failed: int) -> None:
    """Connected and preflighted, then joining: ``failed`` joins failed, 64 running."""
    everyone = names(nodes)
    for name in everyone:
        model.apply(ev(name, "connect", EventKind.START, at=0.0))
        model.apply(ev(name, "connect", EventKind.OK, at=1.0))
    join_stage(model, everyone)
    for i, name in enumerate(everyone[: 200 + failed + 64]):
        model.apply(ev(name, "join", EventKind.START, "triggered join", at=2.0 + i / 100))
    for name in everyone[:200]:
        model.apply(ev(name, "join", EventKind.OK, at=5.0))
    for name in everyone[200 : 200 + failed]:
        model.apply(ev(name, "join", EventKind.FAIL, f"kubeadm join --token {TOKEN} refused", at=5.0))


def test_a_thousand_nodes_fit_an_80x24_terminal() -> None:
    model = ProgressModel()
    big_run(model, 1000, failed=3)
    assert not model.fits_rows(24)
    lines = screen(stage_view(model, 10.0, 80, 24, Redactor().redact))
    assert len(lines) <= 24
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split()[:2] == ["STAGE", "PROGRESS"]
    join = next(line for line in lines if line.startswith("join-workers"))
    assert "200/1000" in join and "━" in join and "─" in join
    assert join.split()[3:6] == ["3", "64", "733"]  # failed, running, waiting
    failed_at = next(i for i, line in enumerate(lines) if line.startswith("FAILED (3)"))
    running_at = next(i for i, line in enumerate(lines) if line.startswith("RUNNING LONGEST"))
    assert failed_at < running_at
    assert [line.split()[0] for line in lines[failed_at + 1 : running_at]] == [
        "w-201", "w-202", "w-203"]
    assert lines[running_at + 1].split()[:2] == ["w-204", "join"]  # the longest running first
    assert len(lines) == 24  # the running nodes fill the rest
    assert TOKEN not in "\n".join(lines)


def test_many_failures_leave_room_for_the_running_nodes() -> None:
    model = ProgressModel()
    big_run(model, 1000, failed=100)
    lines = screen(stage_view(model, 10.0, 80, 24, str))
    assert len(lines) <= 24
    assert any(line.strip().startswith("… and ") and line.endswith("more") for line in lines)
    running_at = next(i for i, line in enumerate(lines) if line.startswith("RUNNING LONGEST"))
    assert len(lines) - running_at - 1 >= 2


def test_a_tiny_terminal_still_gets_no_more_lines_than_it_has() -> None:
    model = ProgressModel()
    big_run(model, 300, failed=2)
    for height in (3, 5, 8):
        assert len(screen(stage_view(model, 10.0, 40, height, str), 40, height)) <= height


def test_a_handful_of_nodes_keep_a_row_each() -> None:
    model = ProgressModel()
    for name in names(5):
        model.apply(ev(name, "connect", EventKind.START, at=0.0))
    model.apply(ev("w-1", "connect", EventKind.OK, "kubeadm v1.31.3", at=1.0))
    assert model.fits_rows(24)
    lines = screen(node_rows(model, 2.0, str))
    assert lines[0].split() == ["NODE", "PHASE", "STATE", "TIME"]
    assert [line.split()[0] for line in lines[1:]] == names(5)
    assert "✓ ok" in lines[1] and "… running" in lines[2]


def test_the_reporter_switches_to_stages_when_the_nodes_outgrow_the_terminal() -> None:
    console = Console(file=io.StringIO(), width=80, height=24, force_terminal=True)
    rep = LiveReporter(Redactor(), console)
    try:
        for name in names(10):
            rep.emit(ev(name, "connect", EventKind.START, at=0.0))
        assert "NODE" in screen(rep._render())[0]
        for name in names(40):
            rep.emit(ev(name, "connect", EventKind.START, at=0.0))
        assert screen(rep._render())[0].startswith("STAGE")
    finally:
        rep.close()


def test_node_warnings_wait_for_the_report_once_the_view_is_per_stage() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=80, height=24, force_terminal=True)
    rep = LiveReporter(Redactor(), console)
    rep.live.stop()  # frames are drawn by hand: the buffer gets only what is printed
    for name in names(40):
        rep.emit(ev(name, "connect", EventKind.START, at=0.0))
    rep.emit(ev("w-7", "preflight", EventKind.WARN, "swap is on"))
    assert "swap is on" not in buf.getvalue()
    rep.finish(report_of(40, failed=0))
    rep.close()
    assert "w-7: swap is on" in buf.getvalue()


def report_of(nodes: int, failed: int, command: str = "bootstrap") -> RunReport:
    r = RunReport(command=command, cluster="fleet", inventory="inv.yml")
    for i, name in enumerate(names(nodes)):
        bad = i < failed
        r.nodes.append(NodeReport(
            name, "worker", "127.1.0.1", Outcome.FAILED if bad else Outcome.OK, "join",
            "kubeadm join failed" if bad else "", "v1.31.3", 1.0,
            log_tail=[f"line of {name}"] if bad else []))
    r.exit_code = 1 if failed else 0
    return r


def report_text(report: RunReport, verbose: bool = False) -> list[str]:
    return screen(Group(*final_report(report, Redactor(), verbose)), width=120, height=10_000)


def test_the_report_of_many_nodes_leads_with_totals_then_lists_the_ones_not_ok() -> None:
    lines = report_text(report_of(300, failed=8))
    assert lines[0] == "300 nodes: 292 ok, 8 failed"
    assert lines[1].split()[:3] == ["NODE", "ROLE", "RESULT"]
    rows = [line.split()[0] for line in lines[2:] if line.startswith("w-")]
    assert rows == names(8)
    tails = [i for i, line in enumerate(lines) if line.startswith("last log lines of")]
    assert len(tails) == 5
    more = next(i for i, line in enumerate(lines) if "log tails of 3 more failed nodes" in line)
    assert more > tails[-1]
    assert lines[-1] == "bootstrap: 8 failed, 292 ok; exit 1"


def test_verbose_or_few_nodes_list_every_node() -> None:
    many = report_text(report_of(300, failed=1), verbose=True)
    assert sum(1 for line in many if line.startswith("w-")) == 300
    few = report_text(report_of(30, failed=0))
    assert few[0].split()[:3] == ["NODE", "ROLE", "RESULT"]
    assert sum(1 for line in few if line.startswith("w-")) == 30


def test_status_lists_every_node_whatever_the_size() -> None:
    report = report_of(100, failed=0, command="status")
    report.layout = Layout.STATUS
    for n in report.nodes:
        n.row = StatusRow(reachable=True, host_key="ok")
    lines = report_text(report)
    assert lines[0].split()[:3] == ["NODE", "ROLE", "REACHABLE"]
    assert sum(1 for line in lines if line.startswith("w-")) == 100


def test_stage_events_stay_out_of_the_plain_lines_and_go_to_the_log_file(tmp_path: Path) -> None:
    stream = io.StringIO()
    plain = PlainReporter(Redactor(), stream)
    log = LogFileReporter(tmp_path / "run.log", Redactor())
    for rep in (plain, log):
        rep.emit(ev(None, "join-workers", EventKind.STAGE, nodes=("w-1", "w-2")))
        rep.emit(ev("w-1", "join", EventKind.START))
    log.close()
    assert "stage" not in stream.getvalue()
    assert stream.getvalue().endswith(" w-1 join start\n")
    assert " - join-workers stage: 2 nodes\n" in (tmp_path / "run.log").read_text()


def test_nodes_with_nothing_to_do_count_as_done() -> None:
    model = ProgressModel()
    for name in names(40):
        model.apply(ev(name, "connect", EventKind.OK, at=1.0))
    join_stage(model, names(40))
    for name in names(40):
        model.apply(ev(name, "join-workers", EventKind.SKIP, "already a member", at=2.0))
    join = next(ln for ln in screen(stage_view(model, 3.0, 80, 24, str))
                if ln.startswith("join-workers"))
    assert "40/40" in join and "─" not in join
    assert join.split()[3:6] == ["0", "0", "0"]


def test_a_narrow_terminal_loses_headers_times_and_the_bar_before_any_count() -> None:
    model = ProgressModel()
    big_run(model, 1000, failed=3)
    for width, header in ((80, "STAGE PROGRESS DONE FAILED RUNNING WAITING TIME LEFT"),
                          (60, "STAGE PROGRESS DONE FAIL RUN WAIT TIME LEFT"),
                          (42, "STAGE DONE FAIL RUN WAIT")):
        lines = screen(stage_view(model, 10.0, width, 24, str), width, 24)
        assert " ".join(lines[0].split()) == header
        join = next(line for line in lines if line.startswith("join-workers"))
        assert " 200/1000 3 64 733" in " ".join(join.split())  # done, failed, running, waiting
        assert all(len(line) <= width for line in lines)


def test_run_messages_sit_under_the_stages_and_are_printed_once_with_the_report() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=80, height=24, force_terminal=True)
    rep = LiveReporter(Redactor(), console)
    rep.live.stop()  # frames are drawn by hand: the buffer gets only what is printed
    buf.seek(0)
    buf.truncate()
    big_run(rep.model, 300, failed=0)
    rep.emit(ev(None, "init", EventKind.WARN, "stage init failed on cp-1: stopping before later stages"))
    rep.emit(ev(None, "plan", EventKind.INFO, "nothing to do: the cluster already matches"))
    lines = screen(rep._render())
    assert len(lines) <= 24
    join_at = next(i for i, line in enumerate(lines) if line.startswith("join-workers"))
    assert lines[join_at + 1].startswith("stage init failed on cp-1")
    assert lines[join_at + 2] == "nothing to do: the cluster already matches"
    assert "stopping before later stages" not in buf.getvalue()  # not printed above the view
    report = report_of(300, failed=0)
    report.messages = ["nothing to do: the cluster already matches"]
    rep.finish(report)
    rep.close()
    out = buf.getvalue()
    assert out.count("stopping before later stages") == 1
    assert out.count("nothing to do: the cluster already matches") == 1


def test_progress_and_warnings_change_a_nodes_message_not_the_stages() -> None:
    model = ProgressModel()
    model.apply(ev("w-1", "preflight", EventKind.WARN, "swap is on", at=1.0))
    model.apply(ev("w-1", "join", EventKind.PROGRESS, "triggered join", at=1.0))
    assert model.stages == []
    assert model.nodes["w-1"].message == "triggered join"
    assert model.nodes["w-1"].state == State.WAITING


def test_the_bar_falls_back_to_ascii_where_the_terminal_has_no_box_characters() -> None:
    model = ProgressModel()
    big_run(model, 1000, failed=0)
    console = Console(file=io.TextIOWrapper(io.BytesIO(), encoding="ascii"), width=80, height=24,
                      color_system=None, legacy_windows=False)
    with console.capture() as cap:
        console.print(stage_view(model, 10.0, 80, 24, str))
    join = next(ln for ln in cap.get().splitlines() if ln.startswith("join-workers"))
    assert "#" in join and "-" in join and "━" not in join


def test_events_of_one_second_share_one_time_stamp() -> None:
    from datetime import UTC, datetime

    from k8slk_ops.output.report import _stamp

    a = _stamp(datetime(2026, 11, 29, 23, 59, 59, 10, tzinfo=UTC))
    b = _stamp(datetime(2026, 11, 29, 23, 59, 59, 999_999, tzinfo=UTC))
    assert a == "2026-11-29T23:59:59Z" and a is b
    assert _stamp(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)) == "1969-12-31T23:59:59Z"
