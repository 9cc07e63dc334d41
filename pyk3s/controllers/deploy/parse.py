"""Turn a manifest file into objects (pure): multi-document YAML or JSON, ``kind: List`` expanded.

Errors name the document (1-based) and, for YAML, the line, and say where a missing ``---``
probably belongs when a document repeats top-level keys (the K3s guide's dashboard listing lacks one).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

__all__ = ["ManifestError", "parse_documents", "parse_manifest"]


class ManifestError(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one, as kubectl does."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            hint = ""
            if node.start_mark.column == 0 and key in ("apiVersion", "kind", "metadata"):
                hint = (
                    f"; a second document probably starts at line {line}: add a line with `---` "
                    f"before it"
                )
            raise ManifestError(
                f'line {line}: mapping key "{key}" already defined at line {seen[key]}{hint}'
            )
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expand(doc: Any, index: int) -> list[dict[str, Any]]:
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise ManifestError(f"document {index}: expected an object, got {type(doc).__name__}")
    kind = str(doc.get("kind", ""))
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        out: list[dict[str, Any]] = []
        for item in doc.get("items") or []:
            out.extend(_expand(item, index))
        return out
    if not doc.get("apiVersion") or not kind:
        raise ManifestError(f"document {index}: apiVersion and kind are required")
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict):
        raise ManifestError(f"document {index} ({kind}): metadata must be an object")
    name = meta.get("name")
    if not name:
        raise ManifestError(f"document {index} ({kind}): metadata.name is required")
    return [doc]


def parse_documents(data: bytes, filename: str = "") -> list[tuple[int, dict[str, Any]]]:
    """(1-based document number, object) for every object in the file, ``kind: List`` items expanded."""
    text = data.decode("utf-8", errors="strict") if data else ""
    if filename.lower().endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError as err:
            raise ManifestError(f"invalid JSON: {err}") from None
        docs = doc if isinstance(doc, list) else [doc]
        return [(i, o) for i, d in enumerate(docs, 1) for o in _expand(d, i)]
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        for i, doc in enumerate(yaml.load_all(text, Loader=_StrictLoader), 1):
            out.extend((i, o) for o in _expand(doc, i))
    except yaml.YAMLError as err:
        raise ManifestError(f"invalid YAML: {err}") from None
    return out


def parse_manifest(data: bytes, filename: str = "") -> list[dict[str, Any]]:
    return [obj for _index, obj in parse_documents(data, filename)]
