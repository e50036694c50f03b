"""The YAML inventory format: read it with positions, refuse what YAML lets slip.

An ordinary file is read by libyaml's C parser (``yaml_fast``: plain values and the place of
every key and item, YAML 1.2 as ruamel reads it), twenty times cheaper than ruamel.yaml. Every
other file, and every file with an error, is read by ruamel.yaml's round-trip loader, which
keeps the line and column of every key and item, so that each error points at its place with
the same words on either road. Duplicate keys are found on the composed node graph, all of
them, because a loader would keep one of the two values silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from k8slk_ops.inventory import yaml_fast
from k8slk_ops.inventory.errors import InventoryError, InventoryIssue, Loc, field_path
from k8slk_ops.inventory.located import Locator, SpotLocator, YamlLocator
from k8slk_ops.inventory.model import Inventory
from k8slk_ops.inventory.source import place, read_text
from k8slk_ops.inventory.validate import build_inventory, describe

__all__ = ["load_yaml_document", "load_yaml_inventory", "parse_yaml", "plain", "read_text"]

MAX_DEPTH = 32  # levels of nesting; an inventory needs six, kubeadm overrides a few more
MAX_VALUES = 100_000  # scalars, mappings and lists in one file; 10,000 nodes need ~70,000


class Refused(MarkedYAMLError):
    """Something YAML allows that a configuration file here may not hold (said at its place)."""


class _BoundedComposer(Composer):
    """ruamel's composer, refusing aliases (expanding them by copying is how a file of a few
    lines grows into gigabytes) and counting the values it builds."""

    built = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            raise Refused(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not accepted: write the value out",
                event.start_mark,
            )
        self.built += 1
        if self.built > MAX_VALUES:
            raise Refused(
                None,
                None,
                f"more than {MAX_VALUES:,} values in one file",
                self.parser.peek_event().start_mark,
            )
        return super().compose_node(parent, index)


_FLOW_CHARS = re.compile(r"""[\[\]{}'"#\n]""")


def check_flow_depth(path: Path, text: str) -> None:
    """Refuse flow collections (``[[[[...``) nested deeper than ``MAX_DEPTH`` before the YAML
    scanner sees them: its look-ahead over thousands of open brackets takes seconds.

    A lexical pass: quoted text and comments are skipped, block nesting is left to the
    composer. It may only under-count (a stray quote in plain text), never refuse a real file."""
    depth, quote, comment = 0, "", False
    for m in _FLOW_CHARS.finditer(text):
        char, at = m.group(), m.start()
        if comment:
            comment = char != "\n"
        elif quote:
            if char == quote and not (quote == '"' and _escaped(text, at)):
                quote = ""
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line, column = place(text, at)
                raise _one(path, line, column, f"nested more than {MAX_DEPTH} levels deep")
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char == "#":
            comment = at == 0 or text[at - 1] in " \t\n"
        elif char in "'\"" and (at == 0 or text[at - 1] in " \t\n[{,:-"):
            quote = char


def _escaped(text: str, at: int) -> bool:
    backslashes = 0
    while at > backslashes and text[at - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Composer = _BoundedComposer
    yaml.max_depth = MAX_DEPTH
    return yaml


def _one(path: Path, line: int, column: int, message: str, field: str = "") -> InventoryError:
    return InventoryError([InventoryIssue(str(path), line, column, field, message)])


def parse_yaml(path: Path, text: str) -> Any:
    """The round-trip tree of one YAML document (None when empty), or an InventoryError with
    the syntax error's place, or with every duplicate key.

    The text is parsed once; only when the loader meets a duplicate key is it composed again
    to find all of them (the loader stops at the first)."""
    check_flow_depth(path, text)
    try:
        return _yaml().load(text)
    except DuplicateKeyError as exc:
        raise _all_duplicates(path, text) or _syntax_error(path, exc) from None
    except Refused as exc:
        raise _refusal(path, exc, str(exc.problem)) from None
    except MaxDepthExceededError as exc:
        raise _refusal(path, exc, f"nested more than {MAX_DEPTH} levels deep") from None
    except MarkedYAMLError as exc:
        raise _syntax_error(path, exc) from None
    except ReaderError as exc:
        line, column = place(text, exc.position)
        what = f"character {exc.character!r}" if isinstance(exc.character, str) else "character"
        raise _one(path, line, column, f"{what} is not allowed in YAML text") from None
    except (YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise _one(path, 0, 0, f"YAML error: {exc}") from None


def _all_duplicates(path: Path, text: str) -> InventoryError | None:
    issues = _duplicate_keys(str(path), _yaml().compose(text), ())
    return InventoryError(issues) if issues else None


def _refusal(path: Path, exc: MarkedYAMLError, message: str) -> InventoryError:
    mark = exc.problem_mark
    if mark is None:
        return _one(path, 0, 0, message)
    return _one(path, mark.line + 1, mark.column + 1, message)


def _syntax_error(path: Path, exc: MarkedYAMLError) -> InventoryError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "cannot parse"
    if exc.context and exc.problem:
        problem = f"{exc.problem} ({exc.context})"
    if mark is None:
        return _one(path, 0, 0, f"YAML syntax error: {problem}")
    return _one(path, mark.line + 1, mark.column + 1, f"YAML syntax error: {problem}")


def _duplicate_keys(file: str, node: Node, loc: Loc) -> list[InventoryIssue]:
    issues: list[InventoryIssue] = []
    if isinstance(node, MappingNode):
        seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            key: str | int = key_node.value if isinstance(key_node, ScalarNode) else "?"
            if isinstance(key_node, ScalarNode) and key_node.value != "<<":
                ident = (str(getattr(key_node.tag, "value", key_node.tag)), str(key_node.value))
                mark = key_node.start_mark
                if ident in seen:
                    issues.append(
                        InventoryIssue(
                            file,
                            mark.line + 1,
                            mark.column + 1,
                            field_path((*loc, key)),
                            f"duplicate key {key_node.value!r} (first at line {seen[ident]})",
                        )
                    )
                else:
                    seen[ident] = mark.line + 1
            issues.extend(_duplicate_keys(file, value_node, (*loc, key)))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            issues.extend(_duplicate_keys(file, item, (*loc, index)))
    return issues


def plain(node: Any) -> Any:
    """ruamel's commented containers and scalar subclasses as plain Python values, so that
    strict validation sees ``str``, ``int``, ``dict``, ``list``."""
    if isinstance(node, dict):
        return {_plain_key(k): plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _plain_key(key: Any) -> Any:
    if isinstance(key, str):
        return str(key)
    return plain(key) if isinstance(key, bool | int | float) else describe(key)


def load_yaml_document(path: Path, text: str | None = None) -> tuple[Any, Locator]:
    """A YAML file's plain data and its locator; empty files and non-mappings are errors.

    libyaml reads ordinary files (``yaml_fast``); ruamel reads the others, and words every
    error, so both roads give the same values, positions and messages."""
    text = read_text(path) if text is None else text
    check_flow_depth(path, text)
    fast = yaml_fast.read_fast(text, MAX_DEPTH, MAX_VALUES, _number)
    if fast is not None:
        data, spot = fast
        return data, SpotLocator(str(path), spot, lambda: YamlLocator(str(path), _yaml().load(text)))
    tree = parse_yaml(path, text)
    if tree is None:
        raise _one(path, 1, 1, "the file is empty")
    if not isinstance(tree, dict):
        raise _one(path, 1, 1, f"the top level must be a mapping, got {describe(plain(tree))}")
    return plain(tree), YamlLocator(str(path), tree)


def _number(text: str) -> Any:
    """ruamel's value for one plain scalar it resolves as a number (``0x1F``, ``1_000``, ``.5``)."""
    return plain(_yaml().load(text))


def load_yaml_inventory(path: Path, text: str | None = None) -> Inventory:
    """Load and validate a YAML inventory."""
    data, locator = load_yaml_document(path, text)
    return build_inventory(data, locator, path)
