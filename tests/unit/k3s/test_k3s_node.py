"""The node-name rule and the node-password guard shared by the agent and the join endpoint."""

import base64

from pyk3s.k3s.node import (
    hash_password,
    is_valid_node_name,
    password_rejected,
    password_secret,
    stored_password_hash,
    verify_password,
)


def test_password_hash_roundtrip():
    h = hash_password("secret")
    assert verify_password("secret", h) and not verify_password("other", h)
    assert not verify_password("secret", "not-a-hash")


def test_password_secret_holds_the_hash_and_is_owned_by_the_node():
    secret = password_secret("n1", "uid-1", "pw")
    assert secret["metadata"]["name"] == "n1.node-password.pyk3s"
    assert secret["metadata"]["namespace"] == "kube-system"
    assert secret["type"] == "k3s.cattle.io/node-password"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert base64.b64decode(secret["data"]["hash"]).decode() == stored_password_hash(secret)
    assert verify_password("pw", stored_password_hash(secret))
    assert stored_password_hash({}) == ""


def test_node_names_and_rejection_message():
    assert is_valid_node_name("node-1.example") and not is_valid_node_name("bad_name!")
    assert not is_valid_node_name("a" * 254)
    assert "Node password rejected" in password_rejected("/x/node-password")
    assert "'/x/node-password'" in password_rejected("/x/node-password")
