"""``/openapi/v3``: the part of the OpenAPI document kubectl reads before ``apply``.

kubectl (v1.27 on) validates with the server (``fieldValidation=Strict``) when the group
version's document says the object's PATCH takes that parameter, and computes a strategic-merge
patch from the schema when the PATCH accepts one; otherwise from the types compiled into it.
So each group version's document carries, per resource path, the PATCH operation with its
``x-kubernetes-group-version-kind`` and the ``fieldValidation`` parameter, and only the JSON
merge-patch media type (no schemas: kubectl then falls back to its own types, which know the
built-in kinds' patch strategies). ``/openapi/v2`` is not served (404), as kubectl v1.27 on
only asks for it when v3 is missing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from k8sdouble.resources import TYPES, ResourceType


def _gv_path(t: ResourceType) -> str:
    return f"apis/{t.group}/{t.version}" if t.group else f"api/{t.version}"


def _hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()


def root() -> dict[str, Any]:
    paths = {}
    for gv in sorted({_gv_path(t) for t in TYPES}):
        doc = group_version(gv)
        assert doc is not None
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_hash(doc)}"}
    return {"paths": paths}


def group_version(gv_path: str) -> dict[str, Any] | None:
    found = [t for t in TYPES if _gv_path(t) == gv_path]
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
