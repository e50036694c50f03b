"""The quick way through an ordinary YAML file: libyaml's C parser, YAML 1.2 values built here.

ruamel.yaml's round-trip loader (pure Python) is the reference for what a file means and for
every error message, but it costs about 0.3 ms per line: 1.5 s of CPU for a 5,000-node
inventory. PyYAML's C parser gives the same events with the same marks (line, column) in a
tenth of that time, and this module builds plain values and their positions from them.

It only takes the easy road. Whatever might read or fail differently from ruamel (a tag, an
anchor or alias, a directive, a second document, a top level that is not a mapping, a merge key, a key that is not a scalar, a
duplicate key, a timestamp, too deep, too many values, any parse error, characters ruamel's
reader refuses) makes it answer ``None``, and the caller reads the file with ruamel, which
gives the exact value or error. Plain scalars are resolved with ruamel's own YAML 1.2 rules
(``yes`` is a string, ``0755`` the int 755), never with PyYAML's YAML 1.1 ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.reader import Reader
from ruamel.yaml.resolver import implicit_resolvers

from k8slk_ops.inventory.validate import describe

_CLoader: Any
try:
    from yaml import CSafeLoader as _CLoader
    from yaml.events import (
        AliasEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
    )
except ImportError:  # PyYAML without libyaml: every file goes the ruamel way
    _CLoader = None

__all__ = ["Spot", "available", "read_fast"]

_STR, _NULL, _BOOL, _INT = (f"tag:yaml.org,2002:{t}" for t in ("str", "null", "bool", "int"))
_DECIMAL = re.compile(r"[-+]?[0-9]+\Z")
_BLOCK_HEADER = re.compile(r"[|>](?:[1-9][+-]?|[+-][1-9]?)?(?: +(?:#.*)?)?\Z")
_TRUE = frozenset(("true", "True", "TRUE"))
# Characters libyaml and ruamel may read differently: a tab as a separator (ruamel refuses
# some libyaml takes), a byte-order mark, line breaks beyond \r and \n.
_ODD = re.compile("[\t\ufeff\x85\u2028\u2029]")


def _resolvers() -> dict[str, list[tuple[str, Any]]]:
    """ruamel's YAML 1.2 implicit resolvers by first character (its own table, so ``on``,
    ``0755`` and ``1_000`` mean here what they mean there)."""
    table: dict[str, list[tuple[str, Any]]] = {}
    for versions, tag, regexp, first in implicit_resolvers:
        if (1, 2) in versions:
            for char in first:
                table.setdefault(char, []).append((tag, regexp))
    return table


_RESOLVERS = _resolvers()


class _Slow(Exception):
    """The file needs ruamel's reading."""


@dataclass(slots=True)
class Spot:
    """Where one value starts (0-based, as ruamel's ``lc``; -1 for an empty value, whose place
    only ruamel knows), with its children's spots: ``{key: (key line, key column, spot)}`` for
    a mapping, ``[spot]`` for a list."""

    line: int
    column: int
    children: dict[Any, tuple[int, int, Spot]] | list[Spot] | None = None


def available() -> bool:
    """Whether PyYAML's C parser is installed."""
    return _CLoader is not None


def read_fast(
    text: str, max_depth: int, max_values: int, scalar: Callable[[str], Any]
) -> tuple[dict[Any, Any], Spot] | None:
    """The plain mapping of the one document in ``text`` and its spots, or ``None`` when the
    file must be read by ruamel (also when it is empty or not a mapping, both errors). ``scalar``
    gives ruamel's value for a plain scalar resolved as a number other than a decimal int."""
    if _CLoader is None or _ODD.search(text) or Reader.NON_PRINTABLE.search(text):
        return None
    loader = _CLoader(text)
    try:
        return _Builder(loader, text, max_depth, max_values, scalar).stream()
    except Exception:  # _Slow, or libyaml's error: ruamel words it
        return None
    finally:
        loader.dispose()


