"""The facts probe: a small POSIX script k8slk-ops runs in one round trip, evaluated here.

The script is read line by line and each line is matched against the shell idioms a probe is
made of (``echo "k=$(...)"``, ``test -e P && echo k=1 || echo k=0``, ``CMD | sed 's/^/p /'``),
so the keys, the order and the prefixes come from the script itself, not from a copy of it: a
reordered or extended probe still gets the answers a node would give. Lines it cannot read
print nothing, as under the probe's own ``exec 2>/dev/null``.
"""

from __future__ import annotations

import re
import shlex

from tests.fleet.node import SimNode

_SED_PREFIX = re.compile(r"^(?P<cmd>.*?)\s*\|\s*sed\s+'s/\^/(?P<prefix>[^/]*)/'\s*$")
_ECHO_SUBST = re.compile(r'^echo\s+"(?P<key>[\w.-]+)=\$\((?P<cmd>.*)\)"\s*$')
_TEST_FLAG = re.compile(
    r"^test -[ef] (?P<path>\S+) && echo (?P<key>[\w.-]+)=(?P<yes>\S*) \|\| echo (?P=key)=(?P<no>\S*)$"
)
_TEST_THEN = re.compile(r"^test -[ef] (?P<path>\S+) && (?P<rest>.*)$")
_HEAD = re.compile(r"^head -c (?P<n>\d+) (?P<path>\S+)(?:\s*\|\s*tr (?P<tr>.*))?$")
# The log section: one awk pass that keeps the latest attempt (see ``log_probe`` in facts.py).
_AWK_LOG = re.compile(
    r"^(?:LC_ALL=C )?awk -v cap=(?P<cap>\d+) '(?P<attempt>[^{']*)\{ n = 0 \};"
    r" \{ line\[\+\+n\] = \$0; mark\[n\] = \((?P<marks>[^{']*)\) \};"
    r" END \{[^']*\}' (?P<path>\S+)$"
)
_NEEDLE = re.compile(r'index\(\$0, "(?P<needle>[^"]*)"\)')


def run_probe(node: SimNode, script: str) -> bytes:
    out: list[str] = []
    for line in _logical_lines(script):
        out.extend(_line(node, line))
    return "".join(s + "\n" for s in out).encode()


def _logical_lines(script: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", script)
    return [line.strip() for line in joined.splitlines() if line.strip()]


def _line(node: SimNode, line: str) -> list[str]:
    m = _TEST_FLAG.match(line)
    if m:
        return [f"{m['key']}={m['yes'] if node.exists(m['path']) else m['no']}"]
    m = _TEST_THEN.match(line)
    if m:
        return _line(node, m["rest"]) if node.exists(m["path"]) else []
    m = _AWK_LOG.match(line)
    if m:
        return _awk_log(node, m)
    m = _ECHO_SUBST.match(line)
    if m:
        value = _substitute(node, m["cmd"])
        return [] if value is None else [f"{m['key']}={value}"]
    m = _SED_PREFIX.match(line)
    if m:
        lines = _command_lines(node, m["cmd"])
        return [m["prefix"] + text for text in lines]
    return []


def _awk_log(node: SimNode, m: re.Match[str]) -> list[str]:
    """What the probe's awk prints for the node's log: the needles are read from the program."""
    data = node.read(m["path"])
    if data is None:
        return []
    return awk_log_cut(
        data.decode(errors="replace").splitlines(),
        int(m["cap"]),
        [n["needle"] for n in _NEEDLE.finditer(m["attempt"])],
        [n["needle"] for n in _NEEDLE.finditer(m["marks"])],
    )


def awk_log_cut(lines: list[str], cap: int, attempt: list[str], marks: list[str]) -> list[str]:
    """The latest attempt's lines: the marked ones all, the others newest first within ``cap``
    bytes (each counted with its newline), and ``log_cut=N`` when some were left out."""
    lines = next(
        (lines[i:] for i in range(len(lines) - 1, -1, -1) if any(a in lines[i] for a in attempt)),
        lines,
    )
    show = [False] * len(lines)
    room, cut = cap, 0
    for i in range(len(lines) - 1, -1, -1):
        if any(k in lines[i] for k in marks):
            show[i] = True
            continue
        size = len(lines[i].encode()) + 1
        if size <= room:
            room -= size
            show[i] = True
        else:
            room, cut = -1, cut + 1
    head = [f"log_cut={cut}"] if cut else []
    return head + [f"log {text}" for text, shown in zip(lines, show, strict=True) if shown]


def _substitute(node: SimNode, cmd: str) -> str | None:
    """The value of ``$(cmd)``: its output, trailing newlines dropped."""
    cmd = cmd.strip()
    if "/proc/cpuinfo" in cmd:
        return str(node.config.cpus)
    if "/proc/meminfo" in cmd:
        return str(node.config.memory_kb)
    if cmd in ("cat /proc/sys/kernel/hostname", "hostname", "cat /etc/hostname"):
        return node.name
    m = _HEAD.match(cmd)
    if m:
        data = node.read(m["path"])
        if data is None:
            return ""
        text = data[: int(m["n"])].decode(errors="replace")
        return _tr(text, m["tr"]).rstrip("\n")
    lines = _command_lines(node, cmd)
    return "\n".join(lines)


def _tr(text: str, spec: str | None) -> str:
    if not spec:
        return text
    try:
        words = shlex.split(spec)
    except ValueError:
        return text

    def unescape(s: str) -> str:
        return s.replace("\\n", "\n").replace("\\t", "\t")

    if words[:1] == ["-d"] and len(words) == 2:
        for ch in unescape(words[1]):
            text = text.replace(ch, "")
        return text
    if len(words) == 2:
        src, dst = unescape(words[0]), unescape(words[1])
        for a, b in zip(src, dst.ljust(len(src), dst[-1:] or " "), strict=False):
            text = text.replace(a, b)
    return text


def _command_lines(node: SimNode, cmd: str) -> list[str]:
    """Output lines of the few commands a probe pipes: ctr, kubeadm version, tail."""
    from tests.fleet import shell

    try:
        argv = shlex.split(cmd)
    except ValueError:
        return []
    argv = [a for a in argv if a not in ("2>/dev/null", "2>&1")]
    if argv[:1] == ["tail"] and "-n" in argv and not {"-f", "-F"} & set(argv):
        n = argv[argv.index("-n") + 1]
        path = argv[-1]
        data = node.read(path)
        if data is None:
            return []
        lines = data.decode(errors="replace").splitlines()
        if n.startswith("+"):
            return lines[max(0, int(n[1:]) - 1):]
        return lines[-int(n):] if int(n) else []
    result = shell.run_simple(node, argv, b"")
    if not isinstance(result, shell.Result) or result.status != 0:
        return []
    return result.stdout.decode(errors="replace").splitlines()

