"""Slots: which ``127.0.S.0/24`` a lab owns, so several labs (a test run and a demo) can run on
one machine at once. A slot is claimed by creating ``/run/k8slk-lab/slot-S.json`` exclusively;
a claim whose lab no longer runs is stale and taken over."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.lab import procs
from tests.lab.errors import LabError

LOCK_DIR = Path("/run/k8slk-lab")
SLOTS = range(1, 251)


def lock_path(slot: int) -> Path:
    return LOCK_DIR / f"slot-{slot}.json"


def _stale(slot: int) -> bool:
    """A claim is stale when the process that made it is gone and the lab it names is gone,
    down, or owns another slot."""
    try:
        claim = json.loads(lock_path(slot).read_text())
        if Path(f"/proc/{claim['pid']}").exists():
            return False  # its lab is still starting
        state = json.loads((Path(claim["dir"]) / "lab.json").read_text())
    except (OSError, ValueError, KeyError):
        return True
    if state.get("slot") != slot or not state.get("running"):
        return True
    # Said to run, but no node's holder process is left (the machine rebooted, say).
    holders = [n.get("pids", {}).get("holder") for n in state.get("nodes", [])]
    return not any(h and procs.alive(h[0], h[1]) for h in holders)


def claim(
    lab_dir: Path, slot: int | None = None, unusable: Callable[[int], str | None] = lambda s: None
) -> int:
    """Claim ``slot`` (or the first free one) for the lab in ``lab_dir``; return it.
    ``unusable(s)`` says why a free slot cannot serve (its addresses are in use, say): a slot
    asked for by number then fails with that reason, an automatic pick moves on."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    wanted = [slot] if slot is not None else list(SLOTS)
    if slot is not None and slot not in SLOTS:
        raise LabError(f"slot {slot} is out of range: pick 1..250")
    body = json.dumps({"dir": str(lab_dir.resolve()), "pid": os.getpid()}).encode()
    for s in wanted:
        for _ in range(2):
            try:
                fd = os.open(lock_path(s), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if owner(s) == lab_dir.resolve() or _stale(s):
                    with contextlib.suppress(FileNotFoundError):
                        lock_path(s).unlink()
                    continue
                break
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            reason = unusable(s)
            if reason is None:
                return s
            lock_path(s).unlink()
            if slot is not None:
                raise LabError(f"slot {s} cannot be used: {reason}")
            break
    if slot is not None:
        raise LabError(
            f"slot {slot} is taken by the lab in {owner(slot)} "
            f"({lock_path(slot)}): run `python -m tests.lab down --dir {owner(slot)}` or pick "
            "another --slot"
        )
    raise LabError(f"no free lab slot: all of 1..250 are claimed in {LOCK_DIR}")


def owner(slot: int) -> Path | None:
    try:
        return Path(json.loads(lock_path(slot).read_text())["dir"])
    except (OSError, ValueError, KeyError):
        return None


def release(lab_dir: Path, slot: int) -> None:
    """Give the slot back, if this lab still holds it."""
    if owner(slot) == lab_dir.resolve():
        with contextlib.suppress(FileNotFoundError):
            lock_path(slot).unlink()
