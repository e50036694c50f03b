"""Go durations as kubeadm's --ttl takes them, and when a run's credentials count as too old."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from k8slk_ops.kubeadm import format_duration, parse_duration, parse_timeout
from k8slk_ops.steps.credentials import MintOptions, refresh_margin


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800.0),
        ("1h30m", 5400.0),
        ("90s", 90.0),
        ("1.5h", 5400.0),
        ("0", 0.0),
        ("500ms", 0.5),
        ("2h0m0s", 7200.0),
        ("-1m", -60.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "m", "1d", "30 m", "1h-5m", "abc"])
def test_not_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        parse_duration(text)


def test_margin_is_two_minutes_at_most_half_the_ttl() -> None:
    assert refresh_margin("30m") == 120.0
    assert refresh_margin("2h") == 120.0
    assert refresh_margin("10s") == 5.0
    assert refresh_margin("0") == 0.0


def test_mint_options_check_the_ttl_when_the_playbook_loads() -> None:
    assert MintOptions(ttl="45m").ttl == 2700.0
    assert MintOptions(ttl="30").ttl == 30.0  # a bare number is seconds
    with pytest.raises(ValidationError, match="no spaces"):
        MintOptions(ttl="thirty minutes")
    with pytest.raises(ValidationError, match='unknown unit "x"'):
        MintOptions(ttl="30x")
    with pytest.raises(ValidationError, match="must be positive"):
        MintOptions(ttl="0")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("600", 600.0), ("1.5", 1.5),
     (600, 600.0), (2.5, 2.5), ("500ms", 0.5)],
)
def test_timeouts_take_go_durations_or_bare_seconds(value: object, seconds: float) -> None:
    assert parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("inf", "invalid duration"),
        ("nan", "invalid duration"),
        (float("inf"), "not a finite duration"),
        (float("nan"), "not a finite duration"),
        ("-5m", "must be positive"),
        (-1, "must be positive"),
        ("0", "must be positive"),
        ("0s", "must be positive"),
        ("5 m", "no spaces"),
        (" 5m", "no spaces"),
        ("5m\t", "no spaces"),
        ("5mx", 'unknown unit "mx"'),
        ("10m30", "missing unit"),
        (True, "a Go duration"),
        (None, "a Go duration"),
        ("", "invalid duration"),
    ],
)
def test_bad_timeouts_are_refused(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_timeout(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "1m30s"), (600, "10m0s"), (5400, "1h30m0s"), (2, "2s"), (0.5, "500ms"),
     (1.5, "1.5s"), (7200, "2h0m0s"), (0, "0s"), (0.0015, "1.5ms"), (3661.25, "1h1m1.25s")],
)
def test_kubeadm_and_kubectl_get_go_s_own_form(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert seconds == 0 or parse_duration(text) == pytest.approx(seconds)
