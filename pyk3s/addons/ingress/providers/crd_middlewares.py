"""Middleware CRD objects -> dynamic middlewares (spec 3.9, 3.14).

The CRD spec uses the dynamic-configuration field names, so most kinds pass through unchanged; the
kinds that reference Kubernetes objects (basicAuth/digestAuth secrets, the errors page service) are
resolved here. A middleware that cannot be built is kept with its ``error`` so every router that uses
it is disabled with that message.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ..config.dynamic import LoadBalancer, Middleware, Service
from ..config.static import ProviderOptions
from .common import KubeObject, ObjectIndex, ServiceLookupError, normalize, secret_data, servers_for

__all__ = ["KINDS", "build_middleware", "basic_auth_users"]

KINDS = (
    "addPrefix", "stripPrefix", "stripPrefixRegex", "replacePath", "replacePathRegex", "chain",
    "ipWhiteList", "ipAllowList", "headers", "errors", "rateLimit", "redirectRegex", "redirectScheme",
    "basicAuth", "digestAuth", "forwardAuth", "inFlightReq", "buffering", "circuitBreaker", "compress",
    "passTLSClientCert", "retry", "contentType", "grpcWeb", "plugin",
)


def basic_auth_users(idx: ObjectIndex, namespace: str, name: str, basic: bool) -> list[str]:
    """htpasswd lines from a Secret: basic-auth type gives one {SHA} user, else one key of lines."""
    secret = idx.get("Secret", namespace, name)
    if secret is None:
        raise ServiceLookupError(f"failed to fetch secret {namespace}/{name}: not found")
    data = secret_data(secret)
    if basic and secret.get("type") == "kubernetes.io/basic-auth":
        user, password = data.get("username"), data.get("password")
        if user is None or password is None:
            raise ServiceLookupError(f"secret {namespace}/{name} must have username and password keys")
        digest = base64.b64encode(hashlib.sha1(password).digest()).decode()
        return [f"{user.decode()}:{{SHA}}{digest}"]
    if len(data) != 1:
        raise ServiceLookupError(f"found {len(data)} elements for secret {namespace}/{name}, must be single element exactly")
    raw = next(iter(data.values())).decode("utf-8", "replace")
    users = [line for line in raw.split("\n") if line.strip()]
    if not users:
        raise ServiceLookupError(f"secret {namespace}/{name} does not contain any credentials")
    return users


def _errors_service(idx: ObjectIndex, namespace: str, ref: dict[str, Any],
                    opts: ProviderOptions) -> tuple[str, Service]:
    ns = ref.get("namespace") or namespace
    name, port = ref.get("name", ""), ref.get("port", "")
    full = normalize(f"{ns}-{name}-{port}")
    if ref.get("kind") == "TraefikService" or "@" in name:
        return (name if "@" in name else normalize(f"{ns}-{name}")), Service()
    servers, _ = servers_for(idx, ns, name, port, ref.get("scheme", ""), opts)
    return full, Service(load_balancer=LoadBalancer(servers=servers,
                                                    pass_host_header=ref.get("passHostHeader", True)))


def build_middleware(idx: ObjectIndex, obj: KubeObject, opts: ProviderOptions) -> tuple[Middleware, dict[str, Service]]:
    """One Middleware object -> (middleware, extra services it needs)."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace", "default")
    spec = obj.get("spec") or {}
    kinds = [k for k in spec if k in KINDS and spec[k] is not None]
    if len(kinds) != 1:
        unknown = sorted(set(spec) - set(KINDS))
        why = f"unknown middleware type {unknown[0]!r}" if unknown and not kinds else "exactly one middleware type must be set"
        return Middleware(kind=kinds[0] if kinds else (unknown[0] if unknown else ""), config=dict(spec),
                          error=f"middleware {ns}/{md.get('name')}: {why}"), {}
    kind = kinds[0]
    config: dict[str, Any] = dict(spec[kind] or {})
    extra: dict[str, Service] = {}
    try:
        if kind in ("basicAuth", "digestAuth"):
            secret = config.pop("secret", "")
            if secret:
                config["users"] = basic_auth_users(idx, ns, secret, kind == "basicAuth")
        elif kind == "errors" and isinstance(config.get("service"), dict):
            name, svc = _errors_service(idx, ns, config["service"], opts)
            config["service"] = name
            if svc.load_balancer is not None:
                extra[name] = svc
        elif kind == "chain":
            refs = []
            for ref in config.get("middlewares") or []:
                n = ref.get("name", "") if isinstance(ref, dict) else str(ref)
                if "@" in n:
                    refs.append(n)
                    continue
                rns = (ref.get("namespace") if isinstance(ref, dict) else "") or ns
                if rns != ns and not opts.allow_cross_namespace:
                    raise ServiceLookupError(f"middleware {rns}/{n} is not in the chain namespace {ns}")
                refs.append(normalize(f"{rns}-{n}"))
            config["middlewares"] = refs
    except ServiceLookupError as err:
        return Middleware(kind=kind, config=config, error=f"middleware {ns}/{md.get('name')}: {err}"), {}
    return Middleware(kind=kind, config=config), extra
