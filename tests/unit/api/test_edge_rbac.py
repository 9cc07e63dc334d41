"""RBAC: rule matching, bindings, built-in policy, the store-backed authorizer, 403 wording."""

from __future__ import annotations

import asyncio
import json

import pytest

from pyk3s.api.authz import RequestAttributes, forbidden_status, request_attributes
from pyk3s.api.rbac import RbacAuthorizer, Rule, compile_snapshot
from pyk3s.api.request import UserInfo

RBAC = "rbac.authorization.k8s.io/v1"
ALICE = UserInfo("alice", ("devs", "system:authenticated"))
BOB = UserInfo("bob", ("system:authenticated",))
SA = UserInfo("system:serviceaccount:team:builder",
              ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"))
ANON = UserInfo("system:anonymous", ("system:unauthenticated",))


def role(name, ns, rules, kind="Role"):
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "rules": rules}


def binding(name, ns, role_kind, role_name, subjects, kind="RoleBinding"):
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": subjects}


OBJECTS = [
    role("pod-reader", "dev", [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]),
    role("one-cm", "dev", [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app"],
                            "verbs": ["get", "update"]}]),
    role("deployer", "", [{"apiGroups": ["apps"], "resources": ["deployments", "*/scale"], "verbs": ["*"]},
                          {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}], kind="ClusterRole"),
    binding("alice-reads", "dev", "Role", "pod-reader", [{"kind": "User", "name": "alice"}]),
    binding("devs-cm", "dev", "Role", "one-cm", [{"kind": "Group", "name": "devs"}]),
    binding("sa-deploys", "team", "ClusterRole", "deployer", [{"kind": "ServiceAccount", "name": "builder"}]),
    binding("bob-deploys", "", "ClusterRole", "deployer", [{"kind": "User", "name": "bob"}],
            kind="ClusterRoleBinding"),
]


def res(verb, resource, ns="", name="", group="", sub=""):
    return RequestAttributes(verb=verb, api_group=group, resource=resource, subresource=sub, namespace=ns, name=name)


def url(verb, path):
    return RequestAttributes(verb=verb, path=path, resource_request=False)


CASES = [
    ("role allows get pods in its namespace", ALICE, res("get", "pods", "dev", "p"), True),
    ("role allows list pods", ALICE, res("list", "pods", "dev"), True),
    ("role is namespaced", ALICE, res("get", "pods", "prod", "p"), False),
    ("role verb not granted", ALICE, res("delete", "pods", "dev", "p"), False),
    ("subresource listed", ALICE, res("get", "pods", "dev", "p", sub="log"), True),
    ("subresource not listed", ALICE, res("create", "pods", "dev", "p", sub="exec"), False),
    ("resourceNames match", ALICE, res("update", "configmaps", "dev", "app"), True),
    ("resourceNames other name", ALICE, res("get", "configmaps", "dev", "other"), False),
    ("resourceNames never allow list", ALICE, res("list", "configmaps", "dev"), False),
    ("group subject", UserInfo("carol", ("devs",)), res("get", "configmaps", "dev", "app"), True),
    ("cluster binding everywhere", BOB, res("delete", "deployments", "any", "d", "apps"), True),
    ("wrong api group", BOB, res("delete", "deployments", "any", "d", "extensions"), False),
    ("*/scale subresource", BOB, res("patch", "replicasets", "x", "r", "apps", "scale"), True),
    ("*/scale needs subresource", BOB, res("patch", "replicasets", "x", "r", "apps"), False),
    ("cluster scoped via cluster binding", BOB, res("list", "deployments", "", "", "apps"), True),
    ("nonResourceURL exact", BOB, url("get", "/metrics"), True),
    ("nonResourceURL prefix", BOB, url("get", "/logs/kube.log"), True),
    ("nonResourceURL other", BOB, url("get", "/debug"), False),
    ("sa via rolebinding to clusterrole", SA, res("create", "deployments", "team", "", "apps"), True),
    ("sa other namespace", SA, res("create", "deployments", "dev", "", "apps"), False),
    ("rolebinding never grants nonresource", SA, url("get", "/metrics"), False),
    ("masters everything", UserInfo("root", ("system:masters",)), res("delete", "nodes", "", "n1"), True),
    ("builtin discovery for authenticated", BOB, url("get", "/apis/apps/v1"), True),
    ("builtin basic-user", BOB, res("create", "selfsubjectaccessreviews", group="authorization.k8s.io"), True),
    ("anonymous healthz", ANON, url("get", "/healthz"), True),
    ("anonymous no discovery", ANON, url("get", "/api"), False),
    ("anonymous no pods", ANON, res("list", "pods", "default"), False),
]


