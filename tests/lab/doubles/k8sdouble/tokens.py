"""``kubeadm token create|list|delete`` and ``kubeadm init phase upload-certs``."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from typing import Any

from k8sdouble import cluster, config, env, kubeadmtexts
from k8sdouble.cluster import out
from k8sdouble.errors import CommandError

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
ID_RE = re.compile(r"^[a-z0-9]{6}$")


def create(token: str | None, ttl: str, description: str, print_join: bool,
           certificate_key: str | None, usages: list[str], groups: list[str]) -> int:
    if certificate_key and not print_join:
        raise CommandError("cannot use --certificate-key without --print-join-command")
    if token is not None and not TOKEN_RE.match(token):
        raise CommandError(f'the bootstrap token "{token}" was not of the form '
                           r'"^([a-z0-9]{6})\.([a-z0-9]{16})$"')
    try:
        seconds = config.parse_duration(ttl)
    except ValueError:
        raise CommandError(f'invalid argument "{ttl}" for "--ttl" flag: time: invalid duration '
                           f'"{ttl}"', hint=False) from None
    client = cluster.admin_client()
    token = token or cluster.new_token()
    cluster.create_token(client, token, seconds or None, description, usages, groups)
    if print_join:
        info = cluster.call(client, "GET", "/api/v1/namespaces/kube-public/configmaps/cluster-info")
        from k8sdouble import pki

        server = pki.read_kubeconfig(info["data"]["kubeconfig"]).server
        line = kubeadmtexts.join_command(cluster.endpoint_of(server), token, cluster.ca_pin(), True,
                                    certificate_key, bool(certificate_key), one_line=True)[0]
        out(line)
    else:
        out(token)
    return 0


def _fmt_ttl(remaining: float) -> str:
    """The table's TTL: kubeadm rounds to the largest unit (23h, 59m, 30s)."""
    secs = int(remaining)
    if secs >= 3600:
        return f"{round(secs / 3600)}h"
    if secs >= 60:
        return f"{round(secs / 60)}m"
    return f"{secs}s"


def _go_duration(remaining: float) -> str:
    secs = int(remaining)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s" if h else (f"{m}m{s}s" if m else f"{s}s")


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_tokens(output: str) -> int:
    client = cluster.admin_client()
    answer = cluster.call(client, "GET", "/lab/v1/tokens")
    now = time.time()
    items: list[dict[str, Any]] = answer["items"]
    if output == "json":
        for t in items:
            obj: dict[str, Any] = {
                "kind": "BootstrapToken", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
                "creationTimestamp": None, "token": f"{t['id']}.{t['secret']}",
            }
            if t.get("description"):
                obj["description"] = t["description"]
            if t.get("expires") is not None:
                obj["ttl"] = _go_duration(max(0.0, t["expires"] - now))
                obj["expires"] = _rfc3339(t["expires"])
            if t.get("usages"):
                obj["usages"] = t["usages"]
            if t.get("groups"):
                obj["groups"] = t["groups"]
            out(json.dumps(obj, indent=4))
        return 0
    rows = [["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"]]
    for t in items:
        if t.get("expires") is None:
            ttl, expires = "<forever>", "<never>"
        elif t["expires"] <= now:
            ttl, expires = "<invalid>", _rfc3339(t["expires"])
        else:
            ttl, expires = _fmt_ttl(t["expires"] - now), _rfc3339(t["expires"])
        rows.append([f"{t['id']}.{t['secret']}", ttl, expires,
                     ",".join(t.get("usages") or []) or "<none>",
                     t.get("description") or "<none>",
                     ",".join(t.get("groups") or []) or "<none>"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())
    return 0


def delete(ids: list[str]) -> int:
    if not ids:
        raise CommandError(kubeadmtexts.TOKEN_DELETE_MISSING)
    client = cluster.admin_client()
    for given in ids:
        tid = given.split(".", 1)[0]
        if not (ID_RE.match(given) or TOKEN_RE.match(given)):
            raise CommandError('given token didn\'t match pattern "^([a-z0-9]{6})$" or '
                               '"^([a-z0-9]{6})\\.([a-z0-9]{16})$"')
        try:
            cluster.call(client, "DELETE", f"/lab/v1/tokens/{tid}")
        except CommandError:
            raise CommandError(kubeadmtexts.token_not_found(tid)) from None
        out(kubeadmtexts.token_deleted(tid))
    return 0


def upload_certs(upload: bool, key: str | None) -> int:
    if not upload:
        out(kubeadmtexts.UPLOAD_CERTS_SKIPPED)
        return 0
    if key is not None and not re.fullmatch(r"[0-9a-f]{64}", key):
        raise CommandError("error execution phase upload-certs: error uploading certs: "
                           "encoding/hex: invalid byte", hint=True)
    if not env.path(f"{env.PKI}/ca.key").exists():
        raise CommandError("error execution phase upload-certs: error uploading certs: "
                           "open /etc/kubernetes/pki/ca.crt: no such file or directory")
    client = cluster.admin_client()
    key = key or secrets.token_hex(32)
    out(kubeadmtexts.UPLOAD_CERTS_STORED)
    cluster.upload_certs(client, key)
    out(kubeadmtexts.UPLOAD_CERTS_KEY)
    out(key)
    return 0
