"""Object <-> store value mapping (spec 4.1, 10.6).

Objects are stored as compact JSON *without* ``metadata.resourceVersion``; the value's
``mod_revision`` is the resourceVersion. Values are written with ``apiVersion``, ``kind`` and
``metadata`` first, so the first ``"metadata":{`` in a value is the top-level one and
:func:`kv_json` can splice the resourceVersion in without parsing (lists of thousands of objects).
"""

from __future__ import annotations

import json
import time
from typing import Any

from pyk3s.api.store.base import KeyValue

__all__ = ["decode_kv", "dumps", "encode_object", "kv_json", "loads", "now_rfc3339"]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
loads = json.loads
_META = b'"metadata":{'


def dumps(obj: Any) -> bytes:
    return _dumps(obj).encode()


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def encode_object(obj: dict[str, Any]) -> bytes:
    """The stored form: no resourceVersion, apiVersion/kind/metadata first."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("selfLink", None)
    out: dict[str, Any] = {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "metadata": meta}
    for k, v in obj.items():
        if k not in out:
            out[k] = v
    return dumps(out)


def decode_kv(kv: KeyValue) -> dict[str, Any]:
    obj: dict[str, Any] = loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def kv_json(kv: KeyValue) -> bytes:
    """The object's JSON with its resourceVersion, without a decode/encode round trip."""
    v = kv.value
    i = v.find(_META)
    if i < 0:
        return dumps(decode_kv(kv))
    j = i + len(_META)
    rv = b'"resourceVersion":"%d"' % kv.mod_revision
    if v[j : j + 1] == b"}":
        return v[:j] + rv + v[j:]
    return v[:j] + rv + b"," + v[j:]
