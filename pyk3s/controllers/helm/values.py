"""Chart values as Helm computes them (pure): parse, merge the user's sources, apply ``--set``, coalesce.

Rules (Helm 3, ``pkg/cli/values`` and ``pkg/chartutil/coalesce.go``):

- every values source is a YAML mapping; sources given later win, key by key: two mappings merge
  recursively, anything else (a list, a scalar, ``null``) replaces what was there;
- ``--set`` assignments (``a.b[0].c=v``) go on top of the merged sources;
- the result is coalesced with the chart's defaults: a user mapping merges into the default mapping,
  any other user value replaces the default, and a user ``null`` deletes the default key (so
  ``ports: {metrics: null}`` removes the ``metrics`` entry point).

helm-controller feeds the sources in this order (k3s.md 5.3.2): HelmChart ``valuesContent``, the
HelmChart's ``valuesSecrets``, HelmChartConfig ``valuesContent``, its ``valuesSecrets``, then the
HelmChart's ``set`` map; a ``set`` value that is an integer, ``true``, ``false`` or ``null`` is typed
(``--set``), anything else is a string (``--set-string``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["ValuesError", "ValuesSource", "coalesce", "merge_sources", "parse_set", "parse_values", "set_value"]

Values = dict[str, Any]


class ValuesError(Exception):
    """A values source that cannot be used; ``where`` names the source (and key)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True, slots=True)
class ValuesSource:
    """One values input: where it comes from (for messages) and its YAML text."""

    where: str
    text: str


def parse_values(source: ValuesSource) -> Values:
    """The mapping in ``source``; empty text is an empty mapping."""
    if not source.text.strip():
        return {}
    try:
        doc = yaml.safe_load(source.text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ValuesError(source.where, f"not valid YAML: {line}{err.problem or err}") from None
    except yaml.YAMLError as err:
        raise ValuesError(source.where, f"not valid YAML: {err}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValuesError(source.where, f"must be a YAML mapping of chart values, not a {_kind(doc)}")
    bad = [k for k in doc if not isinstance(k, str)]
    if bad:
        raise ValuesError(source.where, f"value keys must be strings, found {bad[0]!r}")
    return doc


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")


def merge_maps(base: Mapping[str, Any], override: Mapping[str, Any]) -> Values:
    """Helm's mergeMaps: ``override`` wins; two mappings merge recursively."""
    out: Values = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = merge_maps(current, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_sources(sources: list[Values]) -> Values:
    out: Values = {}
    for values in sources:
        out = merge_maps(out, values)
    return out


def coalesce(user: Mapping[str, Any], defaults: Mapping[str, Any]) -> Values:
    """The values templates see: ``user`` over ``defaults``; a user ``null`` deletes a default key."""
    out: Values = copy.deepcopy(dict(user))
    for key, default in defaults.items():
        if key in out:
            value = out[key]
            if value is None:
                del out[key]
            elif isinstance(value, dict) and isinstance(default, dict):
                out[key] = coalesce(value, default)
        else:
            out[key] = copy.deepcopy(default)
    return out


# -- --set ------------------------------------------------------------------------------------------

def _split_key(key: str) -> list[str | int]:
    """``a.b\\.c[2].d`` -> ["a", "b.c", 2, "d"]."""
    parts: list[str | int] = []
    buf: list[str] = []
    i = 0
    while i < len(key):
        ch = key[i]
        if ch == "\\" and i + 1 < len(key):
            buf.append(key[i + 1])
            i += 2
            continue
        if ch == ".":
            if buf:
                parts.append("".join(buf))
                buf = []
            elif not parts or not isinstance(parts[-1], int):
                raise ValueError(f"empty key segment in {key!r}")
            i += 1
            continue
        if ch == "[":
            end = key.find("]", i)
            if end < 0:
                raise ValueError(f"unterminated index in {key!r}")
            if buf:
                parts.append("".join(buf))
                buf = []
            if not parts:
                raise ValueError(f"index without a key in {key!r}")
            index = key[i + 1:end]
            if not index.isdigit():
                raise ValueError(f"index {index!r} in {key!r} is not a non-negative integer")
            parts.append(int(index))
            i = end + 1
            continue
        buf.append(ch)
        i += 1
    if buf:
        parts.append("".join(buf))
    if not parts or not isinstance(parts[0], str):
        raise ValueError(f"invalid key {key!r}")
    return parts


def typed_set_value(value: Any) -> Any:
    """helm-controller's choice between ``--set`` and ``--set-string`` for one ``spec.set`` entry."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    text = str(value)
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    return text


def set_value(values: Values, key: str, value: Any) -> None:
    """Assign ``value`` at the ``--set`` path ``key`` inside ``values`` (maps and lists made as needed)."""
    parts = _split_key(key)
    node: Any = values
    for here, nxt in zip(parts, parts[1:], strict=False):
        child_default: Any = [] if isinstance(nxt, int) else {}
        if isinstance(here, int):
            assert isinstance(node, list)
            while len(node) <= here:
                node.append(None)
            if not isinstance(node[here], type(child_default)):
                node[here] = child_default
            node = node[here]
        else:
            if not isinstance(node.get(here), type(child_default)):
                node[here] = child_default
            node = node[here]
    last = parts[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
        node[last] = value
    else:
        node[last] = value


def parse_set(spec_set: Mapping[str, Any], where: str, base: Mapping[str, Any] | None = None) -> Values:
    """``base`` (a copy) with a HelmChart's ``spec.set`` applied (keys sorted, as helm-controller passes them)."""
    out: Values = copy.deepcopy(dict(base or {}))
    for key in sorted(spec_set):
        try:
            set_value(out, key, typed_set_value(spec_set[key]))
        except (ValueError, AssertionError) as err:
            raise ValuesError(f"{where}[{key!r}]", str(err) or "cannot be set") from None
    return out
