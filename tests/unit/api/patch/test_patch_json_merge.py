"""RFC 6902 JSON patch and RFC 7386 merge patch (spec 5.5)."""

import pytest

from pyk3s.api.patch import PatchError, json_patch, merge_patch

DOC = {"metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}, "list": [1, 2, 3]}

JSON_CASES = [
    ("add-key", [{"op": "add", "path": "/data/n", "value": "w"}], {"k": "v", "n": "w"}, "data"),
    ("add-replaces-existing", [{"op": "add", "path": "/data/k", "value": "z"}], {"k": "z"}, "data"),
    ("add-append-dash", [{"op": "add", "path": "/list/-", "value": 4}], [1, 2, 3, 4], "list"),
    ("add-insert-index", [{"op": "add", "path": "/list/0", "value": 0}], [0, 1, 2, 3], "list"),
    ("remove-key", [{"op": "remove", "path": "/data/k"}], {}, "data"),
    ("remove-index", [{"op": "remove", "path": "/list/1"}], [1, 3], "list"),
    ("replace", [{"op": "replace", "path": "/data/k", "value": 5}], {"k": 5}, "data"),
    ("move", [{"op": "move", "from": "/data/k", "path": "/data/m"}], {"m": "v"}, "data"),
    ("copy", [{"op": "copy", "from": "/data/k", "path": "/data/c"}], {"k": "v", "c": "v"}, "data"),
    ("test-ok-then-replace", [{"op": "test", "path": "/data/k", "value": "v"},
                              {"op": "replace", "path": "/data/k", "value": "n"}], {"k": "n"}, "data"),
    ("escaped-pointer", [{"op": "add", "path": "/metadata/labels/a~1b~0c", "value": "x"}],
     {"a": "1", "a/b~c": "x"}, "labels"),
]


@pytest.mark.parametrize(("ops", "want", "where"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_json_patch_applies(ops, want, where):
    out = json_patch(DOC, ops)
    got = out["metadata"]["labels"] if where == "labels" else out[where]
    assert got == want
    assert DOC["data"] == {"k": "v"} and DOC["list"] == [1, 2, 3]  # input untouched


JSON_ERRORS = [
    ("test-fails-422", [{"op": "test", "path": "/data/k", "value": "nope"}], 422,
     "testing value /data/k failed: test failed"),
    ("test-missing-422", [{"op": "test", "path": "/data/zz", "value": "v"}], 422,
     "testing value /data/zz failed: test failed"),
    ("remove-missing", [{"op": "remove", "path": "/data/zz"}], 422,
     'remove operation does not apply: doc is missing path: "/data/zz": missing value'),
    ("replace-missing", [{"op": "replace", "path": "/data/zz", "value": 1}], 422,
     "replace operation does not apply: doc is missing key: /data/zz: missing value"),
    ("add-missing-parent", [{"op": "add", "path": "/nope/x", "value": 1}], 422,
     'add operation does not apply: doc is missing path: "/nope/x": missing value'),
    ("bad-index", [{"op": "replace", "path": "/list/9", "value": 1}], 422,
     "Unable to access invalid index: 9: invalid index referenced"),
    ("unknown-op", [{"op": "frob", "path": "/data"}], 400, "Unexpected kind: frob"),
    ("not-a-list", {"op": "add"}, 400, "json patch: the body must be a JSON array of operations"),
]


@pytest.mark.parametrize(("ops", "code", "message"), [c[1:] for c in JSON_ERRORS], ids=[c[0] for c in JSON_ERRORS])
def test_json_patch_errors(ops, code, message):
    with pytest.raises(PatchError) as err:
        json_patch(DOC, ops)
    assert (err.value.code, err.value.message) == (code, message)


def test_json_patch_test_type_strict():
    with pytest.raises(PatchError):
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    assert json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}]) == {"a": 1}


MERGE_CASES = [
    ("label-add", {"metadata": {"labels": {"b": "2"}}}, {"name": "x", "labels": {"a": "1", "b": "2"}}, "metadata"),
    ("label-null-deletes", {"metadata": {"labels": {"a": None}}}, {"name": "x", "labels": {}}, "metadata"),
    ("list-replaced", {"list": [9]}, [9], "list"),
    ("map-replaced-by-scalar", {"data": "s"}, "s", "data"),
    ("nested-null-in-new-map-dropped", {"data": {"n": {"x": None, "y": 1}}}, {"k": "v", "n": {"y": 1}}, "data"),
]


@pytest.mark.parametrize(("patch", "want", "where"), [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES])
def test_merge_patch(patch, want, where):
    assert merge_patch(DOC, patch)[where] == want
    assert DOC["metadata"]["labels"] == {"a": "1"}


def test_merge_patch_rejects_non_object():
    with pytest.raises(PatchError) as err:
        merge_patch(DOC, [1])
    assert err.value.code == 400
