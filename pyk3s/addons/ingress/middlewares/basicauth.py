"""basicAuth (spec 5.1).

    basicAuth:
      users: ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "u2:{SHA}..."]   # or usersFile / a Secret
      realm: traefik          # default
      removeHeader: false     # drop Authorization before forwarding
      headerField: X-WebAuth-User

Hashes by prefix (5.1.3): ``{SHA}`` base64(sha1), ``$2a$ $2b$ $2x$ $2y$`` bcrypt, anything else MD5-crypt
(``$apr1$``, ``$1$``). Failure -> 401 ``WWW-Authenticate: Basic realm="<realm>"``, body
``401 Unauthorized\\n``. Comparisons are constant-time; an unknown user still costs one hash.
Successful credentials are remembered (bounded) so the per-request cost of MD5-crypt/bcrypt is paid
once per credential, not per request. Passwords are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import bcrypt
from passlib.hash import apr_md5_crypt, md5_crypt

from ..config.errors import ConfigError
from ..http.reply import Reply
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler

__all__ = ["BasicAuth", "accept_user", "basic_credentials", "check_secret", "parse_users"]

_DUMMY = "{SHA}" + base64.b64encode(hashlib.sha1(b"pyk3s-dummy").digest()).decode()
_CACHE_MAX = 1024


def check_secret(password: str, secret: str) -> bool:
    """True when password matches the htpasswd hash (constant-time comparisons)."""
    pw = password.encode()
    if secret.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(pw).digest()).decode()
        return hmac.compare_digest(digest, secret[5:])
    if secret[:4] in ("$2a$", "$2b$", "$2x$", "$2y$"):
        try:
            fixed = "$2a$" + secret[4:] if secret.startswith("$2x$") else secret
            return bcrypt.checkpw(pw, fixed.encode())
        except ValueError:
            return False
    parts = secret.split("$")
    if len(parts) != 4 or parts[0] != "":
        return False
    try:
        if parts[1] == "apr1":
            return bool(apr_md5_crypt.verify(password, secret))
        if parts[1] == "1":
            return bool(md5_crypt.verify(password, secret))
    except (ValueError, TypeError):
        return False
    return False


def parse_users(lines: list[str], kind: str = "basicAuth", fields: int = 2) -> dict[str, str]:
    """``name:hash`` lines -> {name: hash}; later entries win (5.1.1, 5.1.2)."""
    users: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != fields:
            raise ConfigError(f"ingress: middleware {kind}: error parsing Authenticator user: {parts[0]}")
        key = ":".join(parts[:-1]) if fields == 3 else parts[0]
        users[key] = parts[-1]
    if not users:
        raise ConfigError(f"ingress: middleware {kind}: no users defined")
    return users


def load_user_lines(config: Config, kind: str) -> list[str]:
    lines: list[str] = []
    path = config.get("usersFile")
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                lines.extend(fh.read().splitlines())
        except OSError as err:
            raise ConfigError(f"ingress: middleware {kind}: usersFile {path}: {err.strerror}") from None
    lines.extend(str(u) for u in config.get("users") or ())
    return lines


def basic_credentials(value: str) -> tuple[str, str] | None:
    """Go request.BasicAuth: scheme case-insensitive, split on the first ':'."""
    if len(value) < 6 or value[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:], validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def accept_user(req: HttpRequest, user: str, header_field: str, remove_header: bool) -> None:
    """What basicAuth and digestAuth do once the credentials check out (5.1.5)."""
    req.user = user
    if header_field:
        req.set_header(header_field, user)
    if remove_header:
        req.del_header("authorization")


class BasicAuth(MiddlewareHandler):
    __slots__ = ("users", "realm", "remove_header", "header_field", "challenge", "cache")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.users = parse_users(load_user_lines(config, "basicAuth"))
        self.realm = config.get("realm") or "traefik"
        self.remove_header = bool(config.get("removeHeader"))
        self.header_field = config.get("headerField") or ""
        self.challenge = Reply(401, [("Content-Type", "text/plain"),
                                     ("Www-Authenticate", f'Basic realm="{self.realm}"')], b"401 Unauthorized\n")
        self.cache: dict[str, str] = {}

    def on_request(self, req: HttpRequest) -> Reply | None:
        auth = req.header("authorization")
        user = self.cache.get(auth) if auth else None
        if user is None:
            user = self._verify(auth)
            if user is None:
                return Reply(401, list(self.challenge.headers), self.challenge.body)
        accept_user(req, user, self.header_field, self.remove_header)
        return None

    def _verify(self, auth: str) -> str | None:
        creds = basic_credentials(auth) if auth else None
        if creds is None:
            return None
        user, password = creds
        secret = self.users.get(user)
        ok = check_secret(password, secret if secret is not None else _DUMMY)
        if not ok or secret is None:
            return None
        if len(self.cache) >= _CACHE_MAX:
            self.cache.clear()
        self.cache[auth] = user
        return user
