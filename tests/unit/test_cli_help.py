"""What a new user sees first: each command's help in the usual notation, and nothing from a
dependency on stderr (tests/smoke.py runs the same checks against the newest and the lowest
versions pyproject allows)."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k8slk_ops.cli import depwarnings
from k8slk_ops.cli.main import app
from tests.smoke import command_paths, help_problems, write_login_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "k8slk-ops")
def test_every_commands_help_reads_in_the_usual_notation(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert help_problems(result.output) == []
    if path and path[-1] not in {"inventory", "certs", "etcd"} and path != ("plan",):
        assert "INVENTORY" in next(line for line in result.output.splitlines() if "Usage:" in line)


def test_help_problems_names_typer_0_27s_notation() -> None:
    """The checker itself: the notation Typer 0.27 and later print is caught."""
    text = (
        " Usage: k8slk-ops inventory check [OPTIONS] {inventory}\n"
        "│ *    inventory      <path>  Inventory file. [required] │\n"
        "│ --help                <bool>  Show this message and exit. │\n"
    )
    assert len(help_problems(text)) == 3


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "k8slk_ops", *args], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )


def _dependencies_warn_at_import() -> bool:
    """Whether this environment's asyncssh and cryptography warn when imported (cryptography 47
    and later deprecate the DSA support asyncssh imports)."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import asyncssh"], capture_output=True, text=True,
    )
    return done.returncode != 0 and "Warning" in done.stderr


def test_version_and_inventory_check_print_nothing_on_stderr(tmp_path: Path) -> None:
    write_login_keys(tmp_path)
    version = _cli("--version", home=tmp_path)
    assert (version.returncode, version.stderr) == (0, "")
    check = _cli("inventory", "check", str(ROOT / "inventories/example.yml"), home=tmp_path)
    assert check.stderr == "" and check.returncode == 0, check.stdout


def test_a_dependencys_warnings_go_to_the_log_file_not_stderr(tmp_path: Path) -> None:
    if not _dependencies_warn_at_import():
        pytest.skip("the installed asyncssh and cryptography import without a warning")
    write_login_keys(tmp_path)
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        "cluster: {name: quiet, kubernetesVersion: v1.29.0, controlPlaneEndpoint: 127.0.0.1:6443}\n"
        "ssh: {identityFile: ~/.ssh/id_ed25519, port: 9, connectTimeout: 2, configFile: none}\n"
        "nodes:\n  - {name: cp-1, address: 127.0.0.1, role: control-plane}\n"
    )
    log = tmp_path / "run.log"
    done = _cli("status", str(inventory), "--log-file", str(log), home=tmp_path)
    assert "Warning" not in done.stderr, done.stderr
    assert "CryptographyDeprecationWarning" in log.read_text()
    verbose = _cli("status", str(inventory), "-v", home=tmp_path)
    assert "CryptographyDeprecationWarning" in verbose.stderr


def test_held_warnings_are_released_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    shown = warnings.showwarning
    try:
        depwarnings.hold()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = depwarnings._hold
            warnings.warn("from a dependency", UserWarning, stacklevel=1)
            assert any("from a dependency" in text for text in depwarnings.held())
            with caplog.at_level(logging.INFO, logger=depwarnings.LOGGER):
                depwarnings.release()
                warnings.warn("after the release", UserWarning, stacklevel=1)
        assert depwarnings.held() == []
        assert "UserWarning: from a dependency" in caplog.text
        assert "UserWarning: after the release" in caplog.text
    finally:
        warnings.showwarning = shown
