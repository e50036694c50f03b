"""What a command answers: exit status, stdout, stderr."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    status: int
    stdout: bytes = b""
    stderr: bytes = b""

    @classmethod
    def ok(cls, stdout: str | bytes = b"") -> Result:
        return cls(0, stdout.encode() if isinstance(stdout, str) else stdout)

    @classmethod
    def error(cls, status: int, stderr: str) -> Result:
        return cls(status, b"", stderr.encode())


@dataclass(frozen=True)
class Pending:
    """A command that runs on: ``wait()`` gives its result when it ends. Closing the channel
    first ends it, as the node kills a command bound to its channel."""

    wait: Callable[[], Awaitable[Result]]


@dataclass(frozen=True)
class NeedsInput:
    """The command consumes stdin: call ``apply`` with all of it."""

    apply: Callable[[bytes], Result]


@dataclass(frozen=True)
class Stream:
    """A command that prints as it runs (``kubectl get --watch``): ``chunks()`` yields its
    output; when it ends by itself the command exits 0. Closing the channel first ends it, as
    the node kills a command bound to its channel."""

    chunks: Callable[[], AsyncIterator[bytes]]
