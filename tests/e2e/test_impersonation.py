"""`kubectl --as` / `--as-group`: impersonation as kube-apiserver does it."""

from __future__ import annotations

from pyk3s_server import ServerProcess


def test_admin_may_impersonate_and_rbac_applies_to_the_impersonated_user(api_server: ServerProcess) -> None:
    k = api_server.kubectl
    assert k("auth", "can-i", "list", "pods", "--as=bob", check=False).out.strip() == "no"
    who = k("auth", "whoami", "--as=bob", "--as-group=devs", "-o", "jsonpath={.status.userInfo}").out
    assert '"username":"bob"' in who and '"devs"' in who and "system:authenticated" in who
    denied = k("get", "pods", "-n", "default", "--as=bob", check=False)
    assert denied.rc == 1
    assert 'User "bob" cannot list resource "pods" in API group "" in the namespace "default"' in denied.err
    k("create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob", "-n", "default")
    assert api_server.wait_for(
        lambda: k("auth", "can-i", "list", "pods", "-n", "default", "--as=bob", check=False).out.strip() == "yes",
        what="bob may list pods")
    assert k("get", "pods", "-n", "default", "--as=bob").rc == 0
    # a group grants through the impersonated group
    assert k("auth", "can-i", "create", "pods", "--as=carol", "--as-group=system:masters").out.strip() == "yes"
    # service accounts are impersonated as system:serviceaccount:<ns>:<name>
    sa = k("auth", "whoami", "--as=system:serviceaccount:default:default", "-o", "jsonpath={.status.userInfo.groups}").out
    assert "system:serviceaccounts:default" in sa


def test_a_user_without_impersonate_rights_is_refused(api_server: ServerProcess) -> None:
    k = api_server.kubectl
    token = k("create", "token", "default", "-n", "default").out.strip()
    r = k("--token", token, "--as=eve", "get", "--raw", "/api/v1/namespaces/default/pods", check=False)
    assert r.rc == 1
    assert "Error from server (Forbidden)" in r.err
    assert 'users \"eve\" is forbidden: User "system:serviceaccount:default:default" cannot impersonate resource \"users\" in API group \"\" at the cluster scope' in r.err
