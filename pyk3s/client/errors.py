"""Errors raised by the client, one per Kubernetes Status reason that callers act on.

    ApiError                 any non-2xx answer; .status, .reason, .message, .body (the Status dict)
     +-- BadRequest          400
     +-- Unauthorized        401
     +-- Forbidden           403
     +-- NotFound            404
     +-- Conflict            409 reason Conflict (stale resourceVersion, apply conflict)
     +-- AlreadyExists       409 reason AlreadyExists
     +-- Gone                410 (resourceVersion too old)
     +-- Invalid             422
    TransportError           the server could not be reached
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "TransportError",
    "Unauthorized",
    "error_for",
]


class TransportError(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}


class BadRequest(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class AlreadyExists(ApiError):
    pass


class Gone(ApiError):
    pass


class Invalid(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
}


def error_for(status: int, body: dict[str, Any] | None, raw: bytes = b"") -> ApiError:
    body = body if isinstance(body, dict) else {}
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or raw[:500].decode("utf-8", "replace"))
    cls: type[ApiError] = _BY_STATUS.get(status, ApiError)
    if status == 409 and reason == "AlreadyExists":
        cls = AlreadyExists
    return cls(status, reason or cls.__name__, message, body)
