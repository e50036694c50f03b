"""Server-side printing: the ``meta.k8s.io/v1`` Table kubectl asks for when it prints.

``kubectl get`` sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`` and prints
the rows the server computes, the columns of priority 1 only with ``-o wide`` (and NAMESPACE in
front with ``-A``, added by kubectl itself). The columns are the real server's for these types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sdouble import nodes
from k8sdouble.objects import rfc3339

Row = list[Any]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


NAME = _col("Name", fmt="name")
AGE = _col("Age")


def _age(obj: dict[str, Any]) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp") or rfc3339(0)
    return nodes.age(created)


def _node_row(o: dict[str, Any]) -> Row:
    info = o["status"].get("nodeInfo", {})
    ips = [a["address"] for a in o["status"].get("addresses", []) if a["type"] == "InternalIP"]
    return [o["metadata"]["name"], nodes.status(o), nodes.roles(o), _age(o),
            info.get("kubeletVersion", ""), ips[0] if ips else "<none>", "<none>",
            info.get("osImage", ""), info.get("kernelVersion", ""),
            info.get("containerRuntimeVersion", "")]


def _pod_row(o: dict[str, Any]) -> Row:
    containers = o.get("spec", {}).get("containers", [])
    st = o.get("status", {})
    statuses = st.get("containerStatuses", [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    return [o["metadata"]["name"], f"{ready}/{len(containers)}", st.get("phase", "Pending"),
            restarts, _age(o), st.get("podIP") or "<none>",
            o.get("spec", {}).get("nodeName") or "<none>", "<none>", "<none>"]


def _containers(o: dict[str, Any]) -> tuple[str, str]:
    cs = o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _selector(o: dict[str, Any]) -> str:
    labels = o.get("spec", {}).get("selector", {}).get("matchLabels", {})
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "<none>"


def _ds_row(o: dict[str, Any]) -> Row:
    st = o.get("status", {})
    sel = o.get("spec", {}).get("template", {}).get("spec", {}).get("nodeSelector") or {}
    names, images = _containers(o)
    return [o["metadata"]["name"], st.get("desiredNumberScheduled", 0),
            st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sel.items()) or "<none>", _age(o),
            names, images, _selector(o)]


def _deploy_row(o: dict[str, Any]) -> Row:
    st = o.get("status", {})
    want = o.get("spec", {}).get("replicas", 1)
    names, images = _containers(o)
    return [o["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{want}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), _age(o),
            names, images, _selector(o)]


def _default_row(o: dict[str, Any]) -> Row:
    return [o["metadata"]["name"], _age(o)]


WIDE_CONTAINERS = [_col("Containers", priority=1), _col("Images", priority=1),
                   _col("Selector", priority=1)]
COLUMNS: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any]], Row]]] = {
    "Node": ([NAME, _col("Status"), _col("Roles"), AGE, _col("Version"),
              _col("Internal-IP", priority=1), _col("External-IP", priority=1),
              _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
              _col("Container-Runtime", priority=1)], _node_row),
    "Pod": ([NAME, _col("Ready"), _col("Status"), _col("Restarts", "integer"), AGE,
             _col("IP", priority=1), _col("Node", priority=1),
             _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)],
            _pod_row),
    "DaemonSet": ([NAME, _col("Desired", "integer"), _col("Current", "integer"),
                   _col("Ready", "integer"), _col("Up-to-date", "integer"),
                   _col("Available", "integer"), _col("Node Selector"), AGE, *WIDE_CONTAINERS],
                  _ds_row),
    "Deployment": ([NAME, _col("Ready"), _col("Up-to-date", "integer"),
                    _col("Available", "integer"), AGE, *WIDE_CONTAINERS], _deploy_row),
}


def table(kind: str, items: list[dict[str, Any]], resource_version: str,
          include: str) -> dict[str, Any]:
    """The Table of ``items`` (all of ``kind``); ``include`` is the request's includeObject
    (``Metadata`` by default, ``Object`` or ``None``)."""
    columns, row = COLUMNS.get(kind, ([NAME, AGE], _default_row))
    rows = []
    for item in items:
        entry: dict[str, Any] = {"cells": row(item)}
        if include == "Object":
            entry["object"] = item
        elif include != "None":
            entry["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                               "metadata": item.get("metadata", {})}
        rows.append(entry)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version}, "columnDefinitions": columns,
            "rows": rows}
