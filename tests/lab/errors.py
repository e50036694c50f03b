"""The one error the lab raises: it always says what is wrong and what to do about it."""

from __future__ import annotations


class LabError(RuntimeError):
    """A lab that cannot start, stop or take a fault says exactly why (not root, missing
    binary, address in use, ...), so a failing test points at the machine, not at the tool."""
