"""One way to cut a node's output for a report: the one-line reason and the block of lines."""

from __future__ import annotations

from k8slk_ops.kubeadm import (
    SUMMARY_CHARS,
    TAIL_LINES,
    classify_kubeadm_error,
    failure_summary,
    failure_tail,
)
from k8slk_ops.node.linuxkit import KubeadmResult, NodeCommandError
from k8slk_ops.ssh import CommandResult

HINT = "To see the stack trace of this error execute with --v=5 or higher"


def test_the_reason_is_the_last_line_that_says_something() -> None:
    out = (
        "[preflight] Running pre-flight checks\n"
        "error: error execution phase preflight: preflight checks failed\n"
        f"{HINT}\n\n"
    )
    assert failure_summary(out) == "error: error execution phase preflight: preflight checks failed"
    drain = (
        'error: unable to drain node "w-1" due to error: [...], continuing command...\n'
        "There are pending nodes to be drained:\n w-1\n"
        'error: cannot evict pod as it would violate the pod\'s disruption budget.\n'
    )
    assert failure_summary(drain.encode()) == (
        "error: cannot evict pod as it would violate the pod's disruption budget."
    )


def test_the_reason_is_one_clipped_line_without_log_prefixes() -> None:
    assert failure_summary("2019-09-16T21:03:16Z kubeadm.out  boom\t now  ") == "boom now"
    long = "x" * 1000
    summary = failure_summary(f"first\n{long}")
    assert len(summary) == SUMMARY_CHARS and summary.endswith("...")
    assert failure_summary(["a", "b"]) == "b"
    for empty in ("", b"", "\n \n", [], f"{HINT}\n"):
        assert failure_summary(empty) == "no output"


def test_the_block_is_the_last_lines_without_trailing_blanks() -> None:
    lines = [f"2019-09-16T21:03:16Z kubeadm.out line {i}" for i in range(40)]
    tail = failure_tail([*lines, "", "  "])
    assert len(tail) == TAIL_LINES and tail[-1] == "line 39" and tail[0] == "line 25"
    assert failure_tail("a\n\nb\n") == ["a", "", "b"]
    assert failure_tail(b"a\nb", 1) == ["b"]
    assert failure_tail([]) == []


def test_every_report_path_cuts_the_same_way() -> None:
    stderr = b"sh: can't create /run/node/x: Read-only file system\n" + b"y" * 2000
    err = NodeCommandError("writing /run/node/x on cp-1", CommandResult(1, b"", stderr))
    assert str(err) == f"writing /run/node/x on cp-1 failed (exit 1): {failure_summary(stderr)}"
    result = KubeadmResult(False, "x", [], [f"m{i}" for i in range(30)])
    assert result.tail() == failure_tail(result.log_tail)
    assert len(classify_kubeadm_error(["kubeadm: " + "z" * 900])) == SUMMARY_CHARS
