"""Middleware objects of the kubernetesCRD provider -> dynamic middlewares (spec 3.9, 3.14), after
Traefik's loop in crd/kubernetes.go.

The CRD spec uses the dynamic-configuration field names, so most kinds pass through unchanged. The
kinds Traefik rewrites get the same treatment here: basicAuth/digestAuth read their users from a
Secret; forwardAuth gets maxBodySize -1 and its tls CA/certificate from Secrets; errors resolves its
service (a Kubernetes Service becomes ``<id>-errorpage-service``); chain resolves its references;
rateLimit gets burst 1 and period 1s, retry its body limit, circuitBreaker its periods and code 503,
compress the encodings gzip, br, zstd; a plugin's ``urn:k8s:secret:<name>:<key>`` values are read
from Secrets. A middleware that cannot be built keeps its ``error`` (Traefik drops it), so every
router using it is disabled with that message.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ..config.durations import duration_seconds, go_duration
from ..config.dynamic import Middleware
from ..config.errors import ConfigError
from .common import KubeObject, ServiceLookupError, ca_from_secret, certificate_blocks, secret_data
from .crd_scope import resolve_reference
from .crd_services import ServiceBuilder

__all__ = ["KINDS", "build_middleware", "basic_auth_users"]

KINDS = (
    "addPrefix", "stripPrefix", "stripPrefixRegex", "replacePath", "replacePathRegex", "chain",
    "ipWhiteList", "ipAllowList", "headers", "errors", "rateLimit", "redirectRegex", "redirectScheme",
    "basicAuth", "digestAuth", "forwardAuth", "inFlightReq", "buffering", "circuitBreaker", "compress",
    "passTLSClientCert", "retry", "contentType", "grpcWeb", "plugin", "encodedCharacters",
)


def basic_auth_users(builder: ServiceBuilder, namespace: str, name: str, basic: bool) -> list[str]:
    """htpasswd lines from a Secret: basic-auth type gives one {SHA} user, else its only key's lines."""
    secret = builder.idx.get("Secret", namespace, name)
    if secret is None:
        raise ServiceLookupError(f"secret '{namespace}/{name}' not found")
    data = secret_data(secret)
    if basic and secret.get("type") == "kubernetes.io/basic-auth":
        user, password = data.get("username"), data.get("password")
        if user is None or password is None:
            raise ServiceLookupError(f"secret '{namespace}/{name}' must contain both username and password keys")
        digest = base64.b64encode(hashlib.sha1(password).digest()).decode()
        return [f"{user.decode()}:{{SHA}}{digest}"]
    if len(data) != 1:
        raise ServiceLookupError(f"found {len(data)} elements for secret '{namespace}/{name}', must be single element exactly")
    raw = next(iter(data.values())).decode("utf-8", "replace")
    users = [line.rstrip("\r") for line in raw.split("\n") if line.rstrip("\r")]
    if not users:
        raise ServiceLookupError(f"secret '{namespace}/{name}' does not contain any credentials")
    return users


def _auth(builder: ServiceBuilder, ns: str, spec: dict[str, Any], kind: str) -> dict[str, Any]:
    if not spec.get("secret"):
        raise ServiceLookupError("auth secret must be set")
    users = basic_auth_users(builder, ns, str(spec["secret"]), kind == "basicAuth")
    out: dict[str, Any] = {"users": users}
    for key in ("realm", "removeHeader", "headerField"):
        if spec.get(key) not in (None, "", False):
            out[key] = spec[key]
    return out


