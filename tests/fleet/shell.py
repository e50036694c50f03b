"""What a node does with an SSH exec request: recognise the command by its shape, answer it.

Every request is a shell command line. It is split as ``sh`` would (``shlex``) and unwrapped:
``timeout -s KILL N CMD`` runs CMD, a ``sh -c SCRIPT sh ARGS`` whose script runs ``"$@"`` runs
ARGS. Scripts are recognised by what they do (the facts probe reads /proc/cpuinfo, the atomic
write ends in ``mv``, the lock takes its file with ``set -C``...), never by their exact text.
Unknown commands exit 127 with a message on stderr, as ``sh`` does.

The answer is one of: a finished result, a function of the command's stdin (file writes, the
config-then-trigger write), or a log to follow: ``tail -F``, streamed until the client closes the
channel, or the tool's follow loop, which also ends by itself with the kubeadm task's state once
the task has stopped (the end line's text is read from the script). A node's knobs
(``lost_exec_outputs``, ``lost_task_lists``) make ``ctr tasks exec`` lose its output and ``ctr
tasks ls`` print nothing, as containerd now and then does.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import re
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tests.fleet import certs, etcd, kubeadm, kubectl
from tests.fleet.node import CONTAINER_PATHS, KUBEADM_LOG, NAMESPACE, SimNode
from tests.fleet.result import NeedsInput, Pending, Result, Stream

_ECHO_TO_FILE = re.compile(r"echo (?P<words>[^;&|<>`$]*?) ?> ?(?P<path>/[\w./-]+)")
_REDIRECTS = ("2>/dev/null", ">/dev/null", "2>&1", "</dev/null")
_OPERATORS = ("|", ";", "&&", "||", "`", "$(", ">", "<", "&")


@dataclass(frozen=True)
class Follow:
    """Stream the node's kubeadm log from line ``start`` (0-based) until the channel closes.

    With ``end``, the follow is the shell loop that also watches the kubeadm task: once the
    task has stopped (or is missing from a listing), it prints the log's remaining lines, then
    ``end`` followed by the task's state, and exits 0."""

    start: int
    end: str | None = None


Answer = Result | Follow | NeedsInput | Pending | Stream


def not_found(name: str) -> Result:
    return Result.error(127, f"sh: {name}: not found\n")


def dispatch(node: SimNode, line: str) -> Answer:
    """The answer to one exec request on ``node``."""
    try:
        argv = list(_split(line))
    except ValueError as exc:
        return Result.error(2, f"sh: syntax error: {exc}\n")
    return dispatch_argv(node, argv)


@functools.lru_cache(maxsize=1024)
def _split(line: str) -> tuple[str, ...]:
    """``shlex.split``, remembered: a fleet is sent the same few command lines by every node,
    and splitting them again each time was a tenth of its CPU."""
    return tuple(shlex.split(line))


def dispatch_argv(node: SimNode, argv: list[str]) -> Answer:
    argv = _strip_timeout(argv)
    if not argv:
        return Result.ok()
    if argv[0] in ("sh", "/bin/sh", "ash", "bash") and len(argv) >= 3 and argv[1] == "-c":
        return _script(node, argv[2], argv[3:])
    follow = _follow(argv)
    if follow is not None:
        return follow
    result = run_simple(node, argv, None)
    return result if result is not None else not_found(argv[0])


