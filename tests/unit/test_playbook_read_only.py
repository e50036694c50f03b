"""``readOnly: true`` switches a run's protections off (no locks, a refused host key is a row
of the report), so a playbook that says it may hold only steps that change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8slk_ops.base.errors import UsageError
from k8slk_ops.engine.playbook import builtin_path, load_builtin, load_playbook
from k8slk_ops.steps import STEPS
from tests.fleet.inprocess import InProcessFleet
from tests.unit.clirun import K8slk

STATUS = builtin_path("status").read_text()


def copy_of_status(tmp_path: Path, extra: str) -> tuple[Path, int]:
    """status.yml copied, its readOnly kept, ``extra`` stages added; the first added line."""
    book = tmp_path / "mine.yml"
    text = STATUS.rstrip("\n") + "\n"
    book.write_text(text + extra)
    return book, len(text.splitlines()) + 1


def test_a_copy_of_status_with_a_run_step_is_refused_at_the_step(tmp_path: Path) -> None:
    book, first = copy_of_status(tmp_path, "  - name: tidy\n    hosts: workers\n    steps:\n"
                                           "      - run: {command: 'rm -rf /var/log/old'}\n")
    with pytest.raises(UsageError) as info:
        load_playbook(book, STEPS)
    message = str(info.value)
    assert f"{book}:{first + 3}:" in message  # the step's own line
    assert "'run' changes nodes or the cluster" in message and "readOnly: true" in message


def test_a_drain_in_a_cleanup_is_refused_too(tmp_path: Path) -> None:
    book, first = copy_of_status(
        tmp_path,
        "  - name: look\n    hosts: workers\n    steps:\n      - status: {}\n"
        "    cleanup:\n      - drain: {}\n",
    )
    with pytest.raises(UsageError) as info:
        load_playbook(book, STEPS)
    assert f"{book}:{first + 5}:" in str(info.value) and "'drain'" in str(info.value)


def test_the_same_steps_load_without_read_only(tmp_path: Path) -> None:
    book = tmp_path / "mine.yml"
    book.write_text(STATUS.replace("readOnly: true\n", "") + "  - name: tidy\n    hosts: workers\n"
                    "    steps:\n      - run: {command: 'true'}\n")
    assert load_playbook(book, STEPS).read_only is False


@pytest.mark.parametrize("name", ["status", "kubeconfig", "certs-check", "etcd-snapshot",
                                  "etcd-status"])
def test_the_built_in_read_only_playbooks_load(name: str) -> None:
    path = builtin_path(name)
    if not path.is_file():
        pytest.skip(f"no built-in {name}")
    assert load_builtin(name, STEPS).read_only is True


def test_the_cli_refuses_it_with_exit_2_before_contacting_a_node(
    fleet: InProcessFleet, k8slk: K8slk, tmp_path: Path
) -> None:
    book, first = copy_of_status(tmp_path, "  - name: tidy\n    hosts: workers\n    steps:\n"
                                           "      - drain: {}\n")
    run = k8slk("run", book, fleet.inventory)
    assert run.code == 2, run.why()
    assert f"{book}:{first + 3}:" in run.stderr and "'drain'" in run.stderr
    assert fleet.stats()["accepted"] == 0
