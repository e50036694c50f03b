"""A small, deterministic YAML emitter for kubeadm configuration files.

Why not a general dumper: kubeadm reads YAML through sigs.k8s.io/yaml, which follows YAML 1.1
(``yes``, ``on``, ``0x1f``, ``1:30`` are not strings there), while most Python dumpers follow
YAML 1.2. Here a string is written plain only when it is plainly a string under both, and
double-quoted otherwise. Keys are sorted (``apiVersion`` and ``kind`` first), so the same input
always gives the same bytes whatever order the caller's dicts were built in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from k8slk_ops.kubeadm.errors import RenderError

# Characters that may appear in a plain scalar we emit; everything else gets quoted.
_PLAIN_RE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@=+~-]*")
# Anything that looks numeric, sexagesimal, a date or a time in YAML 1.1 or 1.2.
_NUMERIC_RE = re.compile(r"[-+]?(?:\.?[0-9][0-9_.:eE+-]*|0[xXoObB][0-9A-Fa-f_]*)")
_SPECIAL_WORDS = frozenset(
    {"y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", "nan", "inf", "="}
)
_FIRST_KEYS = ("apiVersion", "kind")


def _printable(ch: str) -> bool:
    """The YAML printable set, minus the characters YAML 1.1 reads as line breaks.

    NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are escaped rather than written: a YAML 1.1
    reader folds them like newlines even inside double quotes.
    """
    o = ord(ch)
    return (
        0x20 <= o <= 0x7E
        or 0xA0 <= o <= 0xD7FF
        or 0xE000 <= o <= 0xFFFD
        or 0x10000 <= o <= 0x10FFFF
    ) and o not in (0xFEFF, 0x2028, 0x2029)


def _quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif _printable(ch):
            out.append(ch)
        else:
            o = ord(ch)
            if o <= 0xFF:
                out.append(f"\\x{o:02x}")
            elif o <= 0xFFFF:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def needs_quotes(s: str) -> bool:
    """True when ``s`` written plain could be read as something other than this string."""
    if not _PLAIN_RE.fullmatch(s):
        return True
    if s.lower() in _SPECIAL_WORDS:
        return True
    if _NUMERIC_RE.fullmatch(s):
        return True
    # A colon at the end, or "key:value"-like forms, are left alone only when harmless:
    # sexagesimal numbers are caught above, and a plain "a:b" is a string in both versions.
    return s.endswith(":")


def scalar(value: object) -> str:
    """One scalar, as YAML text that reads back as exactly ``value``."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        # YAML 1.1 wants a dot in the mantissa ("1.0e+20", not "1e+20").
        mantissa, e, exponent = repr(value).partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        return mantissa + e + exponent
    if isinstance(value, str):
        return _quote(value) if needs_quotes(value) else value
    raise RenderError(f"cannot write a {type(value).__name__} into a kubeadm config: {value!r}")


def _ordered_keys(mapping: Mapping[str, Any]) -> list[str]:
    for key in mapping:
        if not isinstance(key, str):
            raise RenderError(f"configuration keys must be strings, not {key!r}")
    first = [k for k in _FIRST_KEYS if k in mapping]
    return first + sorted(k for k in mapping if k not in _FIRST_KEYS)


def _is_collection(value: object) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, str | bytes)
    )


def _emit(value: object, indent: int, lines: list[str], prefix: str) -> None:
    """Append ``value`` to ``lines``; ``prefix`` is what precedes it on its first line."""
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            lines.append(f"{prefix}{{}}")
            return
        first = True
        for key in _ordered_keys(value):
            head = prefix if first else pad
            first = False
            item = value[key]
            k = scalar(key)
            if _is_collection(item) and item:
                lines.append(f"{head}{k}:")
                child_indent = indent + 2 if isinstance(item, Mapping) else indent
                _emit(item, child_indent, lines, " " * child_indent)
            else:
                _emit(item, indent, lines, f"{head}{k}: ")
        return
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if not value:
            lines.append(f"{prefix}[]")
            return
        first = True
        for item in value:
            head = prefix if first else pad
            first = False
            if isinstance(item, Mapping) and item:
                _emit(item, indent + 2, lines, f"{head}- ")
            elif _is_collection(item) and item:
                lines.append(f"{head}-")
                _emit(item, indent + 2, lines, " " * (indent + 2))
            else:
                _emit(item, indent + 2, lines, f"{head}- ")
        return
    lines.append(f"{prefix}{scalar(value)}")


def dump_document(doc: Mapping[str, Any]) -> str:
    """One YAML document (block style, two-space indent, trailing newline)."""
    lines: list[str] = []
    _emit(doc, 0, lines, "")
    return "\n".join(lines) + "\n"


def dump_all(docs: Sequence[Mapping[str, Any]]) -> str:
    """Several documents separated by ``---``, as kubeadm's ``--config`` expects."""
    return "---\n".join(dump_document(d) for d in docs)
