"""API semantics of writes: JSON patch, merge patch, strategic merge patch, server-side apply and
managedFields bookkeeping (spec 5.5-5.12). Pure functions over plain dicts; no I/O.

The API core picks the function from the PATCH Content-Type, answers 415 for strategic merge
patches of custom resources before calling :func:`strategic_merge_patch`, and maps
:class:`PatchError` to a Status with ``.code`` and :class:`ApplyConflict` to 409 ``Conflict``.
"""

from __future__ import annotations

from .apply import LAST_APPLIED, server_side_apply
from .errors import ApplyConflict, PatchError
from .fieldpath import format_path
from .jsonpatch import json_patch
from .managed import fields_v1, update_managed_fields
from .mergepatch import merge_patch
from .strategic import strategic_merge_patch

__all__ = [
    "LAST_APPLIED", "ApplyConflict", "PatchError", "fields_v1", "format_path", "json_patch", "merge_patch",
    "server_side_apply", "strategic_merge_patch", "update_managed_fields",
]