def _strip_timeout(argv: list[str]) -> list[str]:
    """``timeout [-s SIG] [-k D] DURATION CMD...`` -> CMD (the fleet's commands end on time)."""
    while argv[:1] == ["timeout"]:
        rest = argv[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in ("-s", "-k", "--signal", "--kill-after") else rest[1:]
        argv = rest[1:]
    return argv


def _script(node: SimNode, script: str, args: list[str]) -> Answer:
    """``sh -c SCRIPT $0 $1...``: one of the scripts a node is sent, by what it does."""
    params = args[1:]  # $1, $2, ...
    if '"$@"' in script:  # a wrapper that runs its arguments (the follow wrapper)
        return dispatch_argv(node, params)
    if "/proc/cpuinfo" in script:  # the facts probe
        from tests.fleet.probe import run_probe

        return Result.ok(run_probe(node, script))
    if "tasks ls" in script and "wc -l" in script and params:  # follow until the task stops
        return _follow_task(script, params)
    if "mv " in script and "cat >" in script and "printf" in script and len(params) >= 4:
        # the config ($1, mode $2) from stdin, renamed into place, then the flag $4 into $3
        path, mode, trigger, flag = params[:4]
        return NeedsInput(lambda data: _write_then_trigger(node, path, data, mode, trigger, flag))
    if "mv " in script and "cat >" in script and len(params) >= 2:  # atomic write: $1 path, $2 mode
        path, mode = params[0], params[1]
        return NeedsInput(lambda data: _write(node, path, data, mode))
    if "set -C" in script and len(params) >= 2:  # take the lock: $1 holder, $2 path
        return _take(node, params[1], params[0].encode())
    if "grep -q" in script and "rm -f" in script and len(params) >= 2:  # release: $1, $2 path
        data = node.read(params[1])
        if data is not None and params[0].encode() in data:
            node.remove(params[1])
        return Result.ok()
    if "${#c}" in script and "for f do" in script:  # several files: "<size> <path>\n<bytes>"
        out = b""
        for path in params:
            data = node.read(path)
            out += f"-1 {path}\n".encode() if data is None else \
                f"{len(data)} {path}\n".encode() + data
        return Result.ok(out)
    if "exit 3" in script and "cat" in script and params:  # read, 3 when absent
        data = node.read(params[0])
        return Result(3) if data is None else Result.ok(data)
    if script.startswith("mkdir -p") and "chmod" in script:  # a directory: implicit here
        return Result.ok()
    if 'mv "$3" "$1"' in script and len(params) >= 3:  # etcd restore: data aside, staging in
        return _move_into_place(node, params[0], params[1], params[2])
    if "/etc/kubernetes/manifests" in " ".join(params) and "mv " in script:  # certs renew
        return certs.unpark(node, params[1]) if "rmdir" in script else certs.park(node)
    if "tasks start" in script and "kubelet" in script:  # the kubelet task restarted
        node.restart_kubelet()
        return Result.ok()
    echo = _ECHO_TO_FILE.fullmatch(script.strip())
    if echo is not None:  # echo WORDS > PATH, as a user's playbook leaves a mark
        words = shlex.split(echo["words"])
        node.write(echo["path"], (" ".join(words) + "\n").encode(), 0o644)
        return Result.ok()
    simple = _simple_script(script)
    if simple is None:
        return Result.error(127, "sh: the fleet cannot run this script\n")
    return dispatch_argv(node, simple)


def _rename(node: SimNode, src: str, dst: str) -> None:
    for path in [p for p in node.files if p == src or p.startswith(src + "/")]:
        data, mode = node.files[path], node.modes.get(path, 0o644)
        node.remove(path)
        node.write(dst + path[len(src):], data, mode)


def _move_into_place(node: SimNode, data_dir: str, kept: str, staging: str) -> Result:
    """``if [ -e $1 ]; then mv $1 $2; echo $2; fi; mv $3 $1`` on the node's files."""
    moved = any(p == data_dir or p.startswith(data_dir + "/") for p in node.files)
    if moved:
        _rename(node, data_dir, kept)
    if not any(p.startswith(staging + "/") for p in node.files):
        return Result.error(1, f"mv: can't rename '{staging}': No such file or directory\n")
    _rename(node, staging, data_dir)
    return Result.ok(f"{kept}\n" if moved else "")


def _simple_script(script: str) -> list[str] | None:
    """A script that is one plain command (redirections to /dev/null allowed) as argv."""
    try:
        words = list(_split(script))
    except ValueError:
        return None
    words = [w for w in words if w not in _REDIRECTS]
    if any(w.startswith(_OPERATORS) or w.endswith((";", "&")) for w in words):
        return None
    return words


def _follow(argv: list[str]) -> Follow | None:
    """``tail [-n +K|N] -F|-f PATH`` on the kubeadm log."""
    if argv[:1] != ["tail"] or not {"-F", "-f", "--follow=name"} & set(argv):
        return None
    args = [a for a in argv if a not in _REDIRECTS]
    if args[-1] != KUBEADM_LOG:
        return None
    start = -10  # tail's default: the last ten lines
    if "-n" in args:
        n = args[args.index("-n") + 1]
        start = max(0, int(n[1:]) - 1) if n.startswith("+") else -int(n)
    return Follow(start)


_FOLLOW_END = re.compile(r'echo "(?P<end>[^"$]*)\$s"')


def _follow_task(script: str, params: list[str]) -> Answer:
    """The log follow that ends with the task's state: $1 the first line, $2 the log."""
    end = _FOLLOW_END.search(script)
    if end is None or len(params) < 2 or params[1] != KUBEADM_LOG or not params[0].isdigit():
        return Result.error(127, "sh: the fleet cannot run this script\n")
    return Follow(int(params[0]), end["end"])


def _write_then_trigger(
    node: SimNode, path: str, data: bytes, mode: str, trigger: str, flag: str
) -> Result:
    written = _write(node, path, data, mode)
    if written.status != 0:
        return written
    return _write(node, trigger, flag.encode(), "644")


def _write(node: SimNode, path: str, data: bytes, mode: str) -> Result:
    try:
        bits = int(mode, 8)
    except ValueError:
        return Result.error(1, f"chmod: invalid mode '{mode}'\n")
    node.write(path, data, bits)
    return Result.ok()


def _take(node: SimNode, path: str, holder: bytes) -> Result:
    existing = node.read(path)
    if existing is not None:
        return Result.ok(existing)
    node.write(path, holder, 0o644)
    return Result.ok("taken\n")


def run_simple(node: SimNode, argv: list[str], stdin: bytes | None) -> Result | Pending | None:
    """A plain command in the node's SSH shell; None when the shell has no such command."""
    name = os.path.basename(argv[0])
    args = argv[1:]
    if name == "true":
        return Result.ok()
    if name == "false":
        return Result(1)
    if name == "echo":
        return Result.ok(" ".join(args) + "\n")
    if name == "hostname":
        return Result.ok(node.name + "\n")
    if name == "cat":
        out: list[bytes] = []
        for path in args:
            data = node.read(path)
            if data is None:
                return Result(1, b"".join(out), f"cat: can't open '{path}': No such file or directory\n".encode())
            out.append(etcd.cat_snapshot(node, data) if path.startswith(etcd.HOST_DATA_DIR) else data)
        return Result.ok(b"".join(out))
    if name == "test" and len(args) == 2 and args[0] in ("-e", "-f"):
        return Result(0 if node.exists(args[1]) else 1)
    if name in ("stat", "sha256sum"):
        return _stat_or_digest(node, name, args)
    if name == "rm":
        recursive = any(a.startswith("-") and "r" in a for a in args)
        for path in (a for a in args if not a.startswith("-")):
            node.remove(path)
            if recursive:
                for under in [p for p in node.files if p.startswith(path.rstrip("/") + "/")]:
                    node.remove(under)
        return Result.ok()
    if name == "ctr":
        return _ctr(node, args)
    if name == "reboot":  # reboot(8) returns; the node goes down a moment later
        if node.on_reboot is None:
            return Result.error(1, "reboot: not possible here\n")
        node.on_reboot(node)
        return Result.ok()
    if name == "grep" and "/proc/self/mounts" in args:  # is /var/node a mounted disk?
        return Result(0 if node.persistent_disk and " /var/node " in args else 1)
    return None


def _stat_or_digest(node: SimNode, name: str, args: list[str]) -> Result:
    """``stat -c %s PATH`` (the size) and ``sha256sum PATH``, as coreutils print them."""
    path = args[-1] if args else ""
    data = node.read(path)
    if data is None:
        verb = "cannot stat" if name == "stat" else ""
        text = (f"stat: {verb} '{path}': No such file or directory\n" if name == "stat"
                else f"sha256sum: {path}: No such file or directory\n")
        return Result.error(1, text)
    if name == "stat":
        return Result.ok(f"{len(data)}\n")
    return Result.ok(f"{hashlib.sha256(data).hexdigest()}  {path}\n")


def _ctr(node: SimNode, args: list[str]) -> Result | Pending | NeedsInput | Stream:
    namespace = "default"
    while args and args[0].startswith("-"):
        flag = args[0]
        if flag in ("--namespace", "-n") and len(args) > 1:
            namespace, args = args[1], args[2:]
        elif flag.startswith("--namespace="):
            namespace, args = flag.split("=", 1)[1], args[1:]
        else:
            args = args[1:]
    if args[:1] == ["run"] and namespace == "k8s.io":  # a one-off container (etcd restore)
        return etcd.ctr_run(node, args[1:])
    if args[:1] not in (["tasks"], ["task"], ["t"]):
        return Result.error(1, f"ctr: unknown command {args[:1]}\n")
    sub = args[1:2]
    tasks = node.tasks if namespace == NAMESPACE else {}
    if sub in (["ls"], ["list"]):
        if node.lost_task_lists > 0:  # containerd's answer lost: nothing printed, exit 0
            node.lost_task_lists -= 1
            return Result.ok()
        rows = ["TASK       PID     STATUS    "]
        rows += [f"{name:<10} {pid:<7} {state:<10}" for name, (pid, state) in sorted(tasks.items())]
        return Result.ok("".join(r + "\n" for r in rows))
    if sub == ["exec"]:
        return _exec(node, tasks, args[2:])
    return Result.error(1, f"ctr: unknown tasks command {sub}\n")


def _exec(
    node: SimNode, tasks: dict[str, tuple[int, str]], args: list[str]
) -> Result | Pending | NeedsInput | Stream:
    exec_id = None
    while args and args[0].startswith("-"):
        if args[0] == "--exec-id" and len(args) > 1:
            exec_id, args = args[1], args[2:]
        elif args[0].startswith("--exec-id="):
            exec_id, args = args[0].split("=", 1)[1], args[1:]
        elif args[0] in ("--cwd", "--user", "-u", "--env", "-e"):
            args = args[2:]
        else:
            args = args[1:]  # --tty, -t, --detach ...
    if not exec_id:
        return Result.error(1, "ctr: exec id must be provided\n")
    if not args:
        return Result.error(1, "ctr: container id must be provided\n")
    task, argv = args[0], args[1:]
    if tasks.get(task, (0, ""))[1] != "RUNNING":
        return Result.error(1, f"ctr: no running task found: task {task} not found: not found\n")
    if exec_id in node.exec_ids:
        return Result.error(1, f"ctr: id {exec_id}: already exists\n")
    if not argv:
        return Result.error(1, "ctr: process args must not be empty\n")
    node.exec_ids.add(exec_id)
    try:
        answer = _in_container(node, argv)
    except BaseException:
        node.exec_ids.discard(exec_id)
        raise
    lose = node.lost_exec_outputs > 0
    if lose:
        node.lost_exec_outputs -= 1
    if isinstance(answer, NeedsInput):  # its output is the applied input's: never lost here
        node.exec_ids.discard(exec_id)
        return answer
    if isinstance(answer, Result):
        node.exec_ids.discard(exec_id)
        return Result.ok() if lose else answer
    if isinstance(answer, Stream):
        return Stream(functools.partial(_stream_ends, node, exec_id, answer))
    return Pending(functools.partial(_exec_ends, node, exec_id, answer, lose))


async def _exec_ends(node: SimNode, exec_id: str, running: Pending, lose: bool) -> Result:
    """A long exec keeps its exec ID until it ends (or is killed with its channel)."""
    try:
        result = await running.wait()
        return Result.ok() if lose else result
    finally:
        node.exec_ids.discard(exec_id)


async def _stream_ends(node: SimNode, exec_id: str, running: Stream) -> AsyncIterator[bytes]:
    """A streaming exec keeps its exec ID until it ends (or is killed with its channel)."""
    try:
        async for chunk in running.chunks():
            yield chunk
    finally:
        node.exec_ids.discard(exec_id)


KUBELET_CLIENT_PEM = "/var/lib/kubelet/pki/kubelet-client-current.pem"


def _kubelet_cert_end(node: SimNode, path: str) -> Result:
    """``openssl x509 -noout -enddate -in`` the kubelet's client certificate: a year after the
    node registered, or a day ago for one that lapsed while the node was off."""
    member = node.cluster.members.get(node.name)
    if path != KUBELET_CLIENT_PEM or member is None:
        return Result.error(1, f"Could not open file or uri for loading certificate from {path}\n")
    if member.kubelet_cert_expired:
        end = node.cluster.now() - dt.timedelta(days=1)
    else:
        end = dt.datetime.fromtimestamp(member.registered, dt.UTC) + dt.timedelta(days=365)
    return Result.ok(f"notAfter={end:%b} {end.day:2d} {end:%H:%M:%S %Y} GMT\n")


def _in_container(node: SimNode, argv: list[str]) -> Result | Pending | NeedsInput | Stream:
    """A command inside the kubelet container, where paths are the container's."""
    name = os.path.basename(argv[0])
    if name == "kubeadm":
        return kubeadm.cli(node, argv)
    if name == "kubectl":
        return kubectl.cli(node, argv)
    if name == "python3" and argv[1:2] == ["-c"] and "get_server_certificate" in argv[2]:
        return certs.served(node)
    if name == "crictl":
        return etcd.crictl(node, argv)
    if name == "openssl" and argv[1:4] == ["x509", "-noout", "-enddate"]:
        return _kubelet_cert_end(node, argv[-1])
    if name in ("sh", "ash") and len(argv) >= 3 and argv[1] == "-c":
        simple = _simple_script(argv[2])
        if simple is not None:
            return _in_container(node, simple)
    mapped = [CONTAINER_PATHS.get(a, a) for a in argv]
    result = run_simple(node, mapped, None)
    if result is not None and name != "ctr":
        return result
    return Result.error(
        127,
        f'ctr: failed to create shim task: OCI runtime exec failed: exec failed: unable to start '
        f'container process: exec: "{argv[0]}": executable file not found in $PATH: unknown\n',
    )
