"""digestAuth (spec 5.2): htdigest users ``user:realm:md5(user:realm:password)``, MD5, qop=auth.

    digestAuth: {users: ["test:traefik:a2688e031edb4be6a3797f3882655c05"], realm: traefik,
                 removeHeader: false, headerField: X-WebAuth-User}
"""

from __future__ import annotations

import hashlib
import hmac
import os

from ..http.reply import Reply
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler
from .basicauth import accept_user, load_user_lines, parse_users

__all__ = ["DigestAuth"]

_MAX_NONCES = 4096


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _params(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _split(value):
        k, _, v = part.partition("=")
        out[k.strip().lower()] = v.strip().strip('"')
    return out


def _split(value: str) -> list[str]:
    parts, cur, quoted = [], "", False
    for c in value:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur)
    return parts


class DigestAuth(MiddlewareHandler):
    __slots__ = ("users", "realm", "remove_header", "header_field", "nonces", "opaque")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.users = parse_users(load_user_lines(config, "digestAuth"), "digestAuth", fields=3)
        self.realm = config.get("realm") or "traefik"
        self.remove_header = bool(config.get("removeHeader"))
        self.header_field = config.get("headerField") or ""
        self.nonces: dict[str, int] = {}
        self.opaque = os.urandom(8).hex()

    def challenge(self) -> Reply:
        nonce = os.urandom(8).hex()
        if len(self.nonces) > _MAX_NONCES:
            self.nonces.clear()
        self.nonces[nonce] = 0
        value = (f'Digest realm="{self.realm}", nonce="{nonce}", opaque="{self.opaque}", '
                 f'algorithm="MD5", qop="auth"')
        return Reply(401, [("Content-Type", "text/plain"), ("Www-Authenticate", value)], b"401 Unauthorized\n")

    def on_request(self, req: HttpRequest) -> Reply | None:
        auth = req.header("authorization")
        if not auth.lower().startswith("digest "):
            return self.challenge()
        p = _params(auth[7:])
        user = p.get("username", "")
        ha1 = self.users.get(f"{user}:{self.realm}")
        nonce = p.get("nonce", "")
        if ha1 is None or nonce not in self.nonces or p.get("qop", "auth") != "auth" or p.get("opaque") != self.opaque:
            return self.challenge()
        nc = int(p.get("nc", "0") or "0", 16)
        if nc <= self.nonces[nonce]:
            return self.challenge()
        ha2 = _md5(f"{req.method}:{p.get('uri', '')}")
        expected = _md5(f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        if not hmac.compare_digest(expected, p.get("response", "")):
            return self.challenge()
        self.nonces[nonce] = nc
        accept_user(req, user, self.header_field, self.remove_header)
        return None
