"""The shape of a chart's values (pure): which keys exist and what type each holds.

A chart's shape starts from its default values (a default mapping lists the keys of a closed object,
a default scalar or list gives the type) and is completed by a table of overrides for keys whose
default is ``null``, keys the templates read without a default, free-form mappings (labels,
resources, affinity) and mappings of named entries (``ports.<name>``). :func:`check` walks the
values a render will use and names every unknown key and every value of the wrong type, the way the
chart's ``values.schema.json`` makes ``helm install`` refuse them. ``null`` is always accepted: in
Helm it removes a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ANY", "MAP", "Leaf", "ListOf", "MapOf", "Obj", "Shape", "ValueProblem", "check", "from_defaults",
           "leaf", "with_overrides"]


@dataclass(frozen=True, slots=True)
class Leaf:
    """A scalar, list or free-form mapping; ``types`` from: str, int, num, bool, list, map, any."""

    types: frozenset[str]


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Shape


@dataclass(frozen=True, slots=True)
class Obj:
    """A mapping with known keys; ``extra`` is the shape of any other key (None: other keys are unknown)."""

    fields: Mapping[str, Shape] = field(default_factory=dict)
    extra: Shape | None = None


Shape = Leaf | ListOf | Obj


def leaf(spec: str) -> Leaf:
    """``leaf("int|str")``."""
    return Leaf(frozenset(spec.split("|")))


ANY = leaf("any")
MAP = leaf("map")


def MapOf(entry: Shape) -> Obj:  # noqa: N802 - reads as a type constructor in the shape tables
    return Obj({}, entry)


@dataclass(frozen=True, slots=True)
class ValueProblem:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def from_defaults(value: Any) -> Shape:
    if isinstance(value, dict):
        if not value:
            return MAP
        return Obj({str(k): from_defaults(v) for k, v in value.items()})
    if isinstance(value, list):
        return leaf("list")
    if isinstance(value, bool):
        return leaf("bool")
    if isinstance(value, int):
        return leaf("int")
    if isinstance(value, float):
        return leaf("num")
    if isinstance(value, str):
        return leaf("str")
    return ANY


def with_overrides(shape: Shape, overrides: Mapping[str, Shape]) -> Shape:
    """``shape`` with the dotted paths of ``overrides`` replaced or added."""
    for path, sub in overrides.items():
        shape = _put(shape, path.split("."), sub)
    return shape


def _put(shape: Shape, parts: list[str], sub: Shape) -> Shape:
    if not parts:
        return sub
    if not isinstance(shape, Obj):
        shape = Obj()
    head, rest = parts[0], parts[1:]
    fields = dict(shape.fields)
    fields[head] = _put(fields.get(head, Obj()), rest, sub)
    return Obj(fields, shape.extra)


_NAMES = {"str": "a string", "int": "an integer", "num": "a number", "bool": "a boolean (true or false)",
          "list": "a list", "map": "a mapping", "any": "any value"}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return "any"


def _accepts(types: frozenset[str], value: Any) -> bool:
    kind = _type_of(value)
    if "any" in types or kind in types:
        return True
    return kind == "int" and "num" in types


def _describe(value: Any) -> str:
    kind = _type_of(value)
    if kind in ("str", "int", "num", "bool"):
        text = repr(value) if kind == "str" else str(value).lower() if kind == "bool" else str(value)
        return f"{_NAMES[kind].split(' (')[0]} {text}"
    return _NAMES.get(kind, kind)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check(values: Any, shape: Shape, chart: str, path: str = "") -> list[ValueProblem]:
    """Every unknown key and wrongly typed value in ``values`` (paths like ``ports.web.port``)."""
    out: list[ValueProblem] = []
    _check(values, shape, chart, path, out)
    return out


def _check(value: Any, shape: Shape, chart: str, path: str, out: list[ValueProblem]) -> None:
    if value is None:
        return
    if isinstance(shape, Leaf):
        if not _accepts(shape.types, value):
            want = " or ".join(_NAMES[t] for t in sorted(shape.types))
            out.append(ValueProblem(path, f"must be {want}, not {_describe(value)}"))
        return
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            out.append(ValueProblem(path, f"must be a list, not {_describe(value)}"))
            return
        for i, item in enumerate(value):
            _check(item, shape.item, chart, _join(path, i), out)
        return
    if not isinstance(value, dict):
        out.append(ValueProblem(path, f"must be a mapping, not {_describe(value)}"))
        return
    for key, sub in value.items():
        here = _join(path, str(key))
        known = shape.fields.get(str(key))
        if known is None:
            known = shape.extra
        if known is None:
            out.append(ValueProblem(here, f"unknown value: chart {chart} has no such key"))
            continue
        _check(sub, known, chart, here, out)
