"""Process limits: a run holds one socket per node (plus channels), so lift the fd ceiling."""

from __future__ import annotations

import resource

# setrlimit refuses RLIM_INFINITY for RLIMIT_NOFILE; the kernel's own cap is nr_open.
_NR_OPEN = "/proc/sys/fs/nr_open"


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (once, at start); returns the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open(_NR_OPEN) as handle:
                target = int(handle.read().strip())
        except (OSError, ValueError):
            target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target
