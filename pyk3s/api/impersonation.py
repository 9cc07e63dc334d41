"""User impersonation (`kubectl --as=bob --as-group=devs`), as kube-apiserver does it.

The ``Impersonate-User``, ``Impersonate-Group`` and ``Impersonate-Uid`` headers replace the requesting
user when that user may ``impersonate`` the ``users``, ``groups`` (and ``uids``) named, per RBAC; a
service account is spelled ``system:serviceaccount:<ns>:<name>`` and impersonated through the
``serviceaccounts`` resource. The impersonated user is always in ``system:authenticated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyk3s.api.authz import RequestAttributes, forbidden_status
from pyk3s.api.request import UserInfo

__all__ = ["Denied", "impersonate"]


class Denied(Exception):
    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status.get("message", "forbidden"))
        self.status = status


def _attrs(resource: str, name: str, namespace: str = "") -> RequestAttributes:
    return RequestAttributes(verb="impersonate", resource=resource, name=name, namespace=namespace,
                             path="", resource_request=True, api_version="v1")


async def impersonate(user: UserInfo, headers: Mapping[str, str], groups: list[str], authorizer: Any) -> UserInfo:
    """``groups``: every Impersonate-Group value (the header may repeat). Raises Denied (403)."""
    name = headers.get("impersonate-user", "").strip()
    uid = headers.get("impersonate-uid", "").strip()
    if not name:
        if groups or uid:
            raise Denied(forbidden_status(user, _attrs("users", ""),
                                          "requested impersonation of groups without a user"))
        return user
    checks: list[RequestAttributes] = []
    if name.startswith("system:serviceaccount:") and name.count(":") == 3:
        _, _, ns, sa = name.split(":")
        checks.append(_attrs("serviceaccounts", sa, ns))
        implied = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
    else:
        checks.append(_attrs("users", name))
        implied = []
    checks += [_attrs("groups", g) for g in groups]
    if uid:
        checks.append(_attrs("uids", uid))
    if authorizer is not None:
        for attrs in checks:
            decision = await authorizer.authorize(user, attrs)
            if not decision.allowed:
                raise Denied(forbidden_status(user, attrs, decision.reason))
    all_groups = list(dict.fromkeys([*groups, *implied, "system:authenticated"]))
    return UserInfo(name, tuple(all_groups), uid)
