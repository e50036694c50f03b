"""The changes this tool makes to asyncssh's internals, each applied only where it was checked.

asyncssh as it comes logs in and runs commands correctly; these save round trips and CPU per
connection (what each saves, and how, is in its module):

- ``coalesced_writes``: the packets of one loop turn leave in one ``send``;
- ``derived_options``: per-connection options derived in the loop when no file is read;
- ``direct_auth``: a login in one signed public-key request instead of three exchanges;
- ``quiet_logs``: asyncssh's disabled log lines are not formatted.

They replace attributes of asyncssh's classes that are not its API, so each names the exact
asyncssh releases it was checked against and ``install`` applies it only on those: on any other
release asyncssh runs as it comes, and the debug log says which were skipped and why. With
``K8SLK_OPS_STOCK_ASYNCSSH=1`` in the environment none is applied (to tell whether a problem is
ours or asyncssh's, or to run on a release not yet checked without any doubt).

``install`` is called once by the command line's run start (``k8slk_ops.ssh.prepare_asyncssh``),
not by importing a module or making a pool, so that what asyncssh runs is decided in one place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import asyncssh

from k8slk_ops.ssh.patches import coalesced_writes, derived_options, direct_auth, quiet_logs
from k8slk_ops.ssh.patches.base import Patch, Replacement

log = logging.getLogger("k8slk_ops.ssh")

STOCK_ENV = "K8SLK_OPS_STOCK_ASYNCSSH"

PATCHES: tuple[Patch, ...] = (
    coalesced_writes.PATCH,
    derived_options.PATCH,
    direct_auth.PATCH,
    quiet_logs.PATCH,
)


@dataclass(frozen=True)
class Outcome:
    """What ``install`` did with one patch, and why."""

    patch: str
    applied: bool
    why: str


@dataclass(frozen=True)
class _Original:
    """What a replaced attribute was: the class's own value, or absent (inherited)."""

    owner: type
    attribute: str
    value: object
    own: bool


# The patches in effect, with what each replaced (so that they can be taken out again).
_applied: dict[str, list[_Original]] = {}


def stock_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for asyncssh as it comes (any value but empty or 0)."""
    return environ.get(STOCK_ENV, "").strip() not in ("", "0")


def asyncssh_version() -> str:
    """The asyncssh release this process imported."""
    return str(asyncssh.__version__)


def install() -> tuple[Outcome, ...]:
    """Apply every patch checked against this asyncssh release, unless ``STOCK_ENV`` is set;
    take out any applied patch that should not be (idempotent: the same environment and release
    give the same asyncssh however often it is called). Logs the outcome at debug."""
    version = asyncssh_version()
    stock = stock_requested()
    outcomes = []
    for patch in PATCHES:
        if stock:
            outcome = Outcome(patch.name, False, f"{STOCK_ENV} is set")
        elif not patch.fits(version):
            checked = ", ".join(sorted(patch.checked))
            outcome = Outcome(
                patch.name, False, f"not checked against asyncssh {version}, only {checked}"
            )
        else:
            outcome = Outcome(patch.name, True, f"checked against asyncssh {version}")
        if outcome.applied and patch.name not in _applied:
            _applied[patch.name] = _replace(patch.make())
        elif not outcome.applied and patch.name in _applied:
            _put_back(_applied.pop(patch.name))
        outcomes.append(outcome)
    log.debug("asyncssh %s: %s", version, describe(outcomes))
    return tuple(outcomes)


def restore() -> None:
    """asyncssh as it was imported: every applied patch taken out (for tests comparing both)."""
    while _applied:
        _put_back(_applied.popitem()[1])


def applied() -> frozenset[str]:
    """The names of the patches in effect."""
    return frozenset(_applied)


def describe(outcomes: list[Outcome] | tuple[Outcome, ...]) -> str:
    """One line: the patches applied, then those skipped with why."""
    done = [o.patch for o in outcomes if o.applied]
    skipped = [o for o in outcomes if not o.applied]
    reasons: dict[str, list[str]] = {}
    for outcome in skipped:
        reasons.setdefault(outcome.why, []).append(outcome.patch)
    skipped_text = "; ".join(f"{', '.join(names)} ({why})" for why, names in reasons.items())
    return (
        f"patches applied: {', '.join(done) or 'none'}; skipped: {skipped_text or 'none'}"
    )


def _replace(replacements: list[Replacement]) -> list[_Original]:
    originals = []
    for r in replacements:
        own = r.attribute in vars(r.owner)
        originals.append(
            _Original(r.owner, r.attribute, vars(r.owner).get(r.attribute), own)
        )
        setattr(r.owner, r.attribute, r.value)
    return originals


def _put_back(originals: list[_Original]) -> None:
    for original in reversed(originals):
        if original.own:
            setattr(original.owner, original.attribute, original.value)
        else:
            delattr(original.owner, original.attribute)


__all__ = ["PATCHES", "STOCK_ENV", "Outcome", "applied", "install", "restore", "stock_requested"]
