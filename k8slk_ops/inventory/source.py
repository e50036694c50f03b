"""Reading a user's file (inventory, group_vars, playbook) so that a small file costs little.

Whatever the file is, reading it is bounded: only regular files are read (a link to
``/dev/zero`` or a FIFO would be read forever or block), at most ``MAX_FILE_BYTES``, and the
text must be UTF-8 without NUL. Every refusal names the line and column where it applies, as
editors and CI logs want, not a byte offset.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from k8slk_ops.inventory.errors import InventoryError, InventoryIssue

MAX_FILE_BYTES = 1 << 20  # 1 MiB: thousands of nodes fit; more is a mistake or an attack
_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def issue(path: Path, line: int, column: int, message: str) -> InventoryError:
    return InventoryError([InventoryIssue(str(path), line, column, "", message)])


def place(data: bytes | str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` (a byte offset in bytes, a character one in text)."""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    head = data[:offset]
    line = head.count(newline) + 1  # type: ignore[arg-type]
    column = offset - (head.rfind(newline) + 1) + 1  # type: ignore[arg-type]
    return line, column


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """At most ``limit`` bytes of a regular file; anything else is an InventoryError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise issue(path, 0, 0, "no such file") from None
    except IsADirectoryError:
        raise issue(path, 0, 0, "is a directory, not a file to read") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO without a writer on some systems
            raise issue(path, 0, 0, "not a regular file") from None
        raise issue(path, 0, 0, f"cannot read: {exc.strerror or exc}") from None
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind == stat.S_IFDIR:
            raise issue(path, 0, 0, "is a directory, not a file to read")
        if kind != stat.S_IFREG:
            what = _KINDS.get(kind, "not a regular file")
            raise issue(path, 0, 0, f"not a regular file ({what}); refusing to read it")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise issue(path, 0, 0, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        line, _ = place(data, limit)
        raise issue(path, line, 0, f"the file is larger than 1 MiB ({limit} bytes) here")
    return data


def read_text(path: Path) -> str:
    """The file's text: regular, at most 1 MiB, UTF-8, no NUL; refusals give line and column."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = place(data, exc.start)
        raise issue(path, line, column, f"not UTF-8 text ({exc.reason})") from None
    nul = text.find("\0")
    if nul >= 0:
        line, column = place(text, nul)
        raise issue(path, line, column, "a NUL character; the file must be text")
    return text
