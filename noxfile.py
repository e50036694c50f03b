"""Sessions: tests (unit + lab end-to-end), unit (no root; on 3.11, 3.12 and 3.13), lint,
typecheck, e2e, bench, demo; newest and lowest (the dependency ranges' two ends); lock.

What a session installs is `requirements/lock.txt`: every dependency, the test and dev tools and
the build backend, at exact versions with hashes, so what a user of `nox -s tests` runs is what
CI ran. `nox -s lock` writes it again from pyproject.toml (see the README, "Dependencies").
`newest` and `lowest` install the ends of pyproject's ranges instead, so a release that breaks
the tool shows up as a failing CI, not as a user's broken first run.

The lab needs root and a few Debian packages; `tests/lab/install-deps.sh` installs them and
every session that starts a lab calls it first, so a fresh machine needs nothing by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
PYTHONS = ["3.11", "3.12", "3.13"]
ROOT = Path(__file__).parent
LOCK = "requirements/lock.txt"
# The lab's end-to-end tests mostly wait (on nodes booting, kubeadm phases, settle delays), so
# more pytest workers than cores pay (figures in the README, "Set-up"). `--dist loadfile` keeps a
# module's tests on one worker (they share module fixtures and fixed addresses, see
# tests/conftest.py); modules go out in collection order, the long end-to-end ones first, and
# the short unit modules fill the gaps at the end. `-n 0` in posargs runs on one worker.
PARALLEL = ("-n", "4", "--dist", "loadfile", "--no-loadscope-reorder")
UNIT = ("-m", "not lab", "tests/unit", "tests/fleet")


def _expose_pyenv_pythons() -> None:
    """Make `python3.12` and `python3.13` findable where pyenv has them but does not expose them.

    pyenv's shims answer only for the versions it is told to use; a machine whose pyenv has
    3.12 and 3.13 installed but 3.11 selected would skip those sessions. A folder of links to the
    installed interpreters, named python3.X only, goes first on PATH: nothing else changes.
    """
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return
    root = Path(subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip())
    links = ROOT / ".nox" / ".pythons"
    for version in PYTHONS:
        found = sorted((root / "versions").glob(f"{version}.*/bin/python{version}"))
        if not found:
            continue
        links.mkdir(parents=True, exist_ok=True)
        link = links / f"python{version}"
        if not link.exists() or link.resolve() != found[-1].resolve():
            link.unlink(missing_ok=True)
            link.symlink_to(found[-1])
    if links.is_dir():
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"


_expose_pyenv_pythons()


def _lab_deps(session: nox.Session) -> None:
    session.run("bash", "tests/lab/install-deps.sh", external=True)


def _install(session: nox.Session) -> None:
    """The locked versions, hash-checked, then the project itself without resolving anything."""
    session.install("--require-hashes", "-r", LOCK)
    session.install("--no-deps", "--no-build-isolation", "-e", ".")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Every test: unit tests and the end-to-end tests against the lab."""
    _lab_deps(session)
    _install(session)
    session.run(
        "pytest", "-q", "-p", "no:cacheprovider", *PARALLEL, "--durations=15", *session.posargs
    )


@nox.session(python=PYTHONS)
def unit(session: nox.Session) -> None:
    """Unit tests and the engine's tests against the in-process fleet of simulated nodes: no
    root, no lab. `nox -s unit` runs them on every supported Python."""
    _install(session)
    session.run("pytest", "-q", "-p", "no:cacheprovider", "-n", "4", *UNIT, *session.posargs)


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
    _install(session)
    session.run("ruff", "check", "k8slk_ops", "tests", "noxfile.py")
    # No import cycle, no import of a layer above (the package's folders, in order), and
    # kubeadm/ and inventory/ import nothing of the engine (docs/architecture.md).
    session.run("python", "tests/unit/test_import_contract.py")
    # Dead code: [tool.vulture] in pyproject.toml; what is used by name is in vulture_whitelist.py.
    session.run("vulture")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    _install(session)
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


@nox.session(python=PYTHONS[-1], reuse_venv=False)
def newest(session: nox.Session) -> None:
    """The newest versions pyproject allows, on the newest Python supported (what a user who
    installs today most likely gets): the unit tests, then the command line as a user meets it
    (every command's help, the shipped inventories checked, a 20-node bootstrap of the
    in-process fleet, nothing from a dependency on stderr). Prints the versions it got."""
    session.install("--upgrade", "--upgrade-strategy", "eager", "-e", ".[test]")
    session.run("python", "-m", "pip", "list", "--format", "freeze", "--exclude-editable")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "-n", "4", *UNIT, *session.posargs)
    session.run("python", "-m", "tests.smoke")


@nox.session(python=PYTHONS[1], reuse_venv=False)
def lowest(session: nox.Session) -> None:
    """The lowest versions pyproject allows for each of the tool's own dependencies (the test
    tools stay locked): the unit tests and the command-line smoke, so the lower bounds are
    true. On the middle Python supported, so that with `tests` (3.11, the lock) and `newest`
    (3.13) every supported Python runs the unit tests once, and a lower bound that does not
    install on a newer Python (PyYAML 6.0 on 3.12) shows. Prints the versions it got."""
    session.install("--require-hashes", "-r", LOCK)
    pins = Path(session.create_tmp()) / "lowest.txt"
    session.run(
        "uv", "pip", "compile", "--quiet", "--resolution", "lowest-direct", "--python-version",
        PYTHONS[1], "pyproject.toml", "-o", str(pins),
    )
    session.install("-r", str(pins))
    session.install("--no-deps", "--no-build-isolation", "-e", ".")
    session.run("python", "-m", "pip", "list", "--format", "freeze", "--exclude-editable")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "-n", "4", *UNIT, *session.posargs)
    session.run("python", "-m", "tests.smoke")


@nox.session(python=PYTHON)
def lock(session: nox.Session) -> None:
    """Write requirements/lock.txt again: the newest versions pyproject allows, with hashes,
    for every Python the project supports. Review the diff, run `nox -s tests`, commit both."""
    session.install("uv")
    for name, inputs, extras in (
        (LOCK, ["pyproject.toml", "requirements/build.in"], ["--extra", "test", "--extra", "dev"]),
        ("requirements/nox.txt", ["requirements/nox.in"], []),
    ):
        session.run(
            "uv", "pip", "compile", "--quiet", "--universal", "--python-version", PYTHON,
            "--generate-hashes", "--upgrade", *extras, *inputs, "-o", name,
        )
