"""kubectl 1.32 error output against a real ``pyk3s server``: each case expects the text kube-apiserver's
answer makes kubectl print (spec 6.9, 6.10) and checks that nothing was stored."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml
from pyk3s_server import ServerProcess

pytestmark = pytest.mark.e2e


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def failed(srv: ServerProcess, *args: str) -> str:
    r = srv.kubectl(*args, check=False, input="")
    assert r.rc == 1, (r.out, r.err)
    assert r.out == ""
    return r.err.strip()


def names(srv: ServerProcess, kind: str) -> set[str]:
    return set(srv.kubectl("get", kind, "-A", "-o", "name").out.split())


def test_unknown_resource_type(api_server):
    assert failed(api_server, "get", "gizmos") == 'error: the server doesn\'t have a resource type "gizmos"'
    assert failed(api_server, "delete", "gizmos", "g1") == 'error: the server doesn\'t have a resource type "gizmos"'


def test_wrong_api_version(api_server, tmp_path):
    before = names(api_server, "cm")
    f = write(tmp_path, "bad.yaml", "apiVersion: v2\nkind: ConfigMap\nmetadata: {name: badv}\n")
    assert failed(api_server, "create", "-f", f, "--validate=false") == (
        f'error: resource mapping not found for name: "badv" namespace: "" from "{f}": no matches for kind '
        '"ConfigMap" in version "v2"\nensure CRDs are installed first')
    assert failed(api_server, "apply", "-f", f, "--validate=false").startswith(
        'error: resource mapping not found for name: "badv"')
    # With default validation kubectl consults OpenAPI v2 for a kind missing from v3; the server's v2
    # document is empty, so kubectl leaves validation to the server and prints the same as kube-apiserver's.
    assert failed(api_server, "create", "-f", f) == (
        f'error: resource mapping not found for name: "badv" namespace: "" from "{f}": no matches for kind '
        '"ConfigMap" in version "v2"\nensure CRDs are installed first')
    assert names(api_server, "cm") == before


def test_kind_list_applies_with_default_validation(api_server, tmp_path):
    f = write(tmp_path, "list.yaml", """apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: from-list-a}, data: {a: "1"}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: from-list-b}}
""")
    out = api_server.kubectl("apply", "-f", f).out
    assert out.splitlines() == ["configmap/from-list-a created", "configmap/from-list-b created"]
    assert {"configmap/from-list-a", "configmap/from-list-b"} <= set(names(api_server, "cm"))
    assert api_server.kubectl("apply", "-f", f).out.splitlines() == [
        "configmap/from-list-a unchanged", "configmap/from-list-b unchanged"]
    # strict validation still happens, on the server
    bad = write(tmp_path, "bad-list.yaml", """apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: from-list-c}, spec: {x: 1}}
