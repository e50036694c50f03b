"""The lab's load balancer: a TCP pass-through in front of the control planes' API servers.

What an HA cluster's ``controlPlaneEndpoint`` points at (HAProxy, keepalived, a cloud LB): it
accepts on its own address and hands each connection to the next control plane that accepts
it, skipping for a while one that refused or did not answer. TLS passes through untouched, so
clients verify the API server's certificate against the endpoint's address, as in a real
cluster. Run by the lab as ``python3 -m tests.lab.balancer LISTEN BACKEND...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time

CONNECT_TIMEOUT = 1.0
SKIP_SECONDS = 5.0  # a backend that failed is tried last for this long


class Balancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.turn = itertools.count()
        self.failed: dict[tuple[str, int], float] = {}

    def order(self) -> list[tuple[str, int]]:
        """Round robin, backends that failed recently last."""
        start = next(self.turn) % len(self.backends)
        ring = self.backends[start:] + self.backends[:start]
        now = time.monotonic()
        return sorted(ring, key=lambda b: self.failed.get(b, 0.0) > now - SKIP_SECONDS)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for backend in self.order():
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(*backend), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                self.failed[backend] = time.monotonic()
                continue
            self.failed.pop(backend, None)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: balancer LISTEN_HOST:PORT BACKEND_HOST:PORT...", file=sys.stderr)
        return 2
    listen = _hostport(argv[0])
    balancer = Balancer([_hostport(b) for b in argv[1:]])
    server = await asyncio.start_server(balancer.handle, *listen, reuse_address=True)
    print(f"balancing {argv[0]} over {' '.join(argv[1:])}", flush=True)
    async with server:
        await server.serve_forever()
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(sys.argv[1:])))
