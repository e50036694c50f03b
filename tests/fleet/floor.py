"""The floor under k8slk-ops's CPU per node: bare asyncssh against a running fleet.

    python -m tests.fleet.floor DIR [--concurrency 256] [--sessions 1] [--shards 1]

Connects to every node of the fleet in DIR with the fleet's client key and known_hosts (host
keys checked, as the tool does), runs ``sessions`` commands (``true``) on each, and closes,
at most ``concurrency`` nodes at once, with asyncssh's client prepared as the tool prepares it
(``k8slk_ops.ssh.pool.prepare_asyncssh``; ``--bare`` for asyncssh as it comes). It prints the CPU seconds this process spent doing so
(imports and reading the fleet's files excluded) and that per node: what the SSH handshake and
the packet layer cost on this machine, before any work of the tool's own.

With ``--shards N`` the nodes are split over N processes (each its own event loop and
connections, ``concurrency / N`` nodes at once each): whether a second core, shared with the
fleet, makes the same work end sooner.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import asyncssh

from k8slk_ops.ssh.options import KEY_ONLY, PREFERRED_CIPHERS
from k8slk_ops.ssh.pool import prepare_asyncssh
from tests.fleet import layout


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _one(address: str, port: int, options: asyncssh.SSHClientConnectionOptions,
               sessions: int) -> None:
    async with asyncssh.connect(address, port, options=options) as conn:
        for _ in range(sessions):
            await conn.run("true", check=True)


async def measure(
    directory: Path, concurrency: int, sessions: int, part: tuple[int, int] = (0, 1)
) -> dict[str, float]:
    config = layout.load(directory)
    nodes_here = config.nodes[part[0]::part[1]]
    # The tool's own choices (k8slk_ops/ssh/options.py): AES-GCM first, nothing to try but
    # the key; known_hosts read once (asyncssh reads a file name again for each connection).
    options = asyncssh.SSHClientConnectionOptions(
        username="root",
        client_keys=[str(directory / layout.CLIENT_KEY)],
        known_hosts=asyncssh.read_known_hosts(str(directory / layout.KNOWN_HOSTS)),
        encryption_algs=PREFERRED_CIPHERS,
        agent_path=None,
        config=None,
        **KEY_ONLY,
    )
    gate = asyncio.Semaphore(concurrency)

    async def bounded(address: str) -> None:
        async with gate:
            await _one(address, config.port, options, sessions)

    cpu0, wall0 = _cpu(), time.monotonic()
    await asyncio.gather(*(bounded(n.address) for n in nodes_here))
    cpu, wall = _cpu() - cpu0, time.monotonic() - wall0
    nodes = len(nodes_here)
    return {"nodes": nodes, "sessions": sessions, "cpuSeconds": round(cpu, 2),
            "cpuMsPerNode": round(cpu / nodes * 1000, 2), "wallSeconds": round(wall, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fleet.floor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--bare", action="store_true", help="asyncssh as it comes")
    p.add_argument("--part", default="0/1", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.bare:
        prepare_asyncssh()
    if args.shards > 1:
        print(json.dumps(sharded(args)))
        return 0
    index, count = (int(x) for x in args.part.split("/"))
    print(json.dumps(asyncio.run(measure(args.directory, args.concurrency, args.sessions,
                                         (index, count)))))
    return 0


def sharded(args: argparse.Namespace) -> dict[str, float]:
    """The same work split over ``args.shards`` processes started together; their CPU summed,
    the wall from the first start to the last end."""
    each = max(1, args.concurrency // args.shards)
    wall0 = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.fleet.floor", str(args.directory), "--concurrency",
             str(each), "--sessions", str(args.sessions), "--part", f"{i}/{args.shards}",
             *(["--bare"] if args.bare else [])],
            stdout=subprocess.PIPE,
        )
        for i in range(args.shards)
    ]
    parts = [json.loads(proc.communicate()[0]) for proc in procs]
    wall = time.monotonic() - wall0
    nodes = sum(part["nodes"] for part in parts)
    cpu = sum(part["cpuSeconds"] for part in parts)
    return {"nodes": nodes, "sessions": args.sessions, "shards": args.shards,
            "cpuSeconds": round(cpu, 2), "cpuMsPerNode": round(cpu / nodes * 1000, 2),
            "wallSeconds": round(wall, 2),
            "shardWallSeconds": max(part["wallSeconds"] for part in parts)}


if __name__ == "__main__":
    raise SystemExit(main())
