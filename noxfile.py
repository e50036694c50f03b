"""Sessions: tests (unit + lab end-to-end), unit (no root), lint, typecheck, e2e, bench, demo.

The lab needs root and a few Debian packages; `tests/lab/install-deps.sh` installs them and
every session that starts a lab calls it first, so a fresh machine needs nothing by hand.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# The lab's end-to-end tests mostly wait (on nodes booting, kubeadm phases, settle delays), so
# more pytest workers than cores pay (figures in the README, "Set-up"). `--dist loadfile` keeps a
# module's tests on one worker (they share module fixtures and fixed addresses, see
# tests/conftest.py); modules go out in collection order, the long end-to-end ones first, and
# the short unit modules fill the gaps at the end. `-n 0` in posargs runs on one worker.
PARALLEL = ("-n", "4", "--dist", "loadfile", "--no-loadscope-reorder")


def _lab_deps(session: nox.Session) -> None:
    session.run("bash", "tests/lab/install-deps.sh", external=True)


def _install(session: nox.Session) -> None:
    session.install("-e", ".[test]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Every test: unit tests and the end-to-end tests against the lab."""
    _lab_deps(session)
    _install(session)
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider", *PARALLEL, "--durations=15", *session.posargs
    )


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """Unit tests and the engine's tests against the in-process fleet of simulated nodes: no
    root, no lab, well under a minute."""
    _install(session)
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider", "-m", "not lab", "tests/unit", "tests/fleet",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """End-to-end tests against the lab only."""
    _lab_deps(session)
    _install(session)
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider", "-m", "lab", *PARALLEL, "--durations=15",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "k8slk_ops", "tests", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy>=1.10", "types-PyYAML")
    session.run("mypy", "--strict", "k8slk_ops")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Lab up (1 control plane, 3 workers), bootstrap, show the nodes, lab down."""
    _lab_deps(session)
    _install(session)
    session.run("python", "-m", "tests.demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Scale benchmark: bootstrap against simulated nodes (tests/fleet); prints figures."""
    _install(session)
    session.run("python", "-m", "tests.bench", *(session.posargs or ["--nodes", "1000"]))
