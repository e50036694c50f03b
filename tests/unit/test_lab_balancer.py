"""The lab load balancer's choice of backend (round robin, recent failures last)."""

from __future__ import annotations

import time

from tests.lab.balancer import Balancer

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
