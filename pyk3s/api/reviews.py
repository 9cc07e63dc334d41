"""Review resources answered from authn/authz state, never stored (spec 7.6).

* ``authorization.k8s.io/v1`` SelfSubjectAccessReview (``kubectl auth can-i``), SelfSubjectRulesReview
  (``auth can-i --list``), SubjectAccessReview and LocalSubjectAccessReview (ask for someone else).
* ``authentication.k8s.io`` SelfSubjectReview (``kubectl auth whoami``; v1 and v1beta1) and TokenReview.

Each handler takes the decoded request body and returns the object with its ``status`` filled; the
core registers them as virtual (create-only) resources and answers 201.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from pyk3s.api.authn import Authenticator
from pyk3s.api.authz import Authorizer, RequestAttributes
from pyk3s.api.codec import now_rfc3339
from pyk3s.api.request import ApiRequest, UserInfo

__all__ = ["REVIEWS", "ReviewHandlers", "handlers_table", "register_reviews"]

AUTHZ = "authorization.k8s.io"
AUTHN = "authentication.k8s.io"
Handler = Callable[[ApiRequest, dict], Awaitable[dict]]


class _RulesSource(Protocol):
    async def rules_review(self, user: UserInfo, namespace: str) -> tuple[list[dict], list[dict]]: ...


def _attrs(spec: dict) -> RequestAttributes:
    ra = spec.get("resourceAttributes")
    if ra:
        return RequestAttributes(
            verb=ra.get("verb", ""), api_group=ra.get("group", ""), resource=ra.get("resource", ""),
            subresource=ra.get("subresource", ""), namespace=ra.get("namespace", ""), name=ra.get("name", ""),
            api_version=ra.get("version", ""), resource_request=True,
        )
    nra = spec.get("nonResourceAttributes") or {}
    return RequestAttributes(verb=nra.get("verb", ""), path=nra.get("path", ""), resource_request=False)


def _user_info(user: UserInfo) -> dict:
    out: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        out["uid"] = user.uid
    return out


def _answer(body: dict, group: str, version: str, kind: str) -> dict:
    obj = dict(body)
    obj["apiVersion"] = f"{group}/{version}"
    obj["kind"] = kind
    meta = dict(obj.get("metadata") or {})
    meta.setdefault("creationTimestamp", now_rfc3339())
    obj["metadata"] = meta
    return obj


def _requester(req: ApiRequest) -> UserInfo:
    return req.user or UserInfo("system:anonymous", ("system:unauthenticated",))


class ReviewHandlers:
    def __init__(self, authorizer: Authorizer, rules: _RulesSource | None, authenticator: Authenticator | None) -> None:
        self.authorizer = authorizer
        self.rules = rules
        self.authenticator = authenticator

    async def _access(self, user: UserInfo, body: dict, version: str, kind: str, namespace: str = "") -> dict:
        spec = body.get("spec") or {}
        attrs = _attrs(spec)
        if namespace and attrs.resource_request:
            attrs = replace(attrs, namespace=namespace)
        decision = await self.authorizer.authorize(user, attrs)
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        out = _answer(body, AUTHZ, version, kind)
        out["status"] = status
        return out

    async def self_subject_access_review(self, req: ApiRequest, body: dict) -> dict:
        return await self._access(_requester(req), body, "v1", "SelfSubjectAccessReview")

    async def subject_access_review(self, req: ApiRequest, body: dict) -> dict:
        spec = body.get("spec") or {}
        user = UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""))
        return await self._access(user, body, "v1", "SubjectAccessReview")

    async def local_subject_access_review(self, req: ApiRequest, body: dict) -> dict:
        spec = body.get("spec") or {}
        user = UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""))
        namespace = (body.get("metadata") or {}).get("namespace") or _path_namespace(req.path)
        return await self._access(user, body, "v1", "LocalSubjectAccessReview", namespace)

    async def self_subject_rules_review(self, req: ApiRequest, body: dict) -> dict:
        namespace = (body.get("spec") or {}).get("namespace", "")
        resource_rules: list[dict[str, Any]]
        non_resource: list[dict[str, Any]]
        if self.rules is None:
            resource_rules, non_resource, incomplete = [], [], True
        else:
            resource_rules, non_resource = await self.rules.rules_review(_requester(req), namespace)
            incomplete = False
        out = _answer(body, AUTHZ, "v1", "SelfSubjectRulesReview")
        out["status"] = {"resourceRules": resource_rules, "nonResourceRules": non_resource,
                         "incomplete": incomplete}
        return out

    def self_subject_review(self, version: str) -> Handler:
        async def handler(req: ApiRequest, body: dict) -> dict:
            out = _answer(body, AUTHN, version, "SelfSubjectReview")
            out["status"] = {"userInfo": _user_info(_requester(req))}
            return out
        return handler

    async def token_review(self, req: ApiRequest, body: dict) -> dict:
        spec = body.get("spec") or {}
        token = spec.get("token", "")
        audiences = spec.get("audiences") or None
        user = self.authenticator.authenticate_token(token, audiences) if self.authenticator else None
        out = _answer(body, AUTHN, "v1", "TokenReview")
        if user is None:
            out["status"] = {"authenticated": False, "error": "invalid bearer token"}
        else:
            status: dict[str, Any] = {"authenticated": True, "user": _user_info(user)}
            if audiences:
                status["audiences"] = list(audiences)
            elif self.authenticator and self.authenticator.sa_tokens:
                status["audiences"] = list(self.authenticator.sa_tokens.api_audiences)
            out["status"] = status
        return out


def _path_namespace(path: str) -> str:
    parts = path.strip("/").split("/")
    return parts[parts.index("namespaces") + 1] if "namespaces" in parts[:-1] else ""


REVIEWS: tuple[tuple[str, str, str, str], ...] = (
    (AUTHZ, "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    (AUTHZ, "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    (AUTHZ, "v1", "subjectaccessreviews", "SubjectAccessReview"),
    (AUTHZ, "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview"),
    (AUTHN, "v1", "selfsubjectreviews", "SelfSubjectReview"),
    (AUTHN, "v1beta1", "selfsubjectreviews", "SelfSubjectReview"),
    (AUTHN, "v1", "tokenreviews", "TokenReview"),
)


def handlers_table(h: ReviewHandlers) -> dict[tuple[str, str, str], Handler]:
    return {
        (AUTHZ, "v1", "selfsubjectaccessreviews"): h.self_subject_access_review,
        (AUTHZ, "v1", "selfsubjectrulesreviews"): h.self_subject_rules_review,
        (AUTHZ, "v1", "subjectaccessreviews"): h.subject_access_review,
        (AUTHZ, "v1", "localsubjectaccessreviews"): h.local_subject_access_review,
        (AUTHN, "v1", "selfsubjectreviews"): h.self_subject_review("v1"),
        (AUTHN, "v1beta1", "selfsubjectreviews"): h.self_subject_review("v1beta1"),
        (AUTHN, "v1", "tokenreviews"): h.token_review,
    }


def register_reviews(api: Any, authorizer: Authorizer, rules: _RulesSource | None,
                     authenticator: Authenticator | None) -> ReviewHandlers:
    """Register every review with ``api.register_virtual``; returns the handlers (for tests)."""
    h = ReviewHandlers(authorizer, rules, authenticator)
    table = handlers_table(h)
    for group, version, plural, kind in REVIEWS:
        api.register_virtual(group, version, plural, kind, table[(group, version, plural)])
    return h
