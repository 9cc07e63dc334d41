"""``metadata.managedFields`` for writes that are not applies (operation ``Update``, spec 5.2/5.10).

Rules, as the real server's field manager keeps them:

* The fields that changed between the old and the new object (modified, added or removed) are taken
  from every manager that owned them; the writing manager gains the modified and added ones.
* A manager left with no fields is dropped; a write that changes nothing leaves the list untouched.
* Server-owned metadata (name, namespace, uid, resourceVersion, generation, creationTimestamp,
  managedFields) and apiVersion/kind are never owned.
* A write that carries its own non-empty ``managedFields`` different from the stored ones replaces
  them (how kubectl migrates client-side-apply owners to server-side apply, spec 5.12); ``[{}]``
  clears them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .fieldpath import FieldSet, Path, compare, set_to_trie, to_field_set, trie_to_set
from .schema import gvk_of, object_type

__all__ = ["ManagerEntry", "decode_managed", "encode_managed", "fields_v1", "strip_server_fields",
           "update_managed_fields"]

_SERVER_FIELDS: tuple[Path, ...] = (
    ("f:apiVersion",), ("f:kind",),
    *(("f:metadata", "f:" + f) for f in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                          "clusterName", "generation", "managedFields", "resourceVersion")),
)


@dataclass(slots=True)
class ManagerEntry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str
    fields: FieldSet

    @property
    def identity(self) -> tuple[str, str, str, str]:
        # Appliers keep one entry across apiVersions; updaters get one per apiVersion.
        return (self.manager, self.operation, "" if self.operation == "Apply" else self.api_version,
                self.subresource)


def strip_server_fields(fields: FieldSet) -> FieldSet:
    return frozenset(p for p in fields if not any(p[:len(s)] == s for s in _SERVER_FIELDS))


def decode_managed(value: Any) -> list[ManagerEntry]:
    entries: list[ManagerEntry] = []
    for raw in value if isinstance(value, list) else []:
        if not isinstance(raw, dict) or not raw.get("manager") and not raw.get("operation"):
            continue
        entries.append(ManagerEntry(
            manager=str(raw.get("manager", "")), operation=str(raw.get("operation", "Update")),
            api_version=str(raw.get("apiVersion", "")), subresource=str(raw.get("subresource", "")),
            time=str(raw.get("time", "")), fields=trie_to_set(raw.get("fieldsV1") or {})))
    return entries


def encode_managed(entries: list[ManagerEntry]) -> list[dict]:
    out: list[dict] = []
    for e in sorted(entries, key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource)):
        if not e.fields:
            continue
        item: dict[str, Any] = {"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version}
        if e.time:
            item["time"] = e.time
        item["fieldsType"] = "FieldsV1"
        item["fieldsV1"] = set_to_trie(e.fields)
        if e.subresource:
            item["subresource"] = e.subresource
        out.append(item)
    return out


def fields_v1(obj: dict, gvk: tuple[str, str, str] | None = None) -> dict:
    """The ``fieldsV1`` trie an applier of ``obj`` would own."""
    t = object_type(gvk or gvk_of(obj))
    return set_to_trie(strip_server_fields(to_field_set(obj, t)))


def _without_managed(obj: dict | None) -> dict:
    out = copy.deepcopy(obj) if isinstance(obj, dict) else {}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return out


def _base_entries(old: dict | None, new: dict) -> list[ManagerEntry]:
    old_mf = ((old or {}).get("metadata") or {}).get("managedFields")
    new_mf = (new.get("metadata") or {}).get("managedFields")
    if new_mf == [{}]:
        return []
    if isinstance(new_mf, list) and new_mf and new_mf != old_mf:
        provided = decode_managed(new_mf)
        if provided:
            return provided
    return decode_managed(old_mf)


def update_managed_fields(old: dict | None, new: dict, *, manager: str, operation: str = "Update",
                          api_version: str, subresource: str | None = None, now: str,
                          gvk: tuple[str, str, str] | None = None) -> list[dict]:
    t = object_type(gvk or gvk_of(new))
    entries = _base_entries(old, new)
    modified, added, removed = compare(_without_managed(old), _without_managed(new), t)
    changed = strip_server_fields(modified | added | removed)
    gained = strip_server_fields(modified | added)
    for e in entries:
        e.fields = e.fields - changed
    if gained:
        me = ManagerEntry(manager, operation, api_version, subresource or "", now, frozenset())
        for e in entries:
            if e.identity == me.identity:
                me = e
                break
        else:
            entries.append(me)
        me.fields = me.fields | gained
        me.time = now
    return encode_managed(entries)
