"""Leases (coordination.k8s.io/v1) as the API server keeps them, for the simulated kubectl.

What k8slk-ops locks a cluster with: ``kubectl create -f -`` (409 AlreadyExists when the name is
taken), ``get lease NAME -o json``, ``replace -f -`` (409 Conflict when the object's
resourceVersion is not the stored one) and ``delete lease NAME``; the answers are kubectl's.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.fleet.result import Result

QUALIFIED = "leases.coordination.k8s.io"
_versions = itertools.count(1000)


def _id(body: dict[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def _answer(obj: dict[str, Any], verb: str, output: str) -> Result:
    if output == "json":
        return Result.ok(json.dumps(obj, indent=4) + "\n")
    return Result.ok(f"lease.coordination.k8s.io/{obj['metadata']['name']} {verb}\n")


def create(store: dict[tuple[str, str], dict[str, Any]], data: bytes, output: str) -> Result:
    body = _load(data)
    if body is None or body.get("kind") != "Lease":
        return Result.error(1, 'error: no objects passed to create\n')
    key = _id(body)
    if key in store:
        return Result.error(
            1, f'Error from server (AlreadyExists): error when creating "STDIN": '
            f'{QUALIFIED} "{key[1]}" already exists\n'
        )
    body["metadata"]["namespace"] = key[0]
    body["metadata"]["resourceVersion"] = str(next(_versions))
    store[key] = body
    return _answer(body, "created", output)


def replace(store: dict[tuple[str, str], dict[str, Any]], data: bytes, output: str) -> Result:
    body = _load(data)
    if body is None or body.get("kind") != "Lease":
        return Result.error(1, 'error: no objects passed to replace\n')
    key = _id(body)
    old = store.get(key)
    if old is None:
        return Result.error(
            1, f'Error from server (NotFound): error when replacing "STDIN": '
            f'{QUALIFIED} "{key[1]}" not found\n'
        )
    sent = body["metadata"].get("resourceVersion")
    if sent and sent != old["metadata"]["resourceVersion"]:
        return Result.error(
            1, f'Error from server (Conflict): error when replacing "STDIN": Operation cannot '
            f'be fulfilled on {QUALIFIED} "{key[1]}": the object has been modified; please '
            "apply your changes to the latest version and try again\n"
        )
    body["metadata"]["namespace"] = key[0]
    body["metadata"]["resourceVersion"] = str(next(_versions))
    store[key] = body
    return _answer(body, "replaced", output)


def get(store: dict[tuple[str, str], dict[str, Any]], ns: str, name: str) -> Result:
    obj = store.get((ns, name))
    if obj is None:
        return Result.error(1, f'Error from server (NotFound): {QUALIFIED} "{name}" not found\n')
    return Result.ok(json.dumps(obj, indent=4) + "\n")


def delete(store: dict[tuple[str, str], dict[str, Any]], ns: str, name: str,
           ignore_missing: bool) -> Result:
    if store.pop((ns, name), None) is None:
        if ignore_missing:
            return Result.ok()
        return Result.error(1, f'Error from server (NotFound): {QUALIFIED} "{name}" not found\n')
    return Result.ok(f'lease.coordination.k8s.io "{name}" deleted\n')


def _load(data: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("metadata"), dict) else None
