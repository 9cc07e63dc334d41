"""API errors and their Kubernetes ``Status`` form (spec 6.9).

Every failure the core answers is an :class:`ApiError`; ``status()`` gives the ``Status`` object
and ``code`` the HTTP code. Messages follow kube-apiserver's wording where clients parse or print it::

    ApiError
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
    "ApiError",
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


class ApiError(Exception):
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


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    name=name, group=group, kind=resource)


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    name=name, group=group, kind=resource)


def conflict(resource: str, group: str, name: str, why: str = "") -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    name=name, group=group, kind=resource)


def invalid(kind: str, group: str, name: str, message: str, causes: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "Invalid", message, name=name, group=group, kind=kind, causes=causes)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(message: str, **kw: Any) -> ApiError:
    return ApiError(403, "Forbidden", message, **kw)


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
        if content_type
        else "the request body is missing its Content-Type",
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")


def status_success(resource: str, group: str, name: str, uid: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "group": group, "kind": resource}
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
