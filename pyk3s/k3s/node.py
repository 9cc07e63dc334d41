"""A node's name and the node-password guard, as K3s has them (k3s.md 6.5).

* Name: a lower-case RFC 1123 subdomain of at most 253 characters.
* Node password: each agent keeps a random password in ``<data-dir>/agent/node-password``; the first
  registration stores its scrypt hash in Secret ``kube-system/<node>.node-password.pyk3s`` (type
  ``k3s.cattle.io/node-password``, owned by the Node). A later agent under the same name with another
  password is refused with K3s's message, both by the agent itself and by the join endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any

__all__ = ["PASSWORD_FILE", "PASSWORD_SECRET_NAMESPACE", "PASSWORD_SECRET_TYPE", "hash_password",
           "is_valid_node_name", "password_rejected", "password_secret", "password_secret_name",
           "stored_password_hash", "verify_password"]

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PASSWORD_FILE = "node-password"
PASSWORD_SECRET_NAMESPACE = "kube-system"
PASSWORD_SECRET_TYPE = "k3s.cattle.io/node-password"
_REJECTED = ("Node password rejected, duplicate hostname or contents of '{path}' may not match server "
             "node-passwd entry, try enabling a unique node name with the --with-node-id flag")


def is_valid_node_name(name: str) -> bool:
    return len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))


def password_rejected(path: object) -> str:
    """K3s's message for a node password that does not match the stored hash; ``path`` is the agent's file."""
    return _REJECTED.format(path=path)


def password_secret_name(node: str) -> str:
    return f"{node}.node-password.pyk3s"


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "$scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        _, _, salt, digest = stored.split("$")
        return hash_password(password, base64.b64decode(salt)).split("$")[3] == digest
    except ValueError:
        return False


def stored_password_hash(secret: dict[str, Any]) -> str:
    """The hash kept in a node-password Secret (empty when the Secret holds none)."""
    return base64.b64decode((secret.get("data") or {}).get("hash", "")).decode(errors="replace")


def password_secret(node: str, node_uid: str, password: str) -> dict[str, Any]:
    """The Secret holding ``password``'s hash, owned by the Node so it goes when the Node is deleted."""
    return {"apiVersion": "v1", "kind": "Secret", "type": PASSWORD_SECRET_TYPE, "immutable": True,
            "metadata": {"name": password_secret_name(node), "namespace": PASSWORD_SECRET_NAMESPACE,
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]},
            "data": {"hash": base64.b64encode(hash_password(password).encode()).decode()}}
