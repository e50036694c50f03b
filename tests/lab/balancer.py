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
import ssl
import sys
import time

CONNECT_TIMEOUT = 1.0
SKIP_SECONDS = 5.0  # a backend that failed is tried last for this long
CHECK_INTERVAL = 0.5  # how often each backend's /readyz is asked (HAProxy's httpchk)
CHECK_TIMEOUT = 2.0


class Balancer:
    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.turn = itertools.count()
        self.failed: dict[tuple[str, int], float] = {}
        self.unready: set[tuple[str, int]] = set()

    def order(self) -> list[tuple[str, int]]:
        """Round robin; backends whose /readyz failed, then those that failed recently, last."""
        start = next(self.turn) % len(self.backends)
        ring = self.backends[start:] + self.backends[:start]
        now = time.monotonic()
        return sorted(ring, key=lambda b: (b in self.unready,
                                           self.failed.get(b, 0.0) > now - SKIP_SECONDS))

    async def check_forever(self) -> None:
        """A real load balancer in front of API servers checks their /readyz (an API server
        whose etcd does not answer is not ready) and sends no client there while it fails."""
        while True:
            answers = await asyncio.gather(*(_ready(b) for b in self.backends))
            self.unready = {b for b, ok in zip(self.backends, answers, strict=True) if not ok}
            await asyncio.sleep(CHECK_INTERVAL)

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


async def _ready(backend: tuple[str, int]) -> bool:
    """``GET /readyz`` over TLS (the certificate not checked, as an LB's health check) is 200."""
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(*backend, ssl=tls), CONNECT_TIMEOUT
        )
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), CHECK_TIMEOUT)
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    finally:
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
    checks = asyncio.create_task(balancer.check_forever())
    async with server:
        await server.serve_forever()
    checks.cancel()
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(sys.argv[1:])))
