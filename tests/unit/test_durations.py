"""Go durations as kubeadm's --ttl takes them, and when a run's credentials count as too old."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from k8slk_ops.kubeadm import parse_duration
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
    assert MintOptions(ttl="45m").ttl == "45m"
    with pytest.raises(ValidationError, match="invalid duration"):
        MintOptions(ttl="thirty minutes")
    with pytest.raises(ValidationError, match="missing unit"):
        MintOptions(ttl="30")
    with pytest.raises(ValidationError, match="must be positive"):
        MintOptions(ttl="0")
