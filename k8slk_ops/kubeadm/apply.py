"""``kubectl apply -f -``: what it applied (stdout) and each error it gave (stderr), typed.

kubectl applies every document it can and then prints its errors: one as ``error: <message>``,
several one after the other without the prefix; a message may run over several lines
(``resource mapping not found ...`` is followed by ``ensure CRDs are installed first``, a failed
patch prints the patch and the object). Its last line alone is often a hint that says nothing
of the cause, so every line is kept, grouped by the error it belongs to. An error names its
object when kubectl does (a mapping error's ``name: "x" namespace: "y"``, a patch error's
``GroupVersionKind`` and ``Name``, a server's ``DaemonSet.apps "x" is invalid``); a server's
``error when creating "STDIN": ...`` does not, and the caller finds it among the documents
stdout did not report. The texts are those of kubectl 1.27 to 1.33 (the lab checks them
against the real binaries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from k8slk_ops.kubeadm.summary import NO_OUTPUT

MAX_LINES = 400  # a report keeps this many of kubectl's lines (the rest are counted)
MAX_LINE_CHARS = 2000  # a failed patch prints the whole object on one line

# Where an error starts; any other line continues the error above it.
_STARTS = re.compile(
    r"(error: |Error from server|error when |resource mapping not found |unable to recognize |"
    r"The \S+ \"[^\"]*\" is invalid)"
)
_MAPPING = re.compile(
    r'resource mapping not found for name: "(?P<name>[^"]*)" namespace: "(?P<namespace>[^"]*)" '
    r'from "[^"]*": no matches for kind "(?P<kind>[^"]*)" in version "(?P<version>[^"]*)"'
)
_RECOGNIZE = re.compile(r'no matches for kind "(?P<kind>[^"]*)" in version "(?P<version>[^"]*)"')
_INFO = re.compile(
    r'GroupVersionKind: "(?P<version>[^",]*), Kind=(?P<kind>[^"]*)"\s*'
    r'Name: "(?P<name>[^"]*)", Namespace: "(?P<namespace>[^"]*)"'
)
_SERVER_NAMED = re.compile(
    r'(?P<kind>[A-Z][A-Za-z0-9]*)(?:\.[a-z0-9.-]+)? "(?P<name>[^"]+)" is (?:invalid|forbidden)'
)
_PER_OBJECT = re.compile(r'error when \w+|error validating "')
# kubectl's ``<what> "<source>": `` before the cause (``error when creating "STDIN": ``,
# ``from "STDIN": ``, a patch error's ``for: "STDIN": error when patching "STDIN": ``).
_SOURCE = re.compile(r'(?:error when [a-z]+(?: [a-z]+)?|from|for:|error validating) "[^"\n]*": ')
_RESULT = re.compile(
    r"(?P<resource>[a-z0-9][a-z0-9.-]*)/(?P<name>\S+) "
    r"(?:created|configured|unchanged|serverside-applied)(?: \(.*\))?"
)


@dataclass(frozen=True)
class ApplyError:
    """One error kubectl printed: its lines as printed, the cause in one line, and the object
    when kubectl named it (empty strings when it did not)."""

    lines: tuple[str, ...]
    cause: str
    kind: str = ""
    api_version: str = ""
    name: str = ""
    namespace: str = ""
    per_object: bool = True  # False: about the apply as a whole (unparsable input, no server)

    @property
    def named(self) -> bool:
        return bool(self.kind and self.name)


@dataclass(frozen=True)
class ApplyOutput:
    """kubectl apply's answer: the objects it reported on stdout (``resource[.group]``, name)
    and its errors, in the order printed."""

    applied: frozenset[tuple[str, str]]
    errors: tuple[ApplyError, ...]
    lines: tuple[str, ...]  # every stderr line, bounded (MAX_LINES, MAX_LINE_CHARS)


def result_label(kind: str, api_version: str) -> str:
    """How kubectl's stdout names an object's type: ``daemonset.apps``, ``configmap``."""
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return f"{kind.lower()}.{group}" if group else kind.lower()


def parse_apply_output(stdout: str, stderr: str) -> ApplyOutput:
    """stdout's ``kind[.group]/name verb`` lines and stderr's errors (stdout's other lines when
    stderr is empty: a wrapper may have merged them)."""
    applied: set[tuple[str, str]] = set()
    other: list[str] = []
    for line in stdout.splitlines():
        match = _RESULT.fullmatch(line.strip())
        if match:
            applied.add((match["resource"], match["name"]))
        elif line.strip():
            other.append(line)
    raw = [line.rstrip() for line in stderr.splitlines()]
    if not any(raw):
        raw = other
    while raw and not raw[-1]:
        raw.pop()
    return ApplyOutput(frozenset(applied), _errors(raw), _bounded(raw))


def _bounded(lines: list[str]) -> tuple[str, ...]:
    def cut(line: str) -> str:
        over = len(line) - MAX_LINE_CHARS
        return line if over <= 0 else f"{line[:MAX_LINE_CHARS]}... ({over} more characters)"

    kept = [cut(line) for line in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        kept.append(f"... {len(lines) - MAX_LINES} more lines")
    return tuple(kept) or (NO_OUTPUT,)


def _errors(lines: list[str]) -> tuple[ApplyError, ...]:
    groups: list[list[str]] = []
    for line in lines:
        if not groups or _STARTS.match(line.lstrip()):
            groups.append([line])
        else:
            groups[-1].append(line)
    return tuple(_error(group) for group in groups if any(g.strip() for g in group))


def _error(lines: list[str]) -> ApplyError:
    text = "\n".join(lines)
    head = lines[0].strip()
    if head.startswith("error: "):
        head = head[len("error: "):]
    server = re.match(r"Error from server(?: \([^)]*\))?: ", head)
    body = "\n".join([head, *lines[1:]])
    sources = list(_SOURCE.finditer(body))
    detail = body[sources[-1].end():] if sources else body
    first, *rest = [" ".join(line.split()) for line in detail.split("\n") if line.strip()] or [""]
    cause = "; ".join([first, *rest]) if len(rest) <= 2 else first  # a hint line is kept
    if server and not cause.startswith(server.group(0)):
        cause = server.group(0) + cause
    # Only kubectl's per-object forms are tied to a document; anything else (the input could
    # not be parsed, the server did not answer) is about the apply as a whole.
    per_object = bool(_PER_OBJECT.search(head))
    for pattern in (_MAPPING, _INFO, _SERVER_NAMED, _RECOGNIZE):
        found = pattern.search(text)
        if found:
            fields = found.groupdict()
            return ApplyError(
                tuple(lines), cause, fields.get("kind", ""), fields.get("version", ""),
                fields.get("name", ""), fields.get("namespace", ""),
            )
    return ApplyError(tuple(lines), cause, per_object=per_object)
