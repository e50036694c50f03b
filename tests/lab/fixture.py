"""Pytest support for the lab: a factory that starts labs and always takes them down, and the
rule for machines that cannot run one (skip with the reason; fail in CI, which installs
everything, so a broken CI machine never passes by skipping)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.lab import preflight
from tests.lab.errors import LabError
from tests.lab.image import DOUBLES, TOOLS
from tests.lab.lab import DEFAULT_VERSION, Lab


def require_lab(real_etcd: bool = True) -> None:
    """Skip (or, when env CI is set, fail) when this machine cannot run a lab."""
    found = preflight.problems(real_etcd)
    if not found:
        return
    reason = "the lab cannot run here: " + "; ".join(found)
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI is set: the lab's dependencies must be installed)")
    pytest.skip(reason)


def require_doubles() -> None:
    """Skip (fail in CI) when the kubeadm/kubectl/kubelet doubles are not in tests/lab/doubles."""
    missing = [t for t in TOOLS if not (DOUBLES / "bin" / t).exists()]
    if not missing:
        return
    reason = f"the lab's doubles are missing: {', '.join(missing)} in {DOUBLES / 'bin'}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class LabFactory:
    """``factory(nodes=3, ...)`` starts a lab under ``base``; ``close()`` downs them all."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.labs: list[Lab] = []

    def __call__(
        self,
        nodes: int = 3,
        control_planes: int = 1,
        kubernetes_version: str = DEFAULT_VERSION,
        settle: float = 0.2,
        ready_delay: float = 0.3,
        slot: int | None = None,
        load_balancer: bool = False,
        strict_network: bool = True,
        pod_network_addon: bool = True,
        real_etcd: bool = True,
    ) -> Lab:
        require_lab(real_etcd)
        lab = Lab.up(
            self.base / f"lab-{len(self.labs)}", nodes=nodes, control_planes=control_planes,
            kubernetes_version=kubernetes_version, settle=settle, ready_delay=ready_delay,
            slot=slot, load_balancer=load_balancer, strict_network=strict_network,
            pod_network_addon=pod_network_addon,
            real_etcd=real_etcd,
        )
        self.labs.append(lab)
        return lab

    def close(self) -> None:
        errors = []
        for lab in self.labs:
            try:
                lab.down()
            except LabError as e:
                errors.append(str(e))
        self.labs.clear()
        if errors:
            raise LabError("; ".join(errors))


@contextmanager
def lab_factory(base: Path) -> Iterator[LabFactory]:
    """A factory whose labs are taken down on exit, whatever the test did."""
    factory = LabFactory(base)
    try:
        yield factory
    finally:
        factory.close()
