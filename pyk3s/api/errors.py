"""API errors and their Kubernetes ``Status`` form (spec 6.9).

Every failure the core answers is an :class:`StatusError`; ``status()`` gives the ``Status`` object
and ``code`` the HTTP code. Messages follow kube-apiserver's wording where clients parse or print it::

    StatusError
     (reason)             code  example message
     NotFound             404   configmaps "x" not found
     AlreadyExists        409   configmaps "x" already exists
     Conflict             409   Operation cannot be fulfilled on configmaps "x": the object has been modified; ...
     Invalid              422   ConfigMap "x" is invalid: data: Invalid value: ...
     BadRequest           400   field label not supported: spec.foo
     Forbidden            403   unable to create new content in namespace x because it is being terminated
     MethodNotAllowed     405   the server does not allow this method on the requested resource
     NotAcceptable        406
     UnsupportedMediaType 415   the body of the request was in an unknown format - accepted media types include: ...
     Expired              410   too old resource version: 5 (100)
     InternalError        500
     ServiceUnavailable   503
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "StatusError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "internal",
    "invalid",
    "method_not_allowed",
    "not_found",
    "status_success",
    "unsupported_media_type",
]


class StatusError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str = "",
        group: str = "",
        kind: str = "",
        uid: str = "",
        causes: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = {}
        for k, v in (("name", name), ("group", group), ("kind", kind), ("uid", uid)):
            if v:
                self.details[k] = v
        if causes:
            self.details["causes"] = causes
        if retry_after is not None:
            self.details["retryAfterSeconds"] = retry_after

    def status(self) -> dict[str, Any]:
        st: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            st["details"] = self.details
        return st


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    name=name, group=group, kind=resource)


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    name=name, group=group, kind=resource)


def conflict(resource: str, group: str, name: str, why: str = "") -> StatusError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    name=name, group=group, kind=resource)


def invalid(kind: str, group: str, name: str, message: str, causes: list[dict[str, str]]) -> StatusError:
    return StatusError(422, "Invalid", message, name=name, group=group, kind=kind, causes=causes)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden(message: str, **kw: Any) -> StatusError:
    return StatusError(403, "Forbidden", message, **kw)


def method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str, accepted: list[str]) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
        if content_type
        else "the request body is missing its Content-Type",
    )


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def status_success(resource: str, group: str, name: str, uid: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "group": group, "kind": resource}
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
