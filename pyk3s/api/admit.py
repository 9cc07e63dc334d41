"""Access to the admission library (:mod:`pyk3s.api.admission`: defaults, validation, Invalid messages).

When that package is not installed the server still runs, with no defaulting or validation beyond
its own, and says so once in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

__all__ = ["admission"]

log = logging.getLogger("pyk3s.api.admit")


@dataclass(frozen=True, slots=True)
class _Cause:
    reason: str
    message: str
    field: str


def _format_invalid_message(kind: str, group: str, name: str, causes: list[Any]) -> str:
    qualified = f"{kind}.{group}" if group else kind
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return f'{qualified} "{name}" is invalid: {body}'


try:
    from pyk3s.api import admission as _lib

    admission: Any = _lib
    if not hasattr(_lib, "validate"):
        raise ImportError("pyk3s.api.admission has no validate()")
except ImportError:
    log.warning("api: pyk3s.api.admission is not available; objects are stored without defaulting or validation")
    admission = SimpleNamespace(
        Cause=_Cause,
        set_defaults=lambda gvk, obj: None,
        validate=lambda gvk, obj, old: [],
        format_invalid_message=_format_invalid_message,
    )
