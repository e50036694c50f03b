"""The node's kubeadm log: line format, the one prefix pattern, the trigger script's states."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from k8slk_ops.kubeadm import (
    COMPLETED_LINE,
    CONFIGURED_LINE,
    LOG_PREFIX,
    SETTLING_LINE,
    WAITING_LINE,
    KubeadmLogState,
    KubeadmState,
    LogLine,
    classify_kubeadm_error,
    looks_like_error,
    parse_log_line,
)


def log(message: str, second: int = 0) -> str:
    return f"2019-09-16T21:03:{second:02d}Z kubeadm.out {message}"


def test_parse_log_line() -> None:
    line = parse_log_line(
        "2019-09-16T21:03:16Z kubeadm.out kubeadm has completed... removing configuration\n"
    )
    assert line == LogLine(
        datetime(2019, 9, 16, 21, 3, 16, tzinfo=UTC),
        "kubeadm.out",
        "kubeadm has completed... removing configuration",
    )


def test_parse_keeps_trailing_spaces_and_tabs() -> None:
    line = parse_log_line(log("\t--discovery-token-ca-cert-hash sha256:ab \n"))
    assert line.message == "\t--discovery-token-ca-cert-hash sha256:ab "


def test_parse_fractions_offsets_and_empty_messages() -> None:
    line = parse_log_line("2024-01-02T03:04:05.123456789+02:00 kubelet.out hi")
    assert line.time == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert parse_log_line("2024-01-02T03:04:05Z kubeadm.out").message == ""
    assert parse_log_line("2024-01-02T03:04:05Z kubeadm.out ").message == ""


def test_garbage_and_cut_lines_are_all_message() -> None:
    for text in ("", "no prefix here", "2024-13-45T99:99:99Z kubeadm.out x", "\x00\xff junk"):
        line = parse_log_line(text)
        assert (line.time, line.source, line.message) == (None, None, text)
    cut = "x" * 1024
    assert parse_log_line(cut).message == cut


def test_format_round_trip() -> None:
    for text in (
        "2019-09-16T21:03:16Z kubeadm.out hello  world ",
        "2024-01-02T03:04:05.5-07:30 kubelet.out x",
    ):
        assert parse_log_line(text).format() == text


def test_state_success_path() -> None:
    state = KubeadmLogState()
    assert state.phase is KubeadmState.UNKNOWN
    assert state.feed(log(WAITING_LINE)) is KubeadmState.WAITING
    assert state.feed(log(SETTLING_LINE)) is KubeadmState.RUNNING
    assert state.settling and state.flag is None
    assert state.feed(log("Found kubeadm flag join")) is KubeadmState.RUNNING
    assert state.flag == "join" and not state.settling
    state.feed(log("[preflight] Running pre-flight checks"))
    state.feed(log("This node has joined the cluster:"))
    assert not state.done
    assert state.feed(log(COMPLETED_LINE)) is KubeadmState.COMPLETED
    assert state.done and state.ok and not state.failed
    assert state.task_stopped() is KubeadmState.COMPLETED  # stopping after success is normal
    assert state.output == [
        "[preflight] Running pre-flight checks",
        "This node has joined the cluster:",
    ]


def test_init_is_past_upload_config_at_the_next_phase_s_first_line() -> None:
    """admin.conf's user has its rights once upload-config is over (from v1.29 init binds its
    group then): not at the API's health line, nor at upload-config's own."""
    state = KubeadmLogState()
    state.feed_all([log(WAITING_LINE), log(SETTLING_LINE), log("Found kubeadm flag init")])
    for line in ("[api-check] The API server is healthy after 1.5s",
                 "[apiclient] All control plane components are healthy after 4.5 seconds",
                 '[upload-config] Storing the configuration used in ConfigMap "kubeadm-config"',
                 '[kubelet] Creating a ConfigMap "kubelet-config" in namespace kube-system'):
        state.feed(log(line))
        assert not state.admin_api, line
    state.feed(log("[upload-certs] Skipping phase. Please see --upload-certs"))
    assert state.admin_api
    state.feed(log(WAITING_LINE))  # a new attempt starts from nothing
    assert not state.admin_api
    join = KubeadmLogState()
    join.feed_all([log(WAITING_LINE), log(SETTLING_LINE), log("Found kubeadm flag join"),
                   log("[mark-control-plane] Marking the node cp-2 as control-plane")])
    assert not join.admin_api  # a join's lines say nothing of an init


def test_state_failure_needs_the_stop() -> None:
    state = KubeadmLogState()
    state.feed_all(
        [
            log(WAITING_LINE),
            log(SETTLING_LINE),
            log("Found kubeadm flag init"),
            log("error execution phase preflight: [preflight] Some fatal errors occurred:"),
            log("\t[ERROR NumCPU]: the number of available CPUs 1 is less than the required 2"),
        ]
    )
    assert state.phase is KubeadmState.RUNNING  # not failed until the task stops
    assert state.task_stopped() is KubeadmState.FAILED
    assert state.failed and state.done and not state.ok
    assert state.reason is not None and "NumCPU" in state.reason
    assert state.tail[-1].startswith("\t[ERROR NumCPU]")


def test_state_stopped_before_running() -> None:
    state = KubeadmLogState()
    state.feed(log(WAITING_LINE))
    assert state.task_stopped() is KubeadmState.FAILED
    assert state.reason == "the kubeadm task stopped before kubeadm ran"
    empty = KubeadmLogState()
    assert empty.task_stopped() is KubeadmState.FAILED


def test_state_unknown_flag() -> None:
    state = KubeadmLogState()
    state.feed_all(
        "\n".join([log(WAITING_LINE), log(SETTLING_LINE), log("Unknown kubeadm flag init ")])
    )
    assert state.phase is KubeadmState.FAILED
    assert state.failed and state.flag == "init "
    assert state.reason is not None and "'init '" in state.reason


def test_state_already_configured() -> None:
    state = KubeadmLogState()
    assert state.feed(log(CONFIGURED_LINE)) is KubeadmState.CONFIGURED
    assert state.done and not state.ok and not state.failed


def test_a_restart_starts_a_new_attempt() -> None:
    state = KubeadmLogState()
    state.feed_all([log(WAITING_LINE), log("Found kubeadm flag join"), log("boom")])
    state.task_stopped()
    assert state.phase is KubeadmState.FAILED
    state.feed(log(WAITING_LINE))
    assert state.phase is KubeadmState.WAITING
    assert state.flag is None and state.reason is None and state.output == []


def test_tail_is_bounded() -> None:
    state = KubeadmLogState(keep=3)
    state.feed_all(
        [log(WAITING_LINE), log("Found kubeadm flag init")] + [log(str(i)) for i in range(10)]
    )
    assert state.tail == ["7", "8", "9"]
    assert len(state.output) == 10


def test_settle_lines_are_not_kubeadm_output() -> None:
    state = KubeadmLogState()
    state.feed_all([log(WAITING_LINE), log(SETTLING_LINE), log("stray")])
    assert state.phase is KubeadmState.RUNNING and state.output == []
    assert state.task_stopped() is KubeadmState.FAILED
    assert state.reason == "the kubeadm task stopped before kubeadm ran"


def test_the_one_prefix_pattern_embeds_and_strips() -> None:
    assert re.fullmatch(LOG_PREFIX + "x", "2024-01-02T03:04:05.5+02:00 kubeadm.out x")
    assert re.fullmatch(LOG_PREFIX, "2019-09-16T21:03:16Z kubeadm.out ")
    assert not re.match(LOG_PREFIX, "[preflight] Running pre-flight checks")
    assert "(?P<" not in LOG_PREFIX
    # kubeadm.failures reads through the same prefix: any source, not only *.out
    assert classify_kubeadm_error(["2019-09-16T21:03:16Z kubeadm.err boom"]) == (
        "kubeadm failed: boom"
    )
    assert looks_like_error(log("error execution phase preflight: x"))
    assert looks_like_error("\t[ERROR Port-10250]: Port 10250 is in use")
    assert not looks_like_error(log("[preflight] Running pre-flight checks"))


def test_lines_of_one_second_share_one_parsed_time() -> None:
    first = parse_log_line("2026-11-29T21:13:50Z kubeadm.out [preflight] Running checks")
    second = parse_log_line("2026-11-29T21:13:50Z kubeadm.out [kubelet-start] Writing")
    assert first.time is not None and first.time is second.time
    assert parse_log_line("2026-13-29T21:13:50Z kubeadm.out x").time is None  # still checked
