"""RFC 7386 JSON merge patch (``application/merge-patch+json``, spec 5.5): objects merge recursively,
``null`` deletes a key, anything else (lists included) replaces."""

from __future__ import annotations

import copy
from typing import Any

from .errors import PatchError

__all__ = ["merge_patch", "merge_value"]


def merge_value(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_value(out.get(key), value)
    return out


def merge_patch(obj: dict, patch: dict) -> dict:
    if not isinstance(patch, dict):
        raise PatchError(400, "merge patch: the body must be a JSON object")
    result = merge_value(copy.deepcopy(obj), patch)
    return result if isinstance(result, dict) else {}
