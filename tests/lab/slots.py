"""Slots: which ``127.0.S.0/24`` a lab owns, so several labs (a test run and a demo) can run on
one machine at once. A slot is claimed by creating ``/run/k8slk-lab/slot-S.json`` exclusively;
a claim whose lab no longer runs is stale and taken over. Claims and releases hold an flock on
``/run/k8slk-lab/claims.lock``: without it, a lab could read another's claim between its
exclusive create and its write, find it empty, call it stale and take the slot too (pytest
workers start labs at the same instant). An automatic pick starts after the slot picked last
(``/run/k8slk-lab/last-slot``), so a slot just given back is not handed out again at once: a
test that checks ``down`` left nothing on its slot must not meet the next lab there."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.lab import procs
from tests.lab.errors import LabError

LOCK_DIR = Path("/run/k8slk-lab")
LAST = LOCK_DIR / "last-slot"  # the slot an automatic pick took last
SLOTS = range(1, 251)
# Picked automatically: 127.0.240.0/24 belongs to the SSH layer's own sshd servers
# (tests/sshd_server.py) and the slots above it are left to labs asked for by number.
AUTOMATIC = range(1, 240)


@contextlib.contextmanager
def _claims_locked() -> Iterator[None]:
    """Every claim and release on this machine, one at a time."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_DIR / "claims.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file drops the lock


def _in_turn() -> list[int]:
    """Every slot an automatic pick may take, starting after the one picked last."""
    try:
        last = int(LAST.read_text())
    except (OSError, ValueError):
        last = 0
    start = last if last in AUTOMATIC else 0
    order = list(AUTOMATIC)
    return order[start:] + order[:start]


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
    """Claim ``slot`` (or the next free one in turn) for the lab in ``lab_dir``; return it.
    ``unusable(s)`` says why a free slot cannot serve (its addresses are in use, say): a slot
    asked for by number then fails with that reason, an automatic pick moves on."""
    with _claims_locked():
        chosen = _claim(lab_dir, slot, unusable)
        if slot is None:
            LAST.write_text(f"{chosen}\n")
        return chosen


def _claim(lab_dir: Path, slot: int | None, unusable: Callable[[int], str | None]) -> int:
    wanted = [slot] if slot is not None else _in_turn()
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
    raise LabError(
        f"no free lab slot: all of {AUTOMATIC.start}..{AUTOMATIC.stop - 1} are claimed in "
        f"{LOCK_DIR}"
    )


def owner(slot: int) -> Path | None:
    try:
        return Path(json.loads(lock_path(slot).read_text())["dir"])
    except (OSError, ValueError, KeyError):
        return None


def release(lab_dir: Path, slot: int) -> None:
    """Give the slot back, if this lab still holds it."""
    with _claims_locked():
        if owner(slot) != lab_dir.resolve():
            return
        with contextlib.suppress(FileNotFoundError):
            lock_path(slot).unlink()
