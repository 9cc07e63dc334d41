"""Authentication: who is making a request.

Methods, tried in this order (kube-apiserver unions them; the first that knows the credential wins):

1. ``Authorization: Bearer <token>``: the server token (``<data-dir>/server/token``, ``--token``,
   accepted whole as ``K10<hash>::server:<password>`` or as the bare password) authenticates as the
   node/bootstrap user ``node`` in ``system:masters``; a service-account JWT (RS256, signed with
   ``tls/service.key``) authenticates as ``system:serviceaccount:<ns>:<name>``. A bearer token that
   is neither is rejected (401), even if a client certificate was also sent, like kube-apiserver.
2. A client certificate, already chain-verified against the client CA by the TLS layer
   (``CERT_OPTIONAL``): user = subject CN, groups = subject O values.

Every authenticated user also gets ``system:authenticated``. Requests with no credentials are
anonymous (``system:anonymous`` / ``system:unauthenticated``) only for the public health and version
paths; everything else answers 401 (spec 7.5).
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from pyk3s.api.certs import write_private
from pyk3s.api.request import UserInfo
from pyk3s.k3s.token import server_token_forms

__all__ = [
    "ANONYMOUS",
    "ANONYMOUS_PATHS",
    "AUTHENTICATED",
    "Authenticator",
    "DEFAULT_ISSUER",
    "SERVER_TOKEN_USER",
    "ServiceAccountTokens",
    "TokenClaims",
    "anonymous_allowed",
    "unauthorized_status",
    "user_from_certificate",
]

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
AUTHENTICATED = "system:authenticated"
ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))
ANONYMOUS_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})
SERVER_TOKEN_USER = UserInfo("node", ("k3s:agent", "system:masters", AUTHENTICATED))


def anonymous_allowed(path: str) -> bool:
    if path in ANONYMOUS_PATHS:
        return True
    return path.startswith(("/healthz/", "/livez/", "/readyz/"))


def unauthorized_status() -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def _with_authenticated(groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(groups) if AUTHENTICATED in groups else (*groups, AUTHENTICATED)


@lru_cache(maxsize=256)
def user_from_certificate(der: bytes) -> UserInfo:
    """User of a (TLS-verified) client certificate: CN is the name, O values are the groups."""
    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return UserInfo(str(cns[0].value) if cns else "", _with_authenticated(orgs))


# -- service-account JWTs ---------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...]
    expires: int
    pod_name: str = ""
    pod_uid: str = ""

    @property
    def user(self) -> UserInfo:
        return UserInfo(
            f"system:serviceaccount:{self.namespace}:{self.name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", AUTHENTICATED),
            self.uid,
        )


class ServiceAccountTokens:
    """Issues and verifies bound service-account tokens (RS256 JWTs like Kubernetes' TokenRequest)."""

    def __init__(self, key: rsa.RSAPrivateKey, issuer: str = DEFAULT_ISSUER,
                 api_audiences: Sequence[str] = (DEFAULT_ISSUER, "k3s")) -> None:
        self._key = key
        self._public = key.public_key()
        self.issuer = issuer
        self.api_audiences = tuple(api_audiences)
        der = self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(der)
        self.key_id = _b64url(digest.finalize())

    @classmethod
    def load_or_create(cls, key_path: Path, issuer: str = DEFAULT_ISSUER) -> ServiceAccountTokens:
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"authn: {key_path}: service-account key must be RSA")
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            write_private(key_path, key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()))
        return cls(key, issuer)

    def issue(
        self,
        namespace: str,
        name: str,
        audiences: Sequence[str] = (),
        expiration_seconds: int = 3600,
        bound_pod: Mapping[str, str] | None = None,
        *,
        sa_uid: str = "",
        now: float | None = None,
    ) -> str:
        """A signed token; ``bound_pod`` = {"name", "uid"} of the pod it is bound to, if any."""
        iat = int(now if now is not None else time.time())
        k8s: dict = {"namespace": namespace, "serviceaccount": {"name": name, "uid": sa_uid}}
        if bound_pod:
            k8s["pod"] = {"name": bound_pod.get("name", ""), "uid": bound_pod.get("uid", "")}
        claims = {
            "aud": list(audiences or self.api_audiences),
            "exp": iat + max(int(expiration_seconds), 600),
            "iat": iat,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s,
            "nbf": iat,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        header = {"alg": "RS256", "kid": self.key_id}
        signing_input = f"{_b64url(json.dumps(header, separators=(',', ':')).encode())}." \
                        f"{_b64url(json.dumps(claims, separators=(',', ':')).encode())}"
        sig = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(sig)}"

    def verify(self, token: str, audiences: Sequence[str] | None = None,
               now: float | None = None) -> TokenClaims | None:
        """Claims of a valid token (signature, issuer, time, audience) or None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_b64url_decode(parts[0]))
            if header.get("alg") != "RS256":
                return None
            self._public.verify(_b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode(),
                                padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(_b64url_decode(parts[1]))
        except (ValueError, InvalidSignature, TypeError):
            return None
        t = now if now is not None else time.time()
        if claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int):
            return None
        if t >= claims["exp"] or t + 60 < claims.get("nbf", 0):
            return None
        aud = claims.get("aud") or []
        aud = [aud] if isinstance(aud, str) else list(aud)
        wanted = self.api_audiences if audiences is None else tuple(audiences)
        if wanted and not set(aud) & set(wanted):
            return None
        k8s = claims.get("kubernetes.io") or {}
        sa = k8s.get("serviceaccount") or {}
        pod = k8s.get("pod") or {}
        if not k8s.get("namespace") or not sa.get("name"):
            return None
        return TokenClaims(
            namespace=k8s["namespace"], name=sa["name"], uid=sa.get("uid", ""), audiences=tuple(aud),
            expires=claims["exp"], pod_name=pod.get("name", ""), pod_uid=pod.get("uid", ""),
        )


# -- the authenticator ------------------------------------------------------------------------


class Authenticator:
    """Maps a request's credentials to a :class:`UserInfo` (None = not authenticated)."""

    def __init__(self, *, server_token: str = "", sa_tokens: ServiceAccountTokens | None = None) -> None:
        self._server_tokens: tuple[str, ...] = ()
        self.set_server_token(server_token)
        self.sa_tokens = sa_tokens

    def set_server_token(self, token: str) -> None:
        self._server_tokens = server_token_forms(token)

    def authenticate_token(self, token: str, audiences: Sequence[str] | None = None) -> UserInfo | None:
        for known in self._server_tokens:
            if hmac.compare_digest(token.encode(), known.encode()):
                return SERVER_TOKEN_USER
        if self.sa_tokens is not None and token.count(".") == 2:
            claims = self.sa_tokens.verify(token, audiences)
            if claims is not None:
                return claims.user
        return None

    def authenticate(self, headers: Mapping[str, str], peer_cert_der: bytes | None) -> UserInfo | None:
        """``headers`` with lower-cased names; ``peer_cert_der`` as verified by the TLS handshake."""
        auth = headers.get("authorization", "")
        if auth:
            scheme, _, token = auth.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            return self.authenticate_token(token.strip())
        if peer_cert_der:
            user = user_from_certificate(peer_cert_der)
            return user if user.name else None
        return None
