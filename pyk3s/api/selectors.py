"""Label and field selectors (spec 4.8).

Label syntax: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists), ``!k``
(does not exist), ``k>1``, ``k<1``; comma = AND. Field syntax: ``f=v``, ``f==v``, ``f!=v``; comma = AND;
``\\,`` ``\\=`` ``\\\\`` escape. Every resource supports ``metadata.name`` and ``metadata.namespace``;
``FIELD_LABELS`` adds the per-kind fields; any other field gives 400 ``field label not supported: f``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyk3s.api.errors import bad_request

__all__ = [
    "FIELD_LABELS",
    "FieldSelector",
    "LabelSelector",
    "label_selector_string",
    "parse_field_selector",
    "parse_label_selector",
]


@dataclass(frozen=True, slots=True)
class _Req:
    key: str
    op: str  # = != in notin exists !exists gt lt
    values: tuple[str, ...]

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        if op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        v = labels.get(self.key)
        if v is None:
            return False
        try:
            n = int(v)
        except ValueError:
            return False
        return n > int(self.values[0]) if op == "gt" else n < int(self.values[0])


@dataclass(frozen=True, slots=True)
class LabelSelector:
    reqs: tuple[_Req, ...]

    @property
    def empty(self) -> bool:
        return not self.reqs

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.reqs)


_TOKEN = re.compile(r"\s*(\(|\)|,|!=|==|=|!|>|<|[^\s(),!=<>]+)")
_LABEL_KEY = re.compile(r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$")


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return LabelSelector(())
    toks: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise bad_request(f"unable to parse requirement: invalid label selector {text!r}")
        toks.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    reqs: list[_Req] = []
    i = 0

    def err(msg: str) -> Exception:
        return bad_request(f"unable to parse requirement: {msg}")

    while i < len(toks):
        if toks[i] == "!":
            if i + 1 >= len(toks):
                raise err("found '', expected: identifier after '!'")
            reqs.append(_Req(_key(toks[i + 1]), "!exists", ()))
            i += 2
        else:
            key = _key(toks[i])
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(_Req(key, "exists", ()))
            else:
                op = toks[i]
                i += 1
                if op in ("=", "==", "!="):
                    val = toks[i] if i < len(toks) and toks[i] not in (",", "(", ")") else ""
                    if val:
                        i += 1
                    reqs.append(_Req(key, "=" if op != "!=" else "!=", (val,)))
                elif op in (">", "<"):
                    if i >= len(toks) or not toks[i].lstrip("-").isdigit():
                        raise err(f"for 'Gt', 'Lt' operators, the value must be an integer in {text!r}")
                    reqs.append(_Req(key, "gt" if op == ">" else "lt", (toks[i],)))
                    i += 1
                elif op in ("in", "notin"):
                    if i >= len(toks) or toks[i] != "(":
                        raise err(f"found '{toks[i] if i < len(toks) else ''}', expected: '('")
                    i += 1
                    vals: list[str] = []
                    while i < len(toks) and toks[i] != ")":
                        if toks[i] != ",":
                            vals.append(toks[i])
                        i += 1
                    if i >= len(toks):
                        raise err("found '', expected: ')'")
                    i += 1
                    reqs.append(_Req(key, op, tuple(vals)))
                else:
                    raise err(f"found '{op}', expected: '=', '!=', '==', 'in', notin'")
        if i < len(toks):
            if toks[i] != ",":
                raise err(f"found '{toks[i]}', expected: ',' or 'end of string'")
            i += 1
    return LabelSelector(tuple(reqs))


def _key(tok: str) -> str:
    if not _LABEL_KEY.match(tok) or tok in ("in", "notin"):
        raise bad_request(f"unable to parse requirement: invalid label key {tok!r}")
    return tok


def label_selector_string(sel: dict[str, Any] | None) -> str:
    """metav1.LabelSelector (matchLabels/matchExpressions) as the string form (Scale status.selector)."""
    if not sel:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key", ""), sorted(e.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(vals)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(vals)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


# --- field selectors -------------------------------------------------------------------------------

Getter = Callable[[dict[str, Any]], Any]


def _path(*keys: str) -> Getter:
    def get(obj: dict[str, Any]) -> Any:
        cur: Any = obj
        for k in keys:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(k)
        return cur

    return get


def _pod_ips(obj: dict[str, Any]) -> Any:
    return [p.get("ip", "") for p in (obj.get("status") or {}).get("podIPs") or []]


# (group, plural) -> field -> getter
FIELD_LABELS: dict[tuple[str, str], dict[str, Getter]] = {
    ("", "pods"): {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: bool((o.get("spec") or {}).get("hostNetwork")),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.podIPs": _pod_ips,
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    ("", "events"): {
        **{f"involvedObject.{f}": _path("involvedObject", f)
           for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    ("", "secrets"): {"type": _path("type")},
    ("", "namespaces"): {"status.phase": _path("status", "phase")},
    ("", "nodes"): {"spec.unschedulable": lambda o: bool((o.get("spec") or {}).get("unschedulable"))},
    ("apps", "replicasets"): {"status.replicas": lambda o: (o.get("status") or {}).get("replicas", 0)},
}

_COMMON: dict[str, Getter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": lambda o: (o.get("metadata") or {}).get("namespace", ""),
}


def _as_field_string(v: Any) -> str | list[str]:
    if isinstance(v, list):
        return [str(x) for x in v]
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    return str(v)


@dataclass(frozen=True, slots=True)
class _FieldReq:
    field: str
    getter: Getter
    equal: bool
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        got = _as_field_string(self.getter(obj))
        hit = self.value in got if isinstance(got, list) else got == self.value
        return hit if self.equal else not hit


@dataclass(frozen=True, slots=True)
class FieldSelector:
    reqs: tuple[_FieldReq, ...]

    @property
    def empty(self) -> bool:
        return not self.reqs

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.reqs)

    def exact_name(self) -> str | None:
        for r in self.reqs:
            if r.field == "metadata.name" and r.equal:
                return r.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    out, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(text: str | None, group: str, plural: str, extra: dict[str, Getter] | None = None) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector(())
    allowed = {**_COMMON, **FIELD_LABELS.get((group, plural), {}), **(extra or {})}
    reqs: list[_FieldReq] = []
    for term in _split_unescaped(text.strip(), ","):
        if not term:
            continue
        m = re.match(r"^(.*?)(!=|==|=)(.*)$", term)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = m.group(1).strip(), m.group(2), _unescape(m.group(3))
        getter = allowed.get(field)
        if getter is None:
            raise bad_request(f"field label not supported: {field}")
        reqs.append(_FieldReq(field, getter, op != "!=", value))
    return FieldSelector(tuple(reqs))
