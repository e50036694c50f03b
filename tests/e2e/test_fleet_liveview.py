"""The live view as a person sees it: a 300-node bootstrap of the simulated fleet on an 80x24
pseudo-terminal, read back through a terminal emulator.

No root: the fleet is one unprivileged process on loopback addresses. Two workers' kubeadm
fails, so the failed section shows too, and every screen's FAILED counts are read against it.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from k8slk_ops.output.liveview import ESTIMATE_MIN_FRACTION, ESTIMATE_MIN_OK
from tests.e2e.helpers import ROOT, fleet_up
from tests.e2e.terminal import Frame, run_on_terminal
from tests.fleet import layout, process

NODES = 300
FAILING = ("w-17", "w-203")
# A stage line: name, bar, done/total, failed, running, waiting (then time and estimate).
STAGE_LINE = re.compile(r"^(?P<name>[\w-]+)\s+(?P<bar>[━╸─]+)\s+(?P<done>\d+)/(?P<total>\d+)"
                        r"\s+(?P<failed>\d+)\s+(?P<running>\d+)\s+(?P<waiting>\d+)\b"
                        r"(?:\s+(?P<time>[\d:]+))?(?:\s+~(?P<left>[\d:]+))?\s*$")
FAILED_TITLE = re.compile(r"^FAILED \((?P<count>\d+)\)")


class Watch:
    """Every screen, from the program's first output to its end."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def __call__(self, frame: Frame) -> None:
        self.frames.append(frame)

    def stage_frames(self) -> list[Frame]:
        return [f for f in self.frames if f.lines[0].startswith("STAGE")]


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Watch, Frame]]:
    directory = tmp_path_factory.mktemp("fleet")
    fleet_up(directory, NODES, settle=0.2, kubeadm_seconds=1.0, ready_delay=0.3,
             fail_nodes=",".join(FAILING))
    watch = Watch()
    try:
        env = dict(os.environ, XDG_CACHE_HOME=str(directory / "cache"))
        code, last = run_on_terminal(
            [sys.executable, "-m", "k8slk_ops", "bootstrap", str(directory / layout.INVENTORY)],
            columns=80, rows=24, cwd=ROOT, env=env, on_frame=watch, timeout=120)
    finally:
        process.stop(directory)
    yield code, watch, last


def joining(frame: Frame) -> re.Match[str] | None:
    for line in frame.lines:
        m = STAGE_LINE.match(line)
        busy = int(m["running"]) + int(m["waiting"]) if m else 0
        if m and m["name"].startswith("join") and int(m["done"]) > 0 and busy > 0:
            return m
    return None


def test_the_run_ends_with_the_two_failed_workers(watched: tuple[int, Watch, Frame]) -> None:
    code, _, last = watched
    assert code == 1, last.text
    assert "bootstrap: 2 failed, 298 ok; exit 1" in last.text, last.text


def test_nothing_scrolls_while_the_view_is_up(watched: tuple[int, Watch, Frame]) -> None:
    _, watch, last = watched
    # The screen's history is append-only: had the view (or a line printed above it) ever
    # scrolled, its line would come first. Only the final report, once the view is gone, may.
    assert last.first_scrolled in (None, f"{NODES} nodes: 298 ok, 2 failed"), last.first_scrolled
    stage_frames = watch.stage_frames()
    assert stage_frames, "the view never became a line per stage"
    # From the switch on, the screen's top line is the view's header until the report replaces it.
    first = watch.frames.index(stage_frames[0])
    tops = {(f.lines[0].split() or [""])[0] for f in watch.frames[first:] if f.scrolled == 0}
    assert tops <= {"STAGE", f"{NODES}", ""}, tops  # blank: the view just cleared for the report


def test_the_join_shows_counts_and_a_progress_bar(watched: tuple[int, Watch, Frame]) -> None:
    _, watch, _ = watched
    mid = [f for f in watch.stage_frames() if joining(f)]
    assert mid, "no screen showed the workers joining"
    for frame in mid:
        m = joining(frame)
        assert m is not None
        done, total = int(m["done"]), int(m["total"])
        counted = done + int(m["failed"]) + int(m["running"]) + int(m["waiting"])
        assert counted == total, frame.text
        assert len(m["bar"]) >= 6, frame.text
        if int(m["running"]):
            assert any(line.startswith("RUNNING LONGEST") for line in frame.lines), frame.text
    # Part done, part to do, on one screen at least.
    assert any("━" in m["bar"] and "─" in m["bar"] for m in map(joining, mid) if m)


