"""The lab load balancer's choice of backend (round robin, backends not ready or recently failed
last)."""

from __future__ import annotations

import socket
import time

from tests.lab.balancer import Balancer, _ready

A, B, C = ("127.0.0.11", 6443), ("127.0.0.12", 6443), ("127.0.0.13", 6443)


def test_round_robin_over_every_backend() -> None:
    lb = Balancer([A, B, C])
    assert [lb.order()[0] for _ in range(4)] == [A, B, C, A]


def test_a_backend_that_failed_lately_is_tried_last() -> None:
    lb = Balancer([A, B, C])
    lb.failed[A] = time.monotonic()
    assert lb.order() == [B, C, A]
    lb.failed[A] = time.monotonic() - 60  # long ago: back in its turn
    assert lb.order()[0] == B
    assert A in lb.order()


def test_a_backend_that_is_not_ready_gets_no_client_while_others_are() -> None:
    """An API server whose etcd does not answer fails /readyz: a real load balancer's health
    check sends clients elsewhere (still to it when no backend is ready)."""
    lb = Balancer([A, B, C])
    lb.unready = {A, B}
    assert [lb.order()[0] for _ in range(3)] == [C, C, C]
    lb.unready = {A, B, C}
    assert sorted(lb.order()) == [A, B, C]


async def test_readyz_of_a_backend_that_does_not_listen_is_not_ready() -> None:
    assert await _ready(("127.0.0.1", _free_port())) is False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
