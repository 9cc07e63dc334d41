"""Cluster join tokens in K3s's formats.

Secure form ``K10<sha256 of the server CA bundle, hex>::<user>:<password>``; short form ``<password>``.
The server keeps the secure form in ``<data-dir>/server/token`` (``node-token`` links to it); an agent
given the secure form checks the CA it downloads against the hash before trusting it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JoinToken", "ensure_server_token", "parse_token"]


@dataclass(frozen=True, slots=True)
class JoinToken:
    password: str
    user: str = "server"
    ca_hash: str = ""

    def secure(self, ca_pem: bytes) -> str:
        return f"K10{hashlib.sha256(ca_pem).hexdigest()}::{self.user}:{self.password}"

    def ca_matches(self, ca_pem: bytes) -> bool:
        return not self.ca_hash or secrets.compare_digest(self.ca_hash, hashlib.sha256(ca_pem).hexdigest())


def parse_token(value: str) -> JoinToken:
    value = value.strip()
    if value.startswith("K10") and "::" in value:
        head, _, cred = value.partition("::")
        user, sep, password = cred.partition(":")
        if not sep or not password:
            raise ValueError("token: expected K10<ca-hash>::<user>:<password>")
        return JoinToken(password=password, user=user, ca_hash=head[3:])
    if not value:
        raise ValueError("token: empty")
    return JoinToken(password=value)


def ensure_server_token(server_dir: Path, ca_pem: bytes, given: str) -> str:
    """Write (or keep) the server token file; returns the secure token string."""
    path = server_dir / "token"
    if given:
        tok = parse_token(given)
        if tok.ca_hash and not tok.ca_matches(ca_pem):
            raise ValueError("--token: its CA hash does not match this server's CA; use the token this cluster printed")
    elif path.exists():
        tok = parse_token(path.read_text())
    else:
        tok = JoinToken(password=secrets.token_hex(16))
    secure = tok.secure(ca_pem)
    if not path.exists() or path.read_text().strip() != secure:
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(secure + "\n")
        tmp.replace(path)
    link = server_dir / "node-token"
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to("token")
    return secure
