"""What a patch to asyncssh is: the attributes it replaces, and the releases it was checked on.

Each patch replaces a few attributes of asyncssh's classes with wrappers of the originals.
Those attributes are asyncssh's internals, not its API: a release may rename them, change
their arguments or what they are called for, and a wrapper written for one release would then
quietly do the wrong thing. So a patch names the exact asyncssh versions its code and its
tests (tests/unit/test_ssh_*.py) were run against, and is applied only on those; on any other
release asyncssh runs as it comes (more round trips and CPU, the same results).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Replacement:
    """``owner.attribute`` is to become ``value`` (a class's own attribute, descriptor and all)."""

    owner: type
    attribute: str
    value: object


@dataclass(frozen=True)
class Patch:
    """One change to asyncssh: its name in logs, why it exists, the releases it was checked on,
    and ``make``, which builds its replacements from asyncssh's attributes as they are now
    (so it is called only on a checked release, where those attributes are what it expects)."""

    name: str
    purpose: str
    checked: frozenset[str]
    make: Callable[[], list[Replacement]]

    def fits(self, version: str) -> bool:
        """Whether this patch was checked against asyncssh ``version``."""
        return version in self.checked