def test_the_failed_workers_are_listed_with_their_reason(watched: tuple[int, Watch, Frame]) -> None:
    _, watch, _ = watched
    shown = [f for f in watch.stage_frames() if any(ln.startswith("FAILED (") for ln in f.lines)]
    assert shown, "no screen listed a failed node"
    last = shown[-1].lines
    at = next(i for i, line in enumerate(last) if line.startswith("FAILED ("))
    rows = []
    for line in last[at + 1 :]:
        if not line.startswith("  ") or not line.strip():
            break  # the section ends at the next heading or at the screen's blank padding
        rows.append(line)
    listed = {line.split()[0]: line for line in rows}
    assert set(listed) <= set(FAILING) and listed
    assert all("RAM" in line for line in listed.values())  # kubeadm's own reason


def stage_lines(frame: Frame) -> list[re.Match[str]]:
    return [m for m in map(STAGE_LINE.match, frame.lines) if m]


def failed_listed(frame: Frame) -> int:
    """The count in the FAILED list's title; 0 when the screen has no such list."""
    titles = [m for m in map(FAILED_TITLE.match, frame.lines) if m]
    return int(titles[0]["count"]) if titles else 0


def test_every_screen_s_failed_counts_agree_with_its_failed_list(
        watched: tuple[int, Watch, Frame]) -> None:
    _, watch, _ = watched
    frames = watch.stage_frames()
    for frame in frames:
        stages = stage_lines(frame)
        assert stages and stages[0]["name"] == "connect", frame.text  # every stage on screen
        assert sum(int(m["failed"]) for m in stages) == failed_listed(frame), frame.text
    # The join stage counts both failed workers, on some screen and on the last one.
    joins = [m for f in frames for m in stage_lines(f) if m["name"] == "join-workers"]
    assert any(int(m["failed"]) == len(FAILING) for m in joins), [m.group(0) for m in joins]
    # The view refreshes four times a second and goes when the run ends, so its last screen may
    # come from just before the last worker finished: its counts add up, its FAILED list agrees.
    # The whole stage, 297 done and 2 failed of 299, is checked where it is final: the report.
    last = {m["name"]: m for m in stage_lines(frames[-1])}
    join = last["join-workers"]
    counted = sum(int(join[k]) for k in ("done", "failed", "running", "waiting"))
    assert counted == int(join["total"]) == 299, frames[-1].text
    assert failed_listed(frames[-1]) == int(join["failed"]) <= len(FAILING), frames[-1].text


def test_no_estimate_before_enough_of_the_stage_finished(
        watched: tuple[int, Watch, Frame]) -> None:
    _, watch, _ = watched
    shown = 0
    for frame in watch.stage_frames():
        for m in stage_lines(frame):
            if m["left"] is None:
                continue
            shown += 1
            finished = int(m["done"]) + int(m["failed"])
            assert int(m["done"]) >= ESTIMATE_MIN_OK, frame.text
            assert finished >= math.ceil(ESTIMATE_MIN_FRACTION * int(m["total"])), frame.text
            assert int(m["running"]) + int(m["waiting"]) > 0, frame.text  # only while work is left
    assert shown, "no screen showed an estimate"


def screen_for_docs(frames: list[Frame]) -> str:
    """The screen the README shows: workers about half joined, a failure listed."""
    good = [f for f in frames if joining(f) and any(ln.startswith("FAILED (") for ln in f.lines)]

    def off_half(frame: Frame) -> float:
        m = joining(frame)
        return abs(int(m["done"]) / int(m["total"]) - 0.5) if m else 1.0

    return min(good, key=off_half).text if good else frames[-1].text


def test_the_screen_can_be_written_out_for_the_docs(watched: tuple[int, Watch, Frame]) -> None:
    _, watch, _ = watched
    text = screen_for_docs(watch.stage_frames())
    out = os.environ.get("K8SLK_OPS_SCREEN_OUT")
    if out:
        Path(out).write_text(text + "\n")
    assert len(text.splitlines()) <= 24
