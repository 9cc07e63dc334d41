"""A small runner for chart test cases in the style of helm-unittest (the Traefik chart's own test format).

A case renders the chart with ``set`` as the user's values for release ``RELEASE-NAME`` in namespace
``NAMESPACE`` (as helm-unittest does), keeps the documents of ``template`` (a path under
``traefik/templates/``), and checks each assertion on document ``documentIndex`` (default 0):
``equal``, ``notEqual``, ``contains``, ``notContains``, ``isNull``, ``isNotNull``, ``exists``,
``notExists``, ``isKind``, ``hasDocuments``, ``lengthEqual``, ``failedTemplate`` (``errorMessage`` or
``errorPattern``).
"""

from __future__ import annotations

import re
from typing import Any

from pyk3s.controllers.helm.chart import PackagedChart, Release, RenderError

__all__ = ["run_case", "get_path"]

_MISSING = object()


def _tokens(path: str) -> list[str | int]:
    out: list[str | int] = []
    buf = ""
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == ".":
            if buf:
                out.append(buf)
            buf = ""
        elif ch == "[":
            if buf:
                out.append(buf)
            buf = ""
            end = path.index("]", i)
            inner = path[i + 1:end]
            out.append(int(inner) if inner.isdigit() else inner.strip("\"'"))
            i = end
        else:
            buf += ch
        i += 1
    if buf:
        out.append(buf)
    return out


def get_path(doc: Any, path: str) -> Any:
    node = doc
    for tok in _tokens(path):
        if isinstance(tok, int):
            if not isinstance(node, list) or tok >= len(node):
                return _MISSING
            node = node[tok]
        else:
            if not isinstance(node, dict) or tok not in node:
                return _MISSING
            node = node[tok]
    return node


def _contains(container: Any, content: Any) -> bool:
    if not isinstance(container, list):
        return False
    for item in container:
        if item == content:
            return True
    return False


def run_case(chart: PackagedChart, case: dict[str, Any]) -> None:
    name = case["it"]
    release = Release(case.get("release", "RELEASE-NAME"), case.get("namespace", "NAMESPACE"))
    asserts = case["asserts"]
    try:
        rendered = chart.render(case.get("set") or {}, release)
    except RenderError as err:
        for a in asserts:
            if "failedTemplate" in a:
                want = a["failedTemplate"]
                if "errorMessage" in want:
                    assert str(err.message) == want["errorMessage"] or str(err) == want["errorMessage"], \
                        f"{name}: error {err} != {want['errorMessage']}"
                if "errorPattern" in want:
                    assert re.search(want["errorPattern"], str(err)), f"{name}: error {err} !~ {want['errorPattern']}"
                if "key" in want:
                    assert err.key == want["key"], f"{name}: error key {err.key!r} != {want['key']!r}"
                return
        raise AssertionError(f"{name}: render failed: {err}") from None
    default_template = case.get("template")
    for a in asserts:
        (kind, spec), = ((k, v) for k, v in a.items() if k not in ("template", "documentIndex"))
        if kind == "failedTemplate":
            raise AssertionError(f"{name}: expected a render failure")
        spec = dict(spec or {})
        template = spec.pop("template", a.get("template", default_template))
        index = spec.pop("documentIndex", a.get("documentIndex", case.get("documentIndex", 0)))
        docs = [m.obj for m in rendered.objects
                if template is None or m.source.split("/templates/", 1)[1] == template]
        if kind == "hasDocuments":
            assert len(docs) == spec["count"], f"{name}: {len(docs)} documents from {template}, want {spec['count']}"
            continue
        assert index < len(docs), f"{name}: no document {index} from {template} (got {len(docs)})"
        doc = docs[index]
        if kind == "isKind":
            assert doc["kind"] == spec["of"], f"{name}: kind {doc['kind']} != {spec['of']}"
            continue
        got = get_path(doc, spec["path"])
        where = f"{name}: {spec['path']}"
        if kind == "equal":
            assert got == spec["value"], f"{where} = {got!r}, want {spec['value']!r}"
        elif kind == "notEqual":
            assert got != spec["value"], f"{where} = {got!r}"
        elif kind == "contains":
            assert _contains(got, spec["content"]), f"{where} = {got!r} lacks {spec['content']!r}"
        elif kind == "notContains":
            assert not _contains(got, spec["content"]), f"{where} = {got!r} has {spec['content']!r}"
        elif kind == "isNull":
            assert got is _MISSING or got is None, f"{where} = {got!r}, want null"
        elif kind in ("isNotNull", "exists"):
            assert got is not _MISSING and got is not None, f"{where} missing"
        elif kind == "notExists":
            assert got is _MISSING, f"{where} = {got!r}, want absent"
        elif kind == "isNullOrEmpty":
            assert got is _MISSING or not got, f"{where} = {got!r}, want empty"
        elif kind == "lengthEqual":
            assert isinstance(got, list | dict) and len(got) == spec["count"], f"{where} = {got!r}"
        else:
            raise AssertionError(f"{name}: unknown assertion {kind}")
