"""Files this tool replaces on the operator's machine: one writer, so none can be redirected.

The files it writes (``--metrics-file``, kubeconfigs, ``known_hosts``) often sit in directories
someone else can write: node_exporter's textfile directory is writable by the node_exporter
user, while the tool runs as root from cron. Opening a predictable ``F.tmp`` with ``O_CREAT``
and changing its mode by path lets that user plant a link there and have root overwrite (and
chmod) any file. So every replacement here is done the one way that cannot be redirected:

- the temporary file is made by :func:`tempfile.mkstemp` in the target's own directory (a
  random name, created exclusively and 0600, never through a link);
- its mode is set on the open descriptor (``fchmod``), never by path;
- it is flushed to disk and renamed over the target, which replaces a link at that name
  instead of writing through it.

A target that is a symbolic link is refused unless the caller follows links on purpose (the
operator's own ``~/.kube/config`` kept in a dotfiles repository): then the link's final target
is replaced and the link stays. A target that is not a regular file is always refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path


class UnsafeTarget(ValueError):
    """A file this tool will not replace or read; the message says what to do instead."""


def replace(path: Path, data: bytes, mode: int, *, follow_link: bool = False,
            what: str = "") -> Path:
    """Replace the file at ``path`` with ``data``, mode ``mode`` from before it is visible.

    Returns the file written: ``path`` itself, or the final target of a link when
    ``follow_link`` is set. ``what`` names the file in a refusal (``--metrics-file``)."""
    target = _target(path, follow_link, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def _target(path: Path, follow_link: bool, what: str) -> Path:
    label = f"{what} {path}" if what else str(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(st.st_mode):
        if not follow_link:
            raise UnsafeTarget(
                f"{label} is a symbolic link; refusing to write through it (a link there can "
                f"make this run overwrite another file). Name the file itself, or remove the "
                f"link ({path} -> {os.readlink(path)})"
            )
        target = Path(os.path.realpath(path))
        try:
            st = os.stat(target)
        except FileNotFoundError:
            return target
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeTarget(f"{target} (the target of {label}) is not a regular file; "
                               "refusing to replace it (point the link at a regular file)")
        return target
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeTarget(f"{label} is not a regular file; refusing to replace it "
                           "(name a regular file, or a path that does not exist yet)")
    return path


def read_own(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of a file this tool wrote earlier at ``path``; None when there is none.

    Never through a link, a regular file only (a FIFO would block, a device never end), at
    most ``max_bytes`` (a longer file is not ours: None)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO, errno.EACCES):
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, max_bytes + 1)
    finally:
        os.close(fd)
    return None if len(data) > max_bytes else data
