"""Detached JWS (HS256) as the bootstrap signer puts them in the cluster-info ConfigMap.

``jws-kubeconfig-<token id>`` is a compact JWS with the payload left out: the header carries
``kid: <token id>`` and the key is the token secret. A joining node that knows the whole token
can check that cluster-info was signed by someone who knows it too: that is how kubeadm's
discovery trusts the API server before it checks the CA pin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_detached(payload: str, token_id: str, secret: str) -> str:
    header = _b64(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    signing_input = f"{header}.{_b64(payload.encode())}".encode()
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}..{_b64(sig)}"


def verify_detached(jws: str, payload: str, token_id: str, secret: str) -> bool:
    try:
        header, empty, _ = jws.split(".")
    except ValueError:
        return False
    if empty:
        return False
    return hmac.compare_digest(jws, sign_detached(payload, token_id, secret)) and header != ""