""")
    r = api_server.kubectl("create", "-f", bad, check=False)
    assert r.rc == 1 and 'strict decoding error: unknown field "spec"' in r.err


def test_name_too_long(api_server, tmp_path):
    name = "a" * 254
    f = write(tmp_path, "long.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n")
    assert failed(api_server, "create", "-f", f) == (
        f'The ConfigMap "{name}" is invalid: metadata.name: Invalid value: "{name}": must be no more than 253 '
        "characters")
    bad = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_A_Name}\n"
    err = failed(api_server, "create", "-f", write(tmp_path, "bad.yaml", bad))
    assert err.startswith('The ConfigMap "Not_A_Name" is invalid: metadata.name: Invalid value: "Not_A_Name": a '
                          "lowercase RFC 1123 subdomain must consist of")
    assert not {n for n in names(api_server, "cm") if "aaaa" in n or "Not_A" in n}


def test_field_of_the_wrong_type(api_server, tmp_path):
    f = write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typed}\ndata: {a: {b: c}}\n")
    assert failed(api_server, "create", "-f", f) == (
        f'Error from server (BadRequest): error when creating "{f}": ConfigMap in version "v1" cannot be handled '
        "as a ConfigMap: json: cannot unmarshal object into Go struct field ConfigMap.data of type string")
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "typed"},
           "spec": {"replicas": "three", "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    f = write(tmp_path, "dep.yaml", yaml.safe_dump(dep))
    assert failed(api_server, "apply", "-f", f) == (
        f'Error from server (BadRequest): error when creating "{f}": Deployment in version "v1" cannot be handled '
        "as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type "
        "int32")
    assert "configmap/typed" not in names(api_server, "cm")
    assert "deployment.apps/typed" not in names(api_server, "deploy")


def test_unknown_field_under_strict_validation(api_server, tmp_path):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: strict}\nfoo: bar\ndata: {a: b}\n"
    f = write(tmp_path, "cm.yaml", text)
    assert failed(api_server, "create", "-f", f) == (
        f'Error from server (BadRequest): error when creating "{f}": strict decoding error: unknown field "foo"')
    dep = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: strict}\nspec:\n  selector: {matchLabels: {a: b}}\n"
           "  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: i, colour: red}]\n")
    f2 = write(tmp_path, "dep.yaml", dep)
    assert failed(api_server, "create", "-f", f2) == (
        f'Error from server (BadRequest): error when creating "{f2}": strict decoding error: unknown field '
        '"spec.template.spec.containers[0].colour"')
    assert "configmap/strict" not in names(api_server, "cm")
    r = api_server.kubectl("create", "-f", f, "--validate=warn")
    assert r.out.strip() == "configmap/strict created"
    assert 'Warning: unknown field "foo"' in r.err
    assert "foo" not in api_server.kubectl("get", "cm", "strict", "-o", "json").json()  # type: ignore[operator]
    api_server.kubectl("delete", "cm", "strict")


def test_already_exists_and_not_found(api_server, tmp_path):
    name = f"dup-{secrets.token_hex(2)}"
    f = write(tmp_path, "cm.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: '1'}}\n")
    api_server.kubectl("create", "-f", f)
    before = api_server.kubectl("get", "cm", name, "-o", "json").json()
    write(tmp_path, "cm.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: '2'}}\n")
    assert failed(api_server, "create", "-f", f) == (
        f'Error from server (AlreadyExists): error when creating "{f}": configmaps "{name}" already exists')
    assert api_server.kubectl("get", "cm", name, "-o", "json").json() == before
    assert failed(api_server, "create", "configmap", name) == (
        f'error: failed to create configmap: configmaps "{name}" already exists')

    assert failed(api_server, "get", "cm", "nosuch") == 'Error from server (NotFound): configmaps "nosuch" not found'
    assert failed(api_server, "delete", "cm", "nosuch") == 'Error from server (NotFound): configmaps "nosuch" not found'
    # kubectl 1.32 looks the namespace up after a 404 and reports the missing namespace
    assert failed(api_server, "get", "cm", "x", "-n", "nosuchns") == \
        'Error from server (NotFound): namespaces "nosuchns" not found'
    assert failed(api_server, "create", "configmap", "x", "-n", "nosuchns") == \
        'error: failed to create configmap: namespaces "nosuchns" not found'
    assert failed(api_server, "delete", "ns", "default") == \
        'Error from server (Forbidden): namespaces "default" is forbidden: this namespace may not be deleted'


def test_replace_with_a_stale_resource_version(api_server, tmp_path):
    name = f"stale-{secrets.token_hex(2)}"
    api_server.kubectl("create", "configmap", name, "--from-literal=a=1")
    stale = api_server.kubectl("get", "cm", name, "-o", "yaml").out
    api_server.kubectl("label", "cm", name, "touched=yes")
    current = api_server.kubectl("get", "cm", name, "-o", "json").json()
    f = write(tmp_path, "stale.yaml", stale.replace('a: "1"', 'a: "2"'))
    assert failed(api_server, "replace", "-f", f) == (
        f'Error from server (Conflict): error when replacing "{f}": Operation cannot be fulfilled on configmaps '
        f'"{name}": the object has been modified; please apply your changes to the latest version and try again')
    assert api_server.kubectl("get", "cm", name, "-o", "json").json() == current


def test_no_credentials(api_server, tmp_path):
    kc = yaml.safe_load(api_server.kubeconfig.read_text())
    user = kc["users"][0]["user"]
    user.pop("client-certificate-data")
    user.pop("client-key-data")
    user["token"] = "not-a-valid-token"
    path = tmp_path / "bad-token.yaml"
    path.write_text(yaml.safe_dump(kc))
    before = names(api_server, "cm")
    r = api_server.kubectl("--kubeconfig", str(path), "get", "configmaps", check=False)
    assert r.rc == 1
    assert r.err.strip().splitlines()[-1] == \
        "error: You must be logged in to the server (the server has asked for the client to provide credentials)"
    r = api_server.kubectl("--kubeconfig", str(path), "create", "configmap", "anon", check=False)
    assert (r.rc, r.err.strip()) == (1, "error: failed to create configmap: Unauthorized")
    r = api_server.kubectl("--kubeconfig", str(path), "get", "--raw", "/api/v1/namespaces", check=False)
    assert (r.rc, r.err.strip()) == (1, "error: You must be logged in to the server (Unauthorized)")
    assert names(api_server, "cm") == before
