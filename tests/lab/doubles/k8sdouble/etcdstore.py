"""The API double's cluster state kept in a real etcd, through etcd's JSON gateway.

With ``--etcd-servers`` (kubeadm's flags, the lab's ``realEtcd``) the document the API doubles
share is etcd's, not a file's. Key layout (what a snapshot of the lab's etcd holds):

- ``/registry/k8sdouble/state``: the whole document (nodes, tokens, objects, ...) as JSON;
- ``/registry/minions/<node>``: each Node as the API answers it (written with the document,
  in one transaction), where a real API server keeps Nodes.

Requests are linearizable (etcd's default), so an etcd without quorum does not answer: the
gateway call times out and the API answers as a real one does when its etcd is gone
(``etcdserver: request timed out``). Writers on one lab host are serialised by the same
lock file as the file store; etcd's own transaction keeps each write whole.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

from k8sdouble import env

STATE_KEY = "/registry/k8sdouble/state"
NODES_PREFIX = "/registry/minions/"
TIMEOUT = 4.0  # seconds; a real API server gives up on etcd after a few too


class EtcdUnavailable(Exception):
    """etcd did not answer (no quorum, member down); the text is what the API says."""


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def _prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return _b64(bytes(raw))


class EtcdClient:
    """etcd's v3 JSON gateway over TLS with the API server's etcd client certificate."""

    def __init__(self, server: str, cafile: str, certfile: str, keyfile: str) -> None:
        url = urlsplit(server)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 2379
        self.ctx = ssl.create_default_context(cafile=str(env.path(cafile)))
        self.ctx.load_cert_chain(str(env.path(certfile)), str(env.path(keyfile)))

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT,
                                           context=self.ctx)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EtcdUnavailable(f"etcdserver: request timed out ({exc})") from None
        finally:
            conn.close()
        if resp.status != 200:
            raise EtcdUnavailable(f"etcdserver: {data.decode(errors='replace')[:200]}")
        answer: dict[str, Any] = json.loads(data or b"{}")
        return answer

    def get(self, key: str) -> bytes | None:
        kvs = self.call("/v3/kv/range", {"key": _b64(key)}).get("kvs") or []
        return base64.b64decode(kvs[0]["value"]) if kvs else None

    def save_state(self, document: dict[str, Any], nodes: dict[str, Any]) -> None:
        """The document and each Node, in one transaction; Nodes gone are deleted."""
        listed = self.call("/v3/kv/range", {"key": _b64(NODES_PREFIX),
                                            "range_end": _prefix_end(NODES_PREFIX),
                                            "keys_only": True}).get("kvs") or []
        present = {base64.b64decode(kv["key"]).decode()[len(NODES_PREFIX):] for kv in listed}
        ops: list[dict[str, Any]] = [
            {"requestDeleteRange": {"key": _b64(NODES_PREFIX + name)}}
            for name in sorted(present - set(nodes))
        ]
        ops.append({"requestPut": {"key": _b64(STATE_KEY), "value": _b64(json.dumps(document))}})
        for name, node in sorted(nodes.items()):
            ops.append({"requestPut": {"key": _b64(NODES_PREFIX + name),
                                       "value": _b64(json.dumps(node))}})
        self.call("/v3/kv/txn", {"success": ops})
