import pytest

from pyk3s.controllers.deploy.parse import ManifestError, parse_manifest

GUIDE_WITHOUT_SEPARATOR = b"""apiVersion: v1
kind: Secret
metadata:
  name: authsecret
  namespace: default

data:
  users: |2
    dGVzdDokYXByMSRINnVza2trVyRJZ1hMUDZld1RyU3VCa1RycUU4d2ovCnRlc3QyOiRhcHIxJGQ5aHI5SEJCJDRIeHdnVWlyM0hQNEVzZ2dQL1FObzAK
apiVersion: traefik.containo.us/v1alpha1
kind: IngressRoute
metadata:
  name: traefik-dashboard
"""


def test_multi_document_yaml_skips_empty_documents() -> None:
    docs = parse_manifest(b"---\n# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n")
    assert [d["metadata"]["name"] for d in docs] == ["a"]


def test_kind_list_is_expanded() -> None:
    data = b"""apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
"""
    assert [d["metadata"]["name"] for d in parse_manifest(data)] == ["a", "b"]


def test_json_document_and_array() -> None:
    one = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}'
    assert parse_manifest(one, "x.json")[0]["metadata"]["name"] == "j"
    arr = b"[" + one + b"," + one.replace(b'"j"', b'"k"') + b"]"
    assert [d["metadata"]["name"] for d in parse_manifest(arr, "x.json")] == ["j", "k"]


def test_missing_separator_points_at_the_second_document() -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifest(GUIDE_WITHOUT_SEPARATOR)
    msg = str(err.value)
    assert 'mapping key "apiVersion" already defined at line 1' in msg
    assert "a second document probably starts at line 10" in msg
    assert "---" in msg


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name is required"),
        (b"kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion and kind are required"),
        (b"- just\n- a list\n", "expected an object"),
        (b"a: [unclosed\n", "invalid YAML"),
        (b'{"apiVersion": ', "invalid JSON"),
    ],
)
def test_bad_documents_say_why(data: bytes, fragment: str) -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifest(data)
    assert fragment in str(err.value)
