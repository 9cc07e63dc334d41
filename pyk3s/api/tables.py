"""Server-side Table rendering for ``kubectl get`` (spec 3).

:func:`table_for` answers a request that asked for a Table (``Accept: ...;as=Table``, see
:func:`pyk3s.api.query.table_request`); :func:`render_table` turns objects into a ``meta.k8s.io/v1`` Table with the columns of
:data:`pyk3s.api.printers.PRINTERS`; kinds without a printer get NAME and AGE; custom resources use
their ``additionalPrinterColumns`` (a JSONPath subset; ``type: date`` rendered as an age like
apimachinery's ``duration.HumanDuration``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

from pyk3s.api.printers import GENERIC, NAME, PRINTERS, Column, Printer, human_duration, since
from pyk3s.api.query import TableRequest
from pyk3s.api.resources import ResourceInfo

__all__ = ["PRINTERS", "Column", "eval_jsonpath", "human_duration", "render_table", "table_for"]


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


# -- custom resources ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-/]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]"
                    r"|\['([^']+)'\]")


def eval_jsonpath(obj: Any, path: str) -> list[Any]:
    """The subset of kubectl JSONPath used in printer columns: .a.b, ['a.b'], [0], [*], [?(@.k=="v")]."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    path = path.removeprefix("$")
    values = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        key, index, fkey, fval, quoted = m.groups()
        nxt: list[Any] = []
        for v in values:
            if key is not None or quoted is not None:
                k = key if key is not None else quoted
                if isinstance(v, dict) and k in v:
                    nxt.append(v[k])
            elif index is not None and isinstance(v, list):
                if index == "*":
                    nxt.extend(v)
                elif int(index) < len(v):
                    nxt.append(v[int(index)])
            elif fkey is not None and isinstance(v, list):
                for item in v:
                    cur: Any = item
                    for part in fkey.split("."):
                        cur = cur.get(part) if isinstance(cur, dict) else None
                    if cur is not None and str(cur) == fval:
                        nxt.append(item)
        values = nxt
    return values


def _crd_cell(obj: dict, col: dict, now: dt.datetime) -> Any:
    found = eval_jsonpath(obj, col.get("jsonPath", ""))
    if not found:
        return None
    kind = col.get("type", "string")
    if kind == "date":
        return since(found[0], now)
    if len(found) == 1:
        value = found[0]
        if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
        if kind in ("number", "boolean") or (kind == "integer" and isinstance(value, int)):
            return value
        return value if isinstance(value, str) else _json_text(value)
    return ",".join(v if isinstance(v, str) else _json_text(v) for v in found)


def _json_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _crd_printer(columns: Sequence[dict]) -> Printer:
    defs = [NAME]
    for c in columns:
        desc = c.get("description") or f"Custom resource definition column (in JSONPath format): {c.get('jsonPath')}"
        defs.append(Column(c.get("name", ""), c.get("type", "string"), desc, int(c.get("priority", 0)),
                           c.get("format", "")))
    return Printer(tuple(defs), lambda o, now: [_meta(o).get("name", ""), *(_crd_cell(o, c, now) for c in columns)])


# -- the table --------------------------------------------------------------------------------


def _row_object(obj: dict, include_object: str, info: ResourceInfo) -> dict | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}


def printer_for(info: ResourceInfo, crd_columns: Sequence[dict] | None) -> Printer:
    if info.is_custom or crd_columns:
        return _crd_printer(crd_columns) if crd_columns else GENERIC
    return PRINTERS.get((info.group, info.plural), GENERIC)


def render_table(
    info: ResourceInfo,
    objects: list[dict],
    *,
    include_object: str = "Metadata",
    crd_columns: list[dict] | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """A ``meta.k8s.io/v1`` Table of ``objects``; the caller fills ``metadata`` (resourceVersion, continue)."""
    now = now or dt.datetime.now(dt.UTC)
    if crd_columns is None and info.printer_columns:
        crd_columns = list(info.printer_columns)
    printer = printer_for(info, crd_columns)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, now)}
        ro = _row_object(obj, include_object, info)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [c.definition() for c in printer.columns],
        "rows": rows,
    }


def table_for(info: ResourceInfo, objects: list[dict], table: TableRequest) -> dict:
    """The Table a request asked for: ``objects`` as rows, in the ``meta.k8s.io`` version it named."""
    out = render_table(info, objects, include_object=table.include_object)
    out["apiVersion"] = f"meta.k8s.io/{table.version}"
    return out
