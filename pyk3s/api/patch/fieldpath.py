"""Field sets for managedFields: paths, the ``fieldsV1`` trie, and the typed walks over objects.

A path is a tuple of elements spelled as in ``fieldsV1``: ``f:<field>``, ``k:<json of the list-map key
fields>``, ``v:<json value>`` (set member), ``i:<index>``. A set is a ``frozenset`` of paths. In the trie
a member with children carries ``".": {}``; a member without children is ``{}`` (spec 5.10).

Walks follow sigs.k8s.io/structured-merge-diff:

* ``to_field_set`` (what an applier owns): scalars, atomic lists/maps, empty maps and list elements.
* ``compare`` (what an update changed): modified scalars/atomics, added and removed paths, where a
  missing non-pointer struct counts as ``{}`` so it is never "added".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .schema import ANY, KEY_DEFAULTS, FieldType, child_type, elem_type

__all__ = [
    "FieldSet", "Path", "closure", "compare", "format_path", "item_element", "remove_paths",
    "set_to_trie", "to_field_set", "trie_to_set",
]

Path = tuple[str, ...]
FieldSet = frozenset[Path]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def item_element(item: Any, t: FieldType, index: int) -> str:
    """Path element naming one element of list type ``t``."""
    if t.list_type == "map" and isinstance(item, dict):
        return "k:" + _json({k: item.get(k, KEY_DEFAULTS.get(k)) for k in t.keys
                             if k in item or k in KEY_DEFAULTS})
    if t.list_type == "set":
        return "v:" + _json(item)
    return f"i:{index}"


def _is_granular_list(t: FieldType) -> bool:
    return t.kind == "list" and t.list_type in ("map", "set")


def _is_atomic(t: FieldType) -> bool:
    return t.atomic or (t.kind == "list" and not _is_granular_list(t))


# ---------------------------------------------------------------------------------------------- trie

def _sort_key(element: str) -> tuple[int, str]:
    return ({".": 0, "f": 1, "k": 2, "v": 3, "i": 4}.get(element[0], 5), element)


# The recursive helpers are module functions, not closures: a closure that calls itself is a reference
# cycle, which (with the field set it holds) stays in memory until a full garbage collection; these
# run on every write.

def _render(node: dict, prefix: Path, members: set[Path]) -> dict:
    out: dict = {}
    if node and prefix in members:
        out["."] = {}
    for element in sorted(node, key=_sort_key):
        out[element] = _render(node[element], (*prefix, element), members)
    return out


def set_to_trie(paths: Iterable[Path]) -> dict:
    members = set(paths)
    root: dict = {}
    for path in members:
        node = root
        for element in path:
            node = node.setdefault(element, {})
    return _render(root, (), members)


def _walk(node: Any, prefix: Path, out: set[Path]) -> None:
    if not isinstance(node, dict):
        return
    if not node and prefix:
        out.add(prefix)
    for element, child in node.items():
        if element == ".":
            if prefix:
                out.add(prefix)
        else:
            _walk(child, (*prefix, element), out)


def trie_to_set(trie: Any) -> FieldSet:
    out: set[Path] = set()
    _walk(trie, (), out)
    return frozenset(out)


def closure(paths: Iterable[Path]) -> FieldSet:
    """The paths plus every prefix of them (upstream's EnsureNamedFieldsAreMembers, roughly)."""
    out: set[Path] = set()
    for p in paths:
        for n in range(1, len(p) + 1):
            out.add(p[:n])
    return frozenset(out)


def format_path(path: Path) -> str:
    """A path as structured-merge-diff prints it: ``.spec.containers[name="web"].image``."""
    parts: list[str] = []
    for element in path:
        kind, body = element[0], element[2:]
        if kind == "f":
            parts.append("." + body)
        elif kind == "k":
            keys = json.loads(body)
            parts.append("[" + ",".join(f"{k}={_json(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            parts.append("[=" + body + "]")
        else:
            parts.append("[" + body + "]")
    return "".join(parts)


# --------------------------------------------------------------------------------------------- walks

def to_field_set(obj: Any, t: FieldType) -> FieldSet:
    out: set[Path] = set()
    _collect(obj, t, (), out)
    return frozenset(out)


def _collect(value: Any, t: FieldType, path: Path, out: set[Path]) -> None:
    if isinstance(value, dict) and not t.atomic:
        for key, child in value.items():
            p = (*path, "f:" + key)
            ct = child_type(t, key)
            if child is None or (isinstance(child, dict) and not child) or not isinstance(child, dict | list):
                out.add(p)
            _collect(child, ct, p, out)
    elif isinstance(value, list) and _is_granular_list(t):
        et = elem_type(t)
        for i, item in enumerate(value):
            p = (*path, item_element(item, t, i))
            out.add(p)
            _collect(item, et, p, out)
    elif path and isinstance(value, dict | list):
        out.add(path)


def compare(old: Any, new: Any, t: FieldType) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(modified, added, removed) between two objects of type ``t``."""
    modified: set[Path] = set()
    added: set[Path] = set()
    removed: set[Path] = set()
    _compare(old, new, t, (), modified, added, removed)
    return frozenset(modified), frozenset(added), frozenset(removed)


_ABSENT = object()


def _compare(old: Any, new: Any, t: FieldType, path: Path,
             modified: set[Path], added: set[Path], removed: set[Path]) -> None:
    if old is _ABSENT and new is _ABSENT:
        return
    if old is _ABSENT:
        if path:
            added.add(path)
        _compare_children(_empty_like(new), new, t, path, modified, added, removed, one_sided=True)
        return
    if new is _ABSENT:
        if path:
            removed.add(path)
        _compare_children(old, _empty_like(old), t, path, modified, added, removed, one_sided=True)
        return
    if _is_atomic(t) or not isinstance(old, dict | list) or not isinstance(new, dict | list) \
            or type(old) is not type(new) or (isinstance(old, list) and not _is_granular_list(t)):
        if old != new and path:
            modified.add(path)
        return
    _compare_children(old, new, t, path, modified, added, removed, one_sided=False)


def _empty_like(value: Any) -> Any:
    return {} if isinstance(value, dict) else [] if isinstance(value, list) else _ABSENT


def _compare_children(old: Any, new: Any, t: FieldType, path: Path, modified: set[Path],
                      added: set[Path], removed: set[Path], *, one_sided: bool) -> None:
    if old is _ABSENT or new is _ABSENT or _is_atomic(t) or (isinstance(old, list) and not _is_granular_list(t)):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            ct = child_type(t, key)
            ov = old.get(key, _ABSENT)
            nv = new.get(key, _ABSENT)
            if not one_sided and ct.value:
                # Non-pointer structs and non-omitempty lists exist (as {} or null) in every typed
                # object, so they are never reported as added or removed themselves.
                if ov is _ABSENT or ov is None:
                    ov = _empty_like(nv)
                if nv is _ABSENT or nv is None:
                    nv = _empty_like(ov)
            _compare(ov, nv, ct, (*path, "f:" + key), modified, added, removed)
    elif isinstance(old, list) and isinstance(new, list) and _is_granular_list(t):
        et = elem_type(t)
        olds = {item_element(v, t, i): v for i, v in enumerate(old)}
        news = {item_element(v, t, i): v for i, v in enumerate(new)}
        for element in list(olds) + [e for e in news if e not in olds]:
            _compare(olds.get(element, _ABSENT), news.get(element, _ABSENT), et, (*path, element),
                     modified, added, removed)


def remove_paths(obj: Any, paths: Iterable[Path], t: FieldType) -> None:
    """Delete every path from ``obj`` in place (a removed path takes its subtree with it)."""
    for path in sorted(paths, key=len):
        _remove(obj, path, t)


def _remove(node: Any, path: Path, t: FieldType) -> None:
    for n, element in enumerate(path):
        last = n == len(path) - 1
        if element.startswith("f:"):
            if not isinstance(node, dict) or element[2:] not in node:
                return
            if last:
                del node[element[2:]]
                return
            t = child_type(t, element[2:])
            node = node[element[2:]]
        else:
            if not isinstance(node, list):
                return
            matches = [i for i, v in enumerate(node) if item_element(v, t, i) == element]
            if not matches:
                return
            if last:
                for i in reversed(matches):
                    del node[i]
                return
            node = node[matches[0]]
            t = elem_type(t) if t is not ANY else ANY
