"""The garbage collector during a run: what was built before it is not scanned again and again.

By the time a run starts, the process holds every module, the inventory and the playbook: some
hundred thousand objects that live until it ends. CPython's cyclic collector walks all of them
at each full collection, and with its default thresholds (a young collection every 700 new
container objects) a thousand-node run spent about an eighth of its CPU in the collector, most
of it in a handful of full collections. ``lean_gc`` moves what exists into the permanent
generation (``gc.freeze``) and collects young objects every 10,000 allocations instead of 700;
cyclic garbage is still collected, only less often. Both are undone when the run ends, so a
process that runs the CLI several times (the tests do) is left as it was.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def lean_gc() -> Iterator[None]:
    """Freeze what exists and collect less often, for the span of the block."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def spare_the_last_collections() -> None:
    """Move everything into the permanent generation as the process ends.

    The interpreter collects garbage once more while it shuts down, walking every object the
    process still holds: after a run of 5,000 nodes, about a second of CPU between the last
    line printed and the exit, for nothing (the memory goes back to the system whole). Frozen
    objects are not walked; they are still freed, and every exit handler still runs. For the
    console entry point only: a process that goes on (the tests) keeps collecting as before.
    """
    gc.freeze()
