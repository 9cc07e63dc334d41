"""422 ``Invalid`` answers for an object, built from admission causes (spec 6.9)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pyk3s.api.admission.causes import Cause, format_invalid_message
from pyk3s.api.errors import StatusError, invalid
from pyk3s.api.resources import ResourceInfo

__all__ = ["invalid_field", "invalid_object"]


def invalid_object(info: ResourceInfo, name: str, causes: Sequence[Cause]) -> StatusError:
    msg = format_invalid_message(info.kind, info.group, name, list(causes))
    return invalid(info.kind, info.group, name, msg,
                   [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes])


def invalid_field(info: ResourceInfo, name: str, fld: str, value: Any, message: str,
                  reason: str = "FieldValueInvalid") -> StatusError:
    if reason == "FieldValueRequired":
        detail = f"Required value: {message}"
    else:
        detail = f"Invalid value: {json.dumps(value)}: {message}"
    return invalid_object(info, name, [Cause(reason=reason, message=detail, field=fld)])
