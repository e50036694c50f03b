"""Lab slots claimed by several labs at once (pytest workers start labs at the same instant):
a claim half made is not taken for a stale one, and a slot just given back is not handed out
again at once. No root: the claims live in a temporary directory here."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.lab import slots


@pytest.fixture(autouse=True)
def claims_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slots, "LOCK_DIR", tmp_path / "claims")
    monkeypatch.setattr(slots, "LAST", tmp_path / "claims" / "last-slot")


def lab_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def test_a_claim_being_written_is_not_taken_for_a_stale_one(tmp_path: Path) -> None:
    first, second = lab_dir(tmp_path, "first"), lab_dir(tmp_path, "second")
    got: list[int] = []
    waiting = threading.Thread(target=lambda: got.append(slots.claim(second)))
    with slots._claims_locked():
        # The first lab has created its claim on slot 1 and not written it yet.
        slots.lock_path(1).write_text("")
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not got  # it waits for the claim in progress
        slots.lock_path(1).write_text(json.dumps({"dir": str(first), "pid": os.getpid()}))
    waiting.join()
    assert got == [2]
    assert slots.owner(1) == first and slots.owner(2) == second


def test_a_slot_given_back_is_not_handed_out_again_at_once(tmp_path: Path) -> None:
    first, second = lab_dir(tmp_path, "first"), lab_dir(tmp_path, "second")
    taken = slots.claim(first)
    slots.release(first, taken)
    assert not slots.lock_path(taken).exists()
    assert slots.claim(second) == taken + 1


def test_automatic_picks_go_round_and_leave_the_sshd_servers_range(tmp_path: Path) -> None:
    slots.LAST.parent.mkdir(parents=True)
    slots.LAST.write_text("239\n")
    assert slots.claim(lab_dir(tmp_path, "a")) == 1
    assert 240 not in slots.AUTOMATIC
    assert slots.claim(lab_dir(tmp_path, "b"), slot=245) == 245  # by number it may
