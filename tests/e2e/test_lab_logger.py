"""The node's log writer (containerd's binary log driver in the lab): the LinuxKit line format,
the 1024-byte cut, and each line written as soon as it is produced."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.lab.image import SCRIPTS

LOGGER = SCRIPTS / "logger.sh"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.mark.skipif(not Path("/usr/bin/busybox").exists(), reason="busybox-static not installed")
def test_lines_are_prefixed_cut_and_written_as_produced(tmp_path: Path) -> None:
    ready_r, ready_w = os.pipe()
    # The shim hands the service's stdout on fd 3, stderr on fd 4, and waits on fd 5.
    shim = f'exec "$0" 3<&0 4</dev/null 5>&{ready_w} {ready_w}>&-'
    proc = subprocess.Popen(
        ["/usr/bin/busybox", "sh", "-c", shim, LOGGER],
        stdin=subprocess.PIPE, pass_fds=(ready_w,),
        env={"CONTAINER_ID": "kubeadm", "LOG_DIR": str(tmp_path)},
    )
    os.close(ready_w)
    assert os.read(ready_r, 1) == b""  # fd 5 closed: ready
    os.close(ready_r)
    out = tmp_path / "kubeadm.out.log"
    out.touch()
    tail = subprocess.Popen(["tail", "-n", "+1", "-F", str(out)], stdout=subprocess.PIPE)
    assert proc.stdin is not None and tail.stdout is not None
    try:
        proc.stdin.write(b"Found kubeadm flag init\n")
        proc.stdin.flush()
        # The writer still has the pipe open: the line must be in the file already.
        first = tail.stdout.readline().decode()
        assert re.fullmatch(rf"{STAMP} kubeadm\.out Found kubeadm flag init\n", first)

        proc.stdin.write(b"x" * 3000 + b"\n")
        proc.stdin.flush()
        long = tail.stdout.readline().decode().rstrip("\n")
        assert long.split(" ", 2)[2] == "x" * 1024
    finally:
        tail.kill()
        tail.wait()
        proc.stdin.close()
        proc.wait()
    assert proc.returncode == 0
    assert (tmp_path / "kubeadm.log").exists()  # stderr has its own file
