"""What a command answers: exit status, stdout, stderr."""

from __future__ import annotations

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