def _forward_auth(builder: ServiceBuilder, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    if not spec.get("address"):
        raise ServiceLookupError("forward authentication requires an address")
    out = {k: v for k, v in spec.items() if k not in ("tls", "maxBodySize")}
    out["maxBodySize"] = int(spec["maxBodySize"]) if spec.get("maxBodySize") is not None else -1
    tls = spec.get("tls")
    if tls is not None:
        client = _client_tls(builder, ns, tls)
        if tls.get("caOptional"):
            client["caOptional"] = True
        out["tls"] = client
    return out


def _client_tls(builder: ServiceBuilder, ns: str, tls: dict[str, Any]) -> dict[str, Any]:
    client: dict[str, Any] = {}
    if tls.get("insecureSkipVerify"):
        client["insecureSkipVerify"] = True
    if tls.get("caSecret"):
        try:
            client["ca"] = ca_from_secret(builder.idx, ns, tls["caSecret"])
        except ServiceLookupError as err:
            raise ServiceLookupError(f"failed to load auth ca secret: {err}") from None
    if tls.get("certSecret"):
        secret = builder.idx.get("Secret", ns, tls["certSecret"])
        if secret is None:
            raise ServiceLookupError(f"failed to load auth secret: secret '{ns}/{tls['certSecret']}' does not exist")
        client["cert"], client["key"] = certificate_blocks(secret, ns, tls["certSecret"])
    return client


def _redis(builder: ServiceBuilder, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    """rateLimit.redis with Traefik's defaults; credentials and TLS material from Secrets."""
    out: dict[str, Any] = {k: v for k, v in spec.items() if k not in ("secret", "tls", "endpoints")}
    out["endpoints"] = list(spec.get("endpoints") or ["localhost:6379"])
    for key, default in (("readTimeout", 3.0), ("writeTimeout", 3.0), ("dialTimeout", 5.0)):
        out[key] = _duration(spec.get(key), default, f"rateLimit.redis.{key}")
    if spec.get("tls") is not None:
        out["tls"] = _client_tls(builder, ns, spec["tls"])
    if spec.get("secret"):
        secret = builder.idx.get("Secret", ns, spec["secret"])
        if secret is None:
            raise ServiceLookupError(f"secret '{ns}/{spec['secret']}' not found")
        data = secret_data(secret)
        if "username" not in data or "password" not in data:
            raise ServiceLookupError(f"secret '{ns}/{spec['secret']}' must contain both username and password keys")
        out["username"], out["password"] = data["username"].decode(), data["password"].decode()
    return out


def _duration(value: Any, default: float, where: str) -> str:
    try:
        return go_duration(duration_seconds(value, default, where))
    except ConfigError as err:
        raise ServiceLookupError(str(err).removeprefix("ingress: ")) from None


def _plugin_secrets(builder: ServiceBuilder, ns: str, value: Any) -> Any:
    if isinstance(value, str):
        if not value.startswith("urn:k8s:secret:"):
            return value
        parts = value.split(":")
        if len(parts) != 5:
            raise ServiceLookupError(f"malformed secret URN {value!r}")
        secret = builder.idx.get("Secret", ns, parts[3])
        if secret is None:
            raise ServiceLookupError(f"secret {ns}/{parts[3]} is not found")
        data = secret_data(secret)
        if parts[4] not in data:
            raise ServiceLookupError(f"key {parts[4]!r} not found in secret {ns}/{parts[3]}")
        return data[parts[4]].decode("utf-8", "replace")
    if isinstance(value, list):
        return [_plugin_secrets(builder, ns, v) for v in value]
    if isinstance(value, dict):
        return {k: _plugin_secrets(builder, ns, v) for k, v in value.items()}
    return value


def _kind_config(builder: ServiceBuilder, ns: str, mw_id: str, kind: str, spec: dict[str, Any],
                 extra: dict[str, Any]) -> dict[str, Any]:
    """The dynamic configuration of one middleware kind (Traefik's create*Middleware)."""
    if kind in ("basicAuth", "digestAuth"):
        return _auth(builder, ns, spec, kind)
    if kind == "forwardAuth":
        return _forward_auth(builder, ns, spec)
    if kind == "errors":
        out = {k: v for k, v in spec.items() if k != "service"}
        name, svc = builder.name_and_service(ns, spec.get("service") or {})
        if svc is not None:
            extra[f"{mw_id}-errorpage-service"] = svc
            name = f"{mw_id}-errorpage-service"
        out["service"] = name
        return out
    if kind == "chain":
        refs = []
        for ref in spec.get("middlewares") or ():
            n = str(ref.get("name", ""))
            try:
                refs.append(resolve_reference(ns, str(ref.get("namespace") or ""), n, builder.opts))
            except ServiceLookupError as err:
                raise ServiceLookupError(f"invalid reference to middleware {n}: {err}") from None
        return {"middlewares": refs}
    if kind == "rateLimit":
        out = dict(spec)
        out["burst"] = int(spec["burst"]) if spec.get("burst") is not None else 1
        out["period"] = _duration(spec.get("period"), 1.0, "rateLimit.period")
        if spec.get("redis") is not None:
            out["redis"] = _redis(builder, ns, spec["redis"])
        return out
    if kind == "retry":
        out = dict(spec)
        if spec.get("initialInterval") is not None:
            out["initialInterval"] = _duration(spec["initialInterval"], 0.0, "retry.initialInterval")
        out.setdefault("maxRequestBodyBytes", -1)
        return out
    if kind == "circuitBreaker":
        out = dict(spec)
        for key, default in (("checkPeriod", 0.1), ("fallbackDuration", 10.0), ("recoveryDuration", 10.0)):
            out[key] = _duration(spec.get(key), default, f"circuitBreaker.{key}")
        out["responseCode"] = int(spec.get("responseCode") or 503)
        return out
    if kind == "compress":
        out = dict(spec)
        out.setdefault("encodings", ["gzip", "br", "zstd"])
        return out
    if kind == "plugin":
        return {name: _plugin_secrets(builder, ns, conf) for name, conf in spec.items()}
    return dict(spec)


def build_middleware(builder: ServiceBuilder, obj: KubeObject, mw_id: str) -> Middleware:
    """One Middleware object -> its dynamic middleware; services it needs go into ``builder.services``."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace", "default")
    spec = obj.get("spec") or {}
    kinds = [k for k in spec if k in KINDS and spec[k] is not None]
    where = f"middleware {ns}/{md.get('name')}"
    if len(kinds) != 1:
        unknown = sorted(set(spec) - set(KINDS))
        why = f"unknown middleware type {unknown[0]!r}" if unknown and not kinds else "exactly one middleware type must be set"
        return Middleware(kind=kinds[0] if kinds else (unknown[0] if unknown else ""), config=dict(spec),
                          error=f"{where}: {why}")
    kind = kinds[0]
    raw: dict[str, Any] = dict(spec[kind] or {})
    extra: dict[str, Any] = {}
    try:
        config = _kind_config(builder, ns, mw_id, kind, raw, extra)
    except ServiceLookupError as err:
        return Middleware(kind=kind, config=raw, error=f"{where}: {err}")
    builder.services.update(extra)
    return Middleware(kind=kind, config=config)