class _Builder:
    """Plain values and their spots from libyaml's events, in one pass; raises ``_Slow`` at
    the first thing ruamel must read."""

    def __init__(
        self,
        loader: Any,
        text: str,
        max_depth: int,
        max_values: int,
        scalar: Callable[[str], Any],
    ) -> None:
        self.text = text
        self.lines: list[str] | None = None
        self.next = loader.get_event
        self.max_depth = max_depth - 1  # a level short of the limit: ruamel judges the edge
        self.left = max_values - 1
        self.scalar = scalar
        self.cache: dict[str, Any] = {}

    def stream(self) -> tuple[dict[Any, Any], Spot]:
        self.next()  # stream start
        start = self.next()
        if type(start) is StreamEndEvent or start.version is not None or start.tags:
            raise _Slow
        top = self.next()
        if type(top) is not MappingStartEvent:
            raise _Slow  # empty, or not a mapping: an error, worded by ruamel's road
        value, spot = self.node(top, 0)
        self.next()  # document end
        if type(self.next()) is not StreamEndEvent:
            raise _Slow  # a second document: ruamel says what it says
        return value, spot

    def node(self, event: Any, depth: int) -> tuple[Any, Spot]:
        self.left -= 1
        if self.left < 0 or event.anchor is not None or type(event) is AliasEvent:
            raise _Slow
        if event.tag is not None:
            raise _Slow
        mark = event.start_mark
        kind = type(event)
        if kind is ScalarEvent:
            if not event.implicit[0]:
                if event.style in ("|", ">"):
                    self.block_header(mark.line, mark.column)
                return event.value, Spot(mark.line, mark.column)
            if not event.value:  # libyaml and ruamel place an empty value differently
                return self.plain(""), Spot(-1, -1)
            return self.plain(event.value), Spot(mark.line, mark.column)
        if depth >= self.max_depth:
            raise _Slow
        if kind is SequenceStartEvent:
            return self.sequence(depth + 1, Spot(mark.line, mark.column))
        if kind is MappingStartEvent:
            return self.mapping(depth + 1, Spot(mark.line, mark.column))
        raise _Slow

    def sequence(self, depth: int, spot: Spot) -> tuple[list[Any], Spot]:
        items: list[Any] = []
        spots: list[Spot] = []
        event = self.next()
        while type(event) is not SequenceEndEvent:
            value, child = self.node(event, depth)
            items.append(value)
            spots.append(child)
            event = self.next()
        spot.children = spots
        return items, spot

    def mapping(self, depth: int, spot: Spot) -> tuple[dict[Any, Any], Spot]:
        out: dict[Any, Any] = {}
        spots: dict[Any, tuple[int, int, Spot]] = {}
        event = self.next()
        while type(event) is not MappingEndEvent:
            if type(event) is not ScalarEvent:
                raise _Slow  # a list or mapping as a key
            key, key_spot = self.node(event, depth)
            if key in spots or (key == "<<" and event.implicit[0]):
                raise _Slow  # a duplicate key (ruamel lists them all) or a merge key
            value, child = self.node(self.next(), depth)
            spots[key] = (key_spot.line, key_spot.column, child)
            out[_plain_key(key)] = value
            event = self.next()
        spot.children = spots
        return out, spot

    def block_header(self, line: int, column: int) -> None:
        """Let only a plain ``|``/``>`` header by, with no line of spaces before the first
        line of text: libyaml takes some ruamel refuses (``|#``, a blank line less indented
        than the text after it)."""
        if self.lines is None:
            if "\r" in self.text:
                raise _Slow
            self.lines = self.text.split("\n")
        if not _BLOCK_HEADER.match(self.lines[line], column):
            raise _Slow
        for text in self.lines[line + 1 :]:
            if text.strip(" "):
                return
            if text:
                raise _Slow

    def plain(self, text: str) -> Any:
        known = self.cache.get(text, self)
        if known is not self:
            return known
        value = self.resolve(text)
        self.cache[text] = value
        return value

    def resolve(self, text: str) -> Any:
        for tag, regexp in _RESOLVERS.get(text[:1], ()):
            if regexp.match(text):
                if tag == _NULL:
                    return None
                if tag == _BOOL:
                    return text in _TRUE
                if tag == _INT and _DECIMAL.match(text):
                    return int(text)
                if tag in (_INT, "tag:yaml.org,2002:float"):
                    return self.scalar(text)
                raise _Slow  # a timestamp, a merge key, ``=``: ruamel builds those
        return text


def _plain_key(key: Any) -> Any:
    """The key as ``yaml_loader.plain`` turns ruamel's key into a plain one."""
    if isinstance(key, str | bool | int | float):
        return key
    return describe(key)