@pytest.mark.parametrize("user,attrs,allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules_matrix(user, attrs, allowed):
    assert compile_snapshot(OBJECTS).authorize(user, attrs).allowed is allowed


def test_allowed_reason_names_the_binding():
    d = compile_snapshot(OBJECTS).authorize(ALICE, res("get", "pods", "dev", "p"))
    assert d.reason == 'RBAC: allowed by RoleBinding "alice-reads/dev" of Role "pod-reader" to User "alice"'


def test_rule_wildcards():
    r = Rule.from_dict({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
    assert r.allows(res("escalate", "anything", group="x.io", sub="y"))


def test_rules_review_lists_granted_rules():
    snap = compile_snapshot(OBJECTS)
    rules, non = snap.rules_review(ALICE, "dev")
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]} in rules
    assert {"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*",
                                                  "/healthz", "/livez", "/readyz", "/version", "/version/"]} in non
    admin_rules, _ = snap.rules_review(UserInfo("root", ("system:masters",)), "dev")
    assert admin_rules == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]


PARSE = [
    ("GET", "/api/v1/namespaces/default/pods", [], ("list", "", "pods", "", "default", "")),
    ("GET", "/api/v1/namespaces/default/pods", [("watch", "true")], ("watch", "", "pods", "", "default", "")),
    ("GET", "/api/v1/watch/namespaces/default/pods/p", [], ("watch", "", "pods", "", "default", "p")),
    ("GET", "/api/v1/namespaces/default/pods/p/log", [], ("get", "", "pods", "log", "default", "p")),
    ("GET", "/api/v1/namespaces/default/pods/p/exec", [], ("create", "", "pods", "exec", "default", "p")),
    ("POST", "/apis/apps/v1/namespaces/x/deployments", [], ("create", "apps", "deployments", "", "x", "")),
    ("PATCH", "/apis/apps/v1/namespaces/x/deployments/d/scale", [],
     ("patch", "apps", "deployments", "scale", "x", "d")),
    ("DELETE", "/api/v1/namespaces/x/configmaps", [], ("deletecollection", "", "configmaps", "", "x", "")),
    ("GET", "/api/v1/namespaces/foo", [], ("get", "", "namespaces", "", "foo", "foo")),
    ("PUT", "/api/v1/namespaces/foo/finalize", [], ("update", "", "namespaces", "finalize", "foo", "foo")),
    ("GET", "/api/v1/nodes", [], ("list", "", "nodes", "", "", "")),
    ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", [],
     ("get", "rbac.authorization.k8s.io", "clusterroles", "", "", "admin")),
]


@pytest.mark.parametrize("method,path,query,want", PARSE, ids=[f"{p[0]} {p[1]}" for p in PARSE])
def test_request_attributes(method, path, query, want):
    a = request_attributes(method, path, query)
    assert a.resource_request
    assert (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name) == want


@pytest.mark.parametrize("path", ["/api", "/apis", "/apis/apps", "/apis/apps/v1", "/healthz", "/openapi/v3"])
def test_nonresource_attributes(path):
    a = request_attributes("GET", path)
    assert not a.resource_request and a.verb == "get" and a.path == path


def test_forbidden_status_wording():
    st = forbidden_status(BOB, res("list", "pods", "default"))
    assert st["code"] == 403 and st["reason"] == "Forbidden"
    assert st["message"] == ('pods is forbidden: User "bob" cannot list resource "pods" in API group "" '
                             'in the namespace "default"')
    st = forbidden_status(BOB, res("get", "deployments", "", "d", "apps"))
    assert st["message"] == ('deployments.apps "d" is forbidden: User "bob" cannot get resource "deployments" '
                             'in API group "apps" at the cluster scope')
    assert st["details"] == {"name": "d", "group": "apps", "kind": "deployments"}
    st = forbidden_status(ANON, url("get", "/api"))
    assert st["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'


async def test_store_backed_authorizer_follows_writes():
    from pyk3s.api.store import open_store

    store = open_store("memory://", None)
    await store.start()
    authz = RbacAuthorizer(store)
    await authz.start()
    try:
        attrs = res("get", "pods", "dev", "p")
        assert not (await authz.authorize(ALICE, attrs)).allowed
        for obj in OBJECTS[:1] + OBJECTS[3:4]:
            meta = obj["metadata"]
            plural = {"Role": "roles", "RoleBinding": "rolebindings"}[obj["kind"]]
            await store.create(f"/registry/rbac.authorization.k8s.io/{plural}/{meta['namespace']}/{meta['name']}",
                               json.dumps(obj).encode())
        # a write just made is seen by the next decision (the authorizer catches up with the store)
        assert (await authz.authorize(ALICE, attrs)).allowed
        kv = await store.delete("/registry/rbac.authorization.k8s.io/rolebindings/dev/alice-reads")
        assert kv is not None
        for _ in range(50):
            if not (await authz.authorize(ALICE, attrs)).allowed:
                break
            await asyncio.sleep(0.02)
        assert not (await authz.authorize(ALICE, attrs)).allowed
    finally:
        await authz.stop()
        await store.close()


def test_nodes_read_what_their_kubelet_watches() -> None:
    snap = compile_snapshot([])
    node = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
    for verb in ("get", "list", "watch"):
        assert snap.authorize(node, RequestAttributes(verb=verb, api_group="node.k8s.io",
                                                      resource="runtimeclasses")).allowed
    assert not snap.authorize(node, RequestAttributes(verb="create", api_group="node.k8s.io",
                                                      resource="runtimeclasses")).allowed
