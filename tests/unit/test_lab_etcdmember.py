"""The kubeadm double's etcd membership logic (check-etcd, member add) against a stand-in for
etcd's JSON gateway that answers with etcd's own words (``Peer URLs already exists`` is what
Debian's etcd 3.4 answers, HTTP 412 code 9, for a peer URL that is already a member's)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

DOUBLES = Path(__file__).resolve().parents[1] / "lab" / "doubles"
PYTHON = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(not Path(PYTHON).exists(), reason="Debian's python3 is needed")

# Run by Debian's python3, as the doubles are: a gateway stand-in per address, then one call.
SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from k8sdouble import etcdmember
from k8sdouble.etcdstore import EtcdUnavailable

MEMBERS = json.loads(sys.argv[2])
SILENT = set(json.loads(sys.argv[3]))
calls = []

class Fake:
    def __init__(self, host):
        self.host = host
    def call(self, path, body):
        calls.append((self.host, path))
        if self.host in SILENT:
            raise EtcdUnavailable("etcdserver: request timed out (timed out)")
        if path == "/v3/cluster/member/list":
            return {"members": MEMBERS}
        if path == "/v3/maintenance/status":
            return {}
        if path == "/v3/cluster/member/add":
            peers = [u for m in MEMBERS for u in m.get("peerURLs", [])]
            if body["peerURLs"][0] in peers:
                raise EtcdUnavailable('etcdserver: {"error":"etcdserver: Peer URLs already '
                                      'exists","message":"etcdserver: Peer URLs already exists",'
                                      '"code":9}')
            return {"members": MEMBERS + [{"peerURLs": body["peerURLs"]}]}
        raise AssertionError(path)

etcdmember.client = Fake
what = sys.argv[4]
try:
    if what == "check":
        out = etcdmember.unhealthy_endpoint(["10.0.0.11"])
    else:
        out = etcdmember.add(["10.0.0.11"], "cp-3", "10.0.0.13", wait=30.0)
except EtcdUnavailable as exc:
    out = "raised: " + str(exc)
print(json.dumps({"out": out, "calls": len(calls)}))
"""


def member(name: str, host: str, started: bool = True) -> dict[str, object]:
    return {"ID": hash(name) & 0xFFFF, "name": name, "peerURLs": [f"https://{host}:2380"],
            "clientURLs": [f"https://{host}:2379"] if started else []}


def run(members: list[dict[str, object]], silent: list[str], what: str) -> dict[str, object]:
    done = subprocess.run([PYTHON, "-c", SCRIPT, str(DOUBLES), json.dumps(members),
                           json.dumps(silent), what],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_check_etcd_names_the_first_member_that_does_not_answer() -> None:
    members = [member("cp-1", "10.0.0.11"), member("cp-2", "10.0.0.12"),
               member("cp-3", "10.0.0.13")]
    assert run(members, [], "check")["out"] is None
    assert run(members, ["10.0.0.13"], "check")["out"] == "https://10.0.0.13:2379"


def test_check_etcd_does_not_dial_a_member_that_never_started() -> None:
    members = [member("cp-1", "10.0.0.11"), member("", "10.0.0.13", started=False)]
    assert run(members, ["10.0.0.13"], "check")["out"] is None


def test_a_peer_url_already_listed_fails_at_once_with_etcds_words() -> None:
    members = [member("cp-1", "10.0.0.11"), member("", "10.0.0.13", started=False)]
    answer = run(members, [], "add")
    assert answer["out"] == "raised: etcdserver: Peer URLs already exists"
    assert answer["calls"] == 1  # not retried: etcd's answer will not change


def test_a_new_peer_url_is_added_and_the_initial_cluster_returned() -> None:
    answer = run([member("cp-1", "10.0.0.11")], [], "add")
    assert answer["out"] == "cp-1=https://10.0.0.11:2380,cp-3=https://10.0.0.13:2380"
