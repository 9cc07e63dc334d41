"""reviews: access, rules, self-subject and token reviews answered from RBAC and authn state."""

from __future__ import annotations

import pytest

from pyk3s.api.authn import Authenticator
from pyk3s.api.rbac import RbacAuthorizer
from pyk3s.api.request import ApiRequest, UserInfo
from pyk3s.api.reviews import REVIEWS, ReviewHandlers, handlers_table, register_reviews

CAROL = UserInfo("carol", ("system:authenticated",))
RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture
def handlers() -> ReviewHandlers:
    authz = RbacAuthorizer()
    authz.load([
        {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "r", "namespace": "dev"},
         "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "dev"},
         "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "carol"}]},
    ])
    return ReviewHandlers(authz, authz, Authenticator(server_token="tok"))


def req(user=CAROL, path="/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"):
    return ApiRequest("POST", path, user=user)


async def test_ssar_resource_and_nonresource(handlers):
    body = {"spec": {"resourceAttributes": {"verb": "list", "group": "apps", "resource": "deployments",
                                            "namespace": "dev"}}}
    out = await handlers.self_subject_access_review(req(), body)
    assert out["kind"] == "SelfSubjectAccessReview" and out["apiVersion"] == "authorization.k8s.io/v1"
    assert out["status"]["allowed"] is True and "RoleBinding" in out["status"]["reason"]
    body["spec"]["resourceAttributes"]["namespace"] = "prod"
    assert (await handlers.self_subject_access_review(req(), body))["status"] == {"allowed": False}
    nr = {"spec": {"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}}
    assert (await handlers.self_subject_access_review(req(), nr))["status"]["allowed"] is True


async def test_subject_and_local_reviews(handlers):
    body = {"spec": {"user": "carol", "resourceAttributes": {"verb": "get", "group": "apps",
                                                             "resource": "deployments"}}}
    local = await handlers.local_subject_access_review(
        req(path="/apis/authorization.k8s.io/v1/namespaces/dev/localsubjectaccessreviews"), body)
    assert local["status"]["allowed"] is True
    cluster = await handlers.subject_access_review(req(), body)
    assert cluster["status"]["allowed"] is False


async def test_rules_review(handlers):
    out = await handlers.self_subject_rules_review(req(), {"spec": {"namespace": "dev"}})
    assert {"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"]} in \
        out["status"]["resourceRules"]
    assert out["status"]["incomplete"] is False


async def test_whoami_versions_and_token_review(handlers):
    table = handlers_table(handlers)
    for version in ("v1", "v1beta1"):
        out = await table[("authentication.k8s.io", version, "selfsubjectreviews")](req(), {})
        assert out["apiVersion"] == f"authentication.k8s.io/{version}"
        assert out["status"]["userInfo"] == {"username": "carol", "groups": ["system:authenticated"]}
    good = await handlers.token_review(req(), {"spec": {"token": "tok"}})
    assert good["status"]["authenticated"] is True and good["status"]["user"]["username"] == "node"
    bad = await handlers.token_review(req(), {"spec": {"token": "nope"}})
    assert bad["status"]["authenticated"] is False


def test_register_calls_register_virtual_for_each_review(handlers):
    calls = []

    class Api:
        def register_virtual(self, group, version, plural, kind, handler):
            calls.append((group, version, plural, kind))

    register_reviews(Api(), handlers.authorizer, handlers.rules, handlers.authenticator)
    assert calls == list(REVIEWS)
