"""``/openapi/v3`` and ``/openapi/v2``: the part of the OpenAPI documents kubectl reads before
``apply``.

kubectl (v1.27 on) validates with the server (``fieldValidation=Strict``) when the group
version's document says the object's PATCH takes that parameter, and computes a strategic-merge
patch from the schema when the PATCH accepts one; otherwise from the types compiled into it.
So each group version's document carries, per resource path, the PATCH operation with its
``x-kubernetes-group-version-kind`` and the ``fieldValidation`` parameter, and only the JSON
merge-patch media type (no schemas: kubectl then falls back to its own types, which know the
built-in kinds' patch strategies). See ``v2_document`` for v2.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from k8sdouble.resources import ResourceType, served


def _gv_path(t: ResourceType) -> str:
    return f"apis/{t.group}/{t.version}" if t.group else f"api/{t.version}"


def _hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()


def root(minor: int) -> dict[str, Any]:
    """The group versions a v1.``minor`` server documents (those it serves)."""
    paths = {}
    for gv in sorted({_gv_path(t) for t in served(minor)}):
        doc = group_version(gv, minor)
        assert doc is not None
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_hash(doc)}"}
    return {"paths": paths}


def group_version(gv_path: str, minor: int) -> dict[str, Any] | None:
    found = [t for t in served(minor) if _gv_path(t) == gv_path]
    if not found:
        return None
    paths: dict[str, Any] = {}
    for t in found:
        base = f"/{gv_path}/namespaces/{{namespace}}/{t.resource}" if t.namespaced else \
            f"/{gv_path}/{t.resource}"
        paths[f"{base}/{{name}}"] = {"patch": {
            "operationId": f"patch{t.kind}",
            "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version,
                                                "kind": t.kind},
            "x-kubernetes-action": "patch",
            "parameters": [{"name": "fieldValidation", "in": "query",
                            "schema": {"type": "string", "uniqueItems": True}}],
            "requestBody": {"content": {"application/merge-patch+json": {"schema": {}}},
                            "required": True},
            "responses": {"200": {"description": "OK"}},
        }}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": paths, "components": {"schemas": {}}}


V2_CONTENT_TYPE = "application/octet-stream"  # what the real server answers protobuf with


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (payloads here are shorter than 128 bytes)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def v2_document(version: str) -> bytes:
    """``/openapi/v2`` as kubectl reads it (protobuf only): a swagger 2.0 document with no
    definitions. kubectl's client-side validation skips kinds a document does not define
    (v1.20 validates with it; v1.27 on only when v3 has no path for the kind), so a manifest
    is validated by the server (``fieldValidation``) or not at all, and an unknown kind fails
    where a real server fails it: ``no matches for kind``."""
    info = _field(1, b"Kubernetes") + _field(2, version.encode())
    return _field(1, b"2.0") + _field(2, info) + _field(8, b"") + _field(9, b"")
