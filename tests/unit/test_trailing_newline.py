"""A value with a trailing newline is not a valid value: every pattern matches the whole text.

Python's ``$`` also matches before a final newline, so ``re.match(r"^v\\d+...$")`` took
``"v1.31.3\\n"``; a quoted YAML string (``"v1.31.3\\n"``) or an INI value carries one easily,
and it would reach kubeadm's configuration or a command line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from k8slk_ops.base import hosts
from k8slk_ops.inventory import InventoryError, checks, load_inventory
from k8slk_ops.kubeadm import formats

TOKEN = "abcdef.0123456789abcdef"
KEY = "0" * 64


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (checks.version, "v1.31.3"),
        (checks.dns_label, "linuxkit"),
        (checks.dns_subdomain, "w-1.example.com"),
        (checks.host, "w1.example.com"),
        (checks.user_name, "root"),
        (checks.label_key, "example.com/zone"),
        (checks.label_value, "a"),
        (checks.san, "api.example.com"),
    ],
)
def test_a_trailing_newline_is_refused(check: object, good: str) -> None:
    assert callable(check)
    check(good)  # the value itself is fine
    with pytest.raises(ValueError):
        check(good + "\n")


def test_host_names_tokens_and_keys_are_matched_whole() -> None:
    assert checks.is_hostname("w1.example.com")
    assert not checks.is_hostname("w1.example.com\n")
    assert formats.is_token(TOKEN) and not formats.is_token(TOKEN + "\n")
    assert formats.is_certificate_key(KEY) and not formats.is_certificate_key(KEY + "\n")
    assert hosts.check("w-1") is None
    assert hosts.check("w-1\n") is not None


def test_an_inventory_version_with_a_newline_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(textwrap.dedent("""\
        cluster:
          name: linuxkit
          kubernetesVersion: "v1.31.3\\n"
        nodes:
          - {name: cp-1, address: "cp1.example.com\\n", role: control-plane}
        """))
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    lines = {issue.line for issue in info.value.issues}
    assert lines == {3, 5}, [str(i) for i in info.value.issues]
