"""Authorization contract: request attributes, decisions and the 403 Status.

:class:`RequestAttributes` is what kube-apiserver's RequestInfoFactory derives from a request; the
core builds it for each request (or calls :func:`request_attributes`) and asks ``api.authorizer``.
HTTP methods map to verbs as in kube-apiserver: GET → get / list / watch (``watch=true`` or a
``/watch/`` path), POST → create, PUT → update, PATCH → patch, DELETE → delete / deletecollection;
non-resource paths use the lower-cased method. Since Kubernetes 1.30, a WebSocket ``GET`` of
``pods/exec|attach|portforward`` needs ``create``, like the SPDY ``POST``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pyk3s.api.request import UserInfo

__all__ = [
    "Authorizer",
    "Decision",
    "RequestAttributes",
    "forbidden_message",
    "forbidden_status",
    "request_attributes",
]

_STREAM_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True
    api_version: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


class Authorizer(Protocol):
    async def authorize(self, user: UserInfo, attrs: RequestAttributes) -> Decision: ...


def _truthy(values: Sequence[str]) -> bool:
    return any(v.lower() in ("true", "1") for v in values)


def request_attributes(method: str, path: str, query: Sequence[tuple[str, str]] = ()) -> RequestAttributes:
    """Parse a Kubernetes URL the way kube-apiserver's RequestInfoFactory does."""
    method = method.upper()
    parts = [p for p in path.strip("/").split("/") if p]
    nonresource = RequestAttributes(verb=method.lower(), path=path, resource_request=False)
    if not parts:
        return nonresource
    if parts[0] == "api":
        if len(parts) < 2:
            return nonresource
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) < 3:
            return nonresource
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return nonresource
    if not rest:
        return nonresource
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        # /namespaces/<n>, /namespaces/<n>/status|finalize are the Namespace object itself
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    query_values = [v for k, v in query if k == "watch"]
    verb = {
        "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
        "GET": "get", "HEAD": "get", "OPTIONS": "options",
    }.get(method, method.lower())
    if not name:
        if verb == "get":
            verb = "watch" if watch_path or _truthy(query_values) else "list"
        elif verb == "delete":
            verb = "deletecollection"
    elif verb == "get" and (watch_path or _truthy(query_values)):
        verb = "watch"
    if resource == "pods" and subresource in _STREAM_SUBRESOURCES and verb == "get":
        verb = "create"
    return RequestAttributes(
        verb=verb, api_group=group, resource=resource, subresource=subresource,
        namespace=namespace, name=name, path=path, resource_request=True, api_version=version,
    )


def forbidden_message(user: UserInfo, attrs: RequestAttributes) -> str:
    """kube-apiserver's wording: ``User "u" cannot list resource "pods" in API group "" ...``."""
    if not attrs.resource_request:
        return f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'


def forbidden_status(user: UserInfo, attrs: RequestAttributes, reason: str = "") -> dict:
    """The 403 Status body, as ``NewForbidden`` formats it."""
    err = forbidden_message(user, attrs)
    if reason:
        err = f"{err}: {reason}"
    qualified = attrs.resource if not attrs.api_group else f"{attrs.resource}.{attrs.api_group}"
    if not attrs.resource_request:
        message = f"forbidden: {err}"
    elif attrs.name:
        message = f'{qualified} "{attrs.name}" is forbidden: {err}'
    else:
        message = f"{qualified} is forbidden: {err}"
    details: dict = {}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.resource_request:
        if attrs.api_group:
            details["group"] = attrs.api_group
        details["kind"] = attrs.resource
    status = {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Forbidden", "code": 403,
    }
    if details:
        status["details"] = details
    return status
