"""Validation causes worded exactly as kube-apiserver's field errors (k8s.io/apimachinery
``util/validation/field``), and the ``<Kind> "<name>" is invalid: ...`` message built from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Cause", "GoValue", "duplicate", "forbidden", "format_invalid_message", "go_repr", "invalid",
    "not_supported", "required", "too_long",
]

_TYPE_TEXT = {
    "FieldValueRequired": "Required value", "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value", "FieldValueDuplicate": "Duplicate value",
    "FieldValueForbidden": "Forbidden", "FieldValueTooLong": "Too long", "FieldValueNotFound": "Not found",
}


@dataclass(frozen=True, slots=True)
class Cause:
    reason: str  # FieldValueRequired | FieldValueInvalid | FieldValueNotSupported | ...
    message: str  # the error body without the field, as in Status.details.causes[].message
    field: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True, slots=True)
class GoValue:
    """A value already rendered as Go's %#v prints it (structs, typed maps)."""
    text: str


def go_repr(value: Any) -> str:
    """A bad value as the field error prints it: %q for strings, %v for numbers and bools."""
    if isinstance(value, GoValue):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "map[string]string{" + ", ".join(
            f"{json.dumps(k)}:{json.dumps(str(v))}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[]string{" + ", ".join(json.dumps(str(v)) for v in value) + "}"
    return str(value)


def _body(kind: str, detail: str, value: Any = None, *, show_value: bool = True) -> str:
    text = _TYPE_TEXT[kind]
    if show_value:
        text += ": " + go_repr(value)
    return f"{text}: {detail}" if detail else text


def required(field: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", _body("FieldValueRequired", detail, show_value=False), field)


def forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", _body("FieldValueForbidden", detail, show_value=False), field)


def too_long(field: str, max_bytes: int) -> Cause:
    unit = "byte" if max_bytes == 1 else "bytes"
    return Cause("FieldValueTooLong",
                 _body("FieldValueTooLong", f"may not be more than {max_bytes} {unit}", show_value=False), field)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", _body("FieldValueInvalid", detail, value), field)


def duplicate(field: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", _body("FieldValueDuplicate", "", value), field)


def not_found(field: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", _body("FieldValueNotFound", "", value), field)


def not_supported(field: str, value: Any, valid: list[str]) -> Cause:
    detail = "supported values: " + ", ".join(json.dumps(v) for v in valid) if valid else ""
    return Cause("FieldValueNotSupported", _body("FieldValueNotSupported", detail, value), field)


def format_invalid_message(kind: str, group: str, name: str, causes: list[Cause]) -> str:
    """``ConfigMap "x" is invalid: [a: ..., b: ...]``; one cause goes without brackets; duplicate
    messages are folded like upstream's aggregate error."""
    qualified = f"{kind}.{group}" if group else kind
    head = f"{qualified} {json.dumps(name, ensure_ascii=False)} is invalid"
    texts: list[str] = []
    for c in causes:
        if str(c) not in texts:
            texts.append(str(c))
    if not texts:
        return head
    if len(texts) == 1:
        return f"{head}: {texts[0]}"
    return f"{head}: [{', '.join(texts)}]"
