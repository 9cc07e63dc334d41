import pytest

from pyk3s.controllers.deploy.objectset import (
    APPLIED,
    HASH,
    decode_applied,
    decorate,
    gvk_string,
    owner_hash,
    three_way_patch,
)


def cm(data: dict, **meta: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", **meta}, "data": data}


def test_owner_hash_is_sha1_of_id_gvk_name_namespace() -> None:
    import hashlib

    expect = hashlib.sha1(b"k3s.cattle.io/v1, Kind=Addoncorednskube-system").hexdigest()
    assert owner_hash("coredns") == expect


def test_decorate_adds_objectset_labels_and_applied_record() -> None:
    d = decorate(cm({"Corefile": "x"}), "coredns")
    assert d["metadata"]["labels"][HASH] == owner_hash("coredns")
    ann = d["metadata"]["annotations"]
    assert ann["objectset.rio.cattle.io/owner-gvk"] == "k3s.cattle.io/v1, Kind=Addon"
    assert ann["objectset.rio.cattle.io/owner-name"] == "coredns"
    assert ann["objectset.rio.cattle.io/owner-namespace"] == "kube-system"
    applied = decode_applied(ann[APPLIED])
    assert applied is not None and applied["data"] == {"Corefile": "x"}


@pytest.mark.parametrize(
    ("original", "desired", "live", "patch"),
    [
        # a field nobody applied (NodeHosts) survives; an applied field edited live is restored
        (
            {"data": {"Corefile": "a"}},
            {"data": {"Corefile": "a"}},
            {"data": {"Corefile": "edited", "NodeHosts": "1.2.3.4 n1"}},
            {"data": {"Corefile": "a"}},
        ),
        # a key removed from the file is deleted from the live object
        ({"data": {"a": "1", "b": "2"}}, {"data": {"a": "1"}}, {"data": {"a": "1", "b": "2"}}, {"data": {"b": None}}),
        # nothing to do
        ({"data": {"a": "1"}}, {"data": {"a": "1"}}, {"data": {"a": "1", "NodeHosts": "x"}}, {}),
        # lists are compared with server defaults allowed on the live side
        (
            {"spec": {"containers": [{"name": "c", "image": "i"}]}},
            {"spec": {"containers": [{"name": "c", "image": "i"}]}},
            {"spec": {"containers": [{"name": "c", "image": "i", "terminationMessagePath": "/dev/x"}]}},
            {},
        ),
        # a changed list element replaces the list
        (
            {"spec": {"containers": [{"name": "c", "image": "i"}]}},
            {"spec": {"containers": [{"name": "c", "image": "j"}]}},
            {"spec": {"containers": [{"name": "c", "image": "i", "terminationMessagePath": "/dev/x"}]}},
            {"spec": {"containers": [{"name": "c", "image": "j"}]}},
        ),
        # status and server-owned metadata are never patched
        (None, {"metadata": {"name": "x"}, "status": {"a": 1}}, {"metadata": {"name": "x", "uid": "u"}}, {}),
    ],
    ids=["restore-edited-keep-nodehosts", "prune-removed-key", "unchanged", "defaults-ok", "list-change", "status"],
)
def test_three_way_patch(original: dict | None, desired: dict, live: dict, patch: dict) -> None:
    assert three_way_patch(original, desired, live) == patch


def test_gvk_string_formats_like_k3s() -> None:
    assert gvk_string({"apiVersion": "v1", "kind": "ConfigMap"}) == "/v1, Kind=ConfigMap"
    assert gvk_string({"apiVersion": "apps/v1", "kind": "Deployment"}) == "apps/v1, Kind=Deployment"
