"""RFC 6902 JSON patch (``application/json-patch+json``, spec 5.5).

Operations apply in order to a copy; the first failure aborts the whole patch. A malformed operation
list is a 400; an operation that does not apply (missing path, failed ``test``) is a 422, worded like
the evanphx/json-patch library the real server uses.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import PatchError

__all__ = ["json_patch"]


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(400, f"invalid JSON pointer {path!r}: must be empty or start with '/'")
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list, token: str, path: str, *, for_add: bool = False) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(422, f"Unable to access invalid index: {token}: invalid index referenced")
    i = int(token)
    limit = len(container) if for_add else len(container) - 1
    if i > limit:
        raise PatchError(422, f"Unable to access invalid index: {i}: invalid index referenced")
    return i


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    node = doc
    for t in tokens[:-1]:
        if isinstance(node, dict) and t in node:
            node = node[t]
        elif isinstance(node, list) and t.isdigit() and int(t) < len(node):
            node = node[int(t)]
        else:
            raise PatchError(422, f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    if not isinstance(node, dict | list):
        raise PatchError(422, f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    return node


def _get(doc: Any, path: str, op: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(422, f"{op} operation does not apply: doc is missing from path: {path}: missing value")
        return parent[last]
    return parent[_index(parent, last, path)]


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_index(parent, last, path, for_add=True), value)
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError(422, f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(422, f'{op} operation does not apply: doc is missing path: "{path}": missing value')
        return doc, parent.pop(last)
    return doc, parent.pop(_index(parent, last, path))


def _replace(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, "replace", path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(422, f"replace operation does not apply: doc is missing key: {path}: missing value")
        parent[last] = value
    else:
        parent[_index(parent, last, path)] = value
    return doc


def json_patch(obj: dict, ops: list) -> dict:
    if not isinstance(ops, list):
        raise PatchError(400, "json patch: the body must be a JSON array of operations")
    doc: Any = copy.deepcopy(obj)
    for n, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(400, f"json patch: operation {n} is not an object")
        kind = op.get("op")
        path = op.get("path")
        if path is None:
            raise PatchError(400, f"json patch: operation {n} ({kind}) has no path")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(400, f"json patch: operation {n} ({kind}) has no value")
        if kind in ("move", "copy") and "from" not in op:
            raise PatchError(400, f"json patch: operation {n} ({kind}) has no from")
        match kind:
            case "add":
                doc = _add(doc, path, copy.deepcopy(op["value"]))
            case "remove":
                doc, _ = _remove(doc, path)
            case "replace":
                doc = _replace(doc, path, copy.deepcopy(op["value"]))
            case "move":
                if path.startswith(op["from"] + "/"):
                    raise PatchError(422, f"move operation does not apply: cannot move {op['from']} into {path}")
                doc, value = _remove(doc, op["from"], "move")
                doc = _add(doc, path, value, "move")
            case "copy":
                doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"], "copy")), "copy")
            case "test":
                try:
                    current = _get(doc, path, "test")
                except PatchError:
                    current = _MISSING
                if current is _MISSING or not _equal(current, op["value"]):
                    raise PatchError(422, f"testing value {path} failed: test failed")
            case _:
                raise PatchError(400, f"Unexpected kind: {kind}")
    if not isinstance(doc, dict):
        raise PatchError(422, "json patch: the patched document is not an object")
    return doc


_MISSING = object()


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0 but True != 1
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b
