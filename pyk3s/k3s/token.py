"""Cluster join tokens in K3s's formats.

Secure form ``K10<sha256 of the server CA bundle, hex>::<user>:<password>``; short form ``<password>``.
The server keeps the secure form in ``<data-dir>/server/token`` (``node-token`` links to it); an agent
given the secure form checks the CA it downloads against the hash before trusting it.

Two rules decide whether a presented token is this cluster's:

* As an API bearer token (:func:`server_token_forms`): the whole server token, or its password.
* At the join endpoint (:func:`join_token_matches`): the whole token or the password on either side,
  but a secure token naming another CA hash never passes on its password alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JoinToken", "ensure_server_token", "join_token_matches", "parse_token", "read_token_flags",
           "server_token_forms", "stored_server_token"]

SECURE_PREFIX = "K10"
TOKEN_FILE = "token"
NODE_TOKEN_LINK = "node-token"


@dataclass(frozen=True, slots=True)
class JoinToken:
    password: str
    user: str = "server"
    ca_hash: str = ""

    def secure(self, ca_pem: bytes) -> str:
        return f"{SECURE_PREFIX}{hashlib.sha256(ca_pem).hexdigest()}::{self.user}:{self.password}"

    def ca_matches(self, ca_pem: bytes) -> bool:
        return not self.ca_hash or secrets.compare_digest(self.ca_hash, hashlib.sha256(ca_pem).hexdigest())


def parse_token(value: str) -> JoinToken:
    """A token in either form; ValueError (its message starts with ``token:``) when it is neither."""
    value = value.strip()
    if value.startswith(SECURE_PREFIX) and "::" in value:
        head, _, cred = value.partition("::")
        user, sep, password = cred.partition(":")
        if not sep or not password:
            raise ValueError("token: expected K10<ca-hash>::<user>:<password>")
        return JoinToken(password=password, user=user, ca_hash=head[len(SECURE_PREFIX):])
    if not value:
        raise ValueError("token: empty")
    return JoinToken(password=value)


def _forms(token: str) -> tuple[str, ...]:
    """The whole token and its password (one entry for a short token or one that does not parse)."""
    try:
        password = parse_token(token).password
    except ValueError:
        return (token,) if token else ()
    return tuple(dict.fromkeys(f for f in (token, password) if f))


def server_token_forms(token: str) -> tuple[str, ...]:
    """What the API accepts as the server token in ``Authorization: Bearer``: the whole token or its password."""
    return _forms(token) if token else ()


def join_token_matches(presented: str, known: str) -> bool:
    """Whether ``presented`` is the cluster token ``known`` at the join endpoint (constant-time compares)."""
    if not known or not presented:
        return False
    if presented.startswith(SECURE_PREFIX) and known.startswith(SECURE_PREFIX) and \
            presented.split("::")[0] != known.split("::")[0]:
        return False
    wanted = _forms(known)
    return any(hmac.compare_digest(p.encode(), w.encode()) for p in _forms(presented) for w in wanted)


def read_token_flags(token: str, token_file: str) -> str:
    """``--token``, or the contents of ``--token-file`` when given; OSError's reason names the flag."""
    if not token_file:
        return token or ""
    try:
        return Path(token_file).read_text().strip()
    except OSError as err:
        raise ValueError(f"--token-file {token_file}: {err.strerror}") from None


def stored_server_token(server_dir: Path) -> str:
    """The token a server wrote into ``<server_dir>/token`` on an earlier start, or ""."""
    path = server_dir / TOKEN_FILE
    return path.read_text().strip() if path.exists() else ""


def ensure_server_token(server_dir: Path, ca_pem: bytes, given: str) -> str:
    """Write (or keep) the server token file; returns the secure token string."""
    path = server_dir / TOKEN_FILE
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
    link = server_dir / NODE_TOKEN_LINK
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(TOKEN_FILE)
    return secure
