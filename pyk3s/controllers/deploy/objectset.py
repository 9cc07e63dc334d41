"""The object set of an Addon (pure): K3s's wrangler labels and annotations, and three-way patches.

Every object applied from a manifest carries (specs/k3s.md 3.6)::

    labels:      objectset.rio.cattle.io/hash: sha1(id + owner-gvk + owner-name + owner-namespace)
    annotations: objectset.rio.cattle.io/id: ""
                 objectset.rio.cattle.io/owner-gvk: "k3s.cattle.io/v1, Kind=Addon"
                 objectset.rio.cattle.io/owner-name / owner-namespace
                 objectset.rio.cattle.io/applied: base64(gzip(json(desired object)))

An update is a three-way JSON merge patch: fields that were applied before and are gone from the
file are deleted, fields in the file are set to the file's values where the live object differs, and
fields nobody applied (``NodeHosts`` in the coredns ConfigMap) are left alone.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
from typing import Any

__all__ = [
    "APPLIED",
    "contained",
    "HASH",
    "OWNER_GVK",
    "decorate",
    "decode_applied",
    "gvk_string",
    "owner_hash",
    "three_way_patch",
]

HASH = "objectset.rio.cattle.io/hash"
APPLIED = "objectset.rio.cattle.io/applied"
ID = "objectset.rio.cattle.io/id"
OWNER_GVK_KEY = "objectset.rio.cattle.io/owner-gvk"
OWNER_NAME = "objectset.rio.cattle.io/owner-name"
OWNER_NS = "objectset.rio.cattle.io/owner-namespace"
OWNER_GVK = "k3s.cattle.io/v1, Kind=Addon"


def owner_hash(addon: str, namespace: str = "kube-system", set_id: str = "") -> str:
    return hashlib.sha1(f"{set_id}{OWNER_GVK}{addon}{namespace}".encode()).hexdigest()


def gvk_string(obj: dict[str, Any]) -> str:
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={obj.get('kind', '')}"


def encode_applied(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode()


def decode_applied(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        return json.loads(gzip.decompress(base64.b64decode(value)))
    except (ValueError, OSError):
        return None


def decorate(obj: dict[str, Any], addon: str, namespace: str = "kube-system") -> dict[str, Any]:
    """The desired object: the file's object plus the object-set labels and annotations."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels[HASH] = owner_hash(addon, namespace)
    annotations = dict(meta.get("annotations") or {})
    annotations.update({ID: "", OWNER_GVK_KEY: OWNER_GVK, OWNER_NAME: addon, OWNER_NS: namespace})
    meta["labels"] = labels
    meta["annotations"] = annotations
    # The applied record is the object without itself, so it stays small and stable.
    annotations[APPLIED] = encode_applied(out)
    return out


def _diff(original: Any, desired: Any, live: Any) -> Any:
    """Merge-patch fragment turning ``live`` into ``desired`` where it matters; ``_NOTHING`` if none."""
    if isinstance(desired, dict) and isinstance(live, dict):
        orig = original if isinstance(original, dict) else {}
        patch: dict[str, Any] = {}
        for key, value in desired.items():
            if key not in live:
                patch[key] = value
                continue
            sub = _diff(orig.get(key), value, live[key])
            if sub is not _NOTHING:
                patch[key] = sub
        for key in orig:
            if key not in desired and key in live:
                patch[key] = None
        return patch if patch else _NOTHING
    if desired == live or (isinstance(desired, list) and contained(desired, live)):
        return _NOTHING
    return desired


def contained(desired: Any, live: Any) -> bool:
    """True if ``live`` has everything ``desired`` says (extra fields are the server's defaults)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contained(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(contained(d, x) for d, x in zip(desired, live, strict=True))
        )
    return bool(desired == live)


_NOTHING = object()


def three_way_patch(original: dict[str, Any] | None, desired: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) from ``live`` to ``desired``, deleting what ``original`` had and
    ``desired`` dropped. Server-owned fields (status, resourceVersion, ...) are never touched."""
    desired = {k: v for k, v in desired.items() if k != "status"}
    live = {k: v for k, v in live.items() if k != "status"}
    patch = _diff(original or {}, desired, live)
    if patch is _NOTHING:
        return {}
    assert isinstance(patch, dict)
    meta = patch.get("metadata")
    if isinstance(meta, dict):
        for server_owned in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            meta.pop(server_owned, None)
        if not meta:
            patch.pop("metadata")
    return patch
