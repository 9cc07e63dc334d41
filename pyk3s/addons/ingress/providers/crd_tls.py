"""TLSOption, TLSStore and ServersTransport objects of the kubernetesCRD provider (spec 3.12, 8.3-8.4),
after Traefik's buildTLSOptions, buildTLSStores and its ServersTransport loop.

- TLSOption ``<ns>-<name>``; one named ``default`` replaces the default option, and is dropped when
  defined in several namespaces. Unset cipherSuites and alpnProtocols take Traefik's defaults.
- TLSStore ``<ns>-<name>`` (``default`` for the default one, dropped when defined in several
  namespaces): its defaultCertificate, and its certificates added to the certificates for that store.
- ServersTransport ``<ns>-<name>``: rootCAs from Secrets (``tls.ca``, ``ca.crt`` or their only key)
  or ConfigMaps, client certificates from TLS Secrets, forwardingTimeouts with Traefik's defaults.
  Whatever cannot be loaded (a missing Secret) is left out as in Traefik, and named in the
  transport's ``error`` so the services using it show it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.durations import duration_seconds
from ..config.dynamic import (
    DEFAULT_ALPN,
    DEFAULT_CIPHER_SUITES,
    Certificate,
    ForwardingTimeouts,
    ServersTransport,
    TLSOptions,
    TLSStore,
)
from ..config.errors import ConfigError
from ..config.static import ProviderOptions
from .common import (
    ObjectIndex,
    ServiceLookupError,
    ca_from_config_map,
    ca_from_secret,
    certificate_blocks,
    certificate_from_secret,
    normalize,
    secret_data,
)
from .crd_scope import ours

__all__ = ["tls_options", "tls_stores", "servers_transports"]

# Go's crypto/tls versions, by the names Traefik accepts
_VERSIONS = {"VersionTLS10": 0x0301, "VersionTLS11": 0x0302, "VersionTLS12": 0x0303, "VersionTLS13": 0x0304}


def _id(md: Mapping[str, Any]) -> str:
    ns, name = md.get("namespace", ""), md.get("name", "")
    return f"{ns}-{name}" if ns else name


def tls_options(idx: ObjectIndex, opts: ProviderOptions) -> dict[str, TLSOptions]:
    out: dict[str, TLSOptions] = {}
    defaults: list[str] = []
    for obj in idx.all("TLSOption"):
        if not ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        spec: dict[str, Any] = obj.get("spec") or {}
        client = spec.get("clientAuth") or {}
        cas = []
        for name in client.get("secretNames") or ():
            secret = idx.get("Secret", md.get("namespace", ""), name)
            if secret is None:
                continue
            data = secret_data(secret)
            ca = data.get("tls.ca", data.get("ca.crt"))
            if ca is not None:
                cas.append(ca.decode())
        key = _id(md)
        if md.get("name") == "default":
            key = "default"
            defaults.append(md.get("namespace", ""))
        out[key] = TLSOptions(
            min_version=spec.get("minVersion") or "", max_version=spec.get("maxVersion") or "",
            cipher_suites=tuple(spec["cipherSuites"]) if spec.get("cipherSuites") is not None else DEFAULT_CIPHER_SUITES,
            curve_preferences=tuple(spec.get("curvePreferences") or ()),
            alpn_protocols=tuple(spec["alpnProtocols"]) if spec.get("alpnProtocols") is not None else DEFAULT_ALPN,
            sni_strict=bool(spec.get("sniStrict")), client_auth_type=client.get("clientAuthType", "") or "",
            client_ca_pems=tuple(cas), disable_session_tickets=bool(spec.get("disableSessionTickets")))
    if len(defaults) > 1:
        out.pop("default", None)
    return out


def tls_stores(idx: ObjectIndex, opts: ProviderOptions) -> tuple[dict[str, TLSStore], dict[str, Certificate]]:
    """(stores by name, certificates of the stores keyed "<ns>/<secret>")."""
    stores: dict[str, TLSStore] = {}
    certs: dict[str, Certificate] = {}
    defaults: list[str] = []
    for obj in idx.all("TLSStore"):
        if not ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        ns = md.get("namespace", "")
        key = _id(md)
        if md.get("name") == "default":
            key = "default"
            defaults.append(ns)
        spec = obj.get("spec") or {}
        default_cert = None
        if spec.get("defaultCertificate"):
            secret_name = spec["defaultCertificate"].get("secretName", "")
            secret = idx.get("Secret", ns, secret_name)
            if secret is None:
                continue
            try:
                crt, pem_key = certificate_blocks(secret, ns, secret_name)
            except ServiceLookupError:
                continue
            default_cert = Certificate(crt, pem_key, (), f"{ns}/{secret_name}")
        resolver = ((spec.get("defaultGeneratedCert") or {}).get("resolver") or "")
        for c in spec.get("certificates") or ():
            name = c.get("secretName", "")
            if f"{ns}/{name}" in certs:
                continue
            try:
                certs[f"{ns}/{name}"] = certificate_from_secret(idx, ns, name, (key,))
            except ServiceLookupError:
                continue  # Traefik retries on the next refresh; the other certificates still load
        stores[key] = TLSStore(default_certificate=default_cert, default_generated_resolver=resolver)
    if len(defaults) > 1:
        stores.pop("default", None)
    return stores, certs


def _duration(value: Any, default: float, where: str, problems: list[str]) -> float:
    try:
        return duration_seconds(value, default, where)
    except ConfigError as err:
        problems.append(str(err).removeprefix("ingress: "))
        return default


def _timeouts(spec: Mapping[str, Any] | None, problems: list[str]) -> ForwardingTimeouts:
    base = ForwardingTimeouts()
    if not spec:
        return base
    return ForwardingTimeouts(
        dial_timeout=_duration(spec.get("dialTimeout"), base.dial_timeout, "forwardingTimeouts.dialTimeout", problems),
        response_header_timeout=_duration(spec.get("responseHeaderTimeout"), base.response_header_timeout,
                                          "forwardingTimeouts.responseHeaderTimeout", problems),
        idle_conn_timeout=_duration(spec.get("idleConnTimeout"), base.idle_conn_timeout,
                                    "forwardingTimeouts.idleConnTimeout", problems),
        read_idle_timeout=_duration(spec.get("readIdleTimeout"), base.read_idle_timeout,
                                    "forwardingTimeouts.readIdleTimeout", problems),
        ping_timeout=_duration(spec.get("pingTimeout"), base.ping_timeout, "forwardingTimeouts.pingTimeout", problems))


def _root_cas(idx: ObjectIndex, ns: str, spec: Mapping[str, Any], problems: list[str]) -> list[str]:
    cas = []
    for name in spec.get("rootCAsSecrets") or ():
        try:
            cas.append(ca_from_secret(idx, ns, name))
        except ServiceLookupError as err:
            problems.append(f"rootCAsSecrets: {err}")
    for ref in spec.get("rootCAs") or ():
        try:
            if ref.get("secret") is not None and ref.get("configMap") is not None:
                raise ServiceLookupError("both Secret and ConfigMap are defined")
            if ref.get("secret") is not None:
                cas.append(ca_from_secret(idx, ns, ref["secret"]))
            else:
                cas.append(ca_from_config_map(idx, ns, ref.get("configMap", "")))
        except ServiceLookupError as err:
            problems.append(f"rootCAs: {err}")
    return cas


def servers_transports(idx: ObjectIndex, opts: ProviderOptions) -> dict[str, ServersTransport]:
    out: dict[str, ServersTransport] = {}
    for obj in idx.all("ServersTransport"):
        if not ours(obj, opts):
            continue
        md = obj.get("metadata") or {}
        ns = md.get("namespace", "")
        spec: dict[str, Any] = obj.get("spec") or {}
        problems: list[str] = []
        cas = _root_cas(idx, ns, spec, problems)
        certs = []
        for name in spec.get("certificatesSecrets") or ():
            try:
                certs.append(certificate_from_secret(idx, ns, name))
            except ServiceLookupError as err:
                problems.append(f"certificatesSecrets: {err}")
        ciphers: tuple[str, ...] = tuple(spec.get("cipherSuites") or ())
        min_v, max_v = spec.get("minVersion") or "", spec.get("maxVersion") or ""
        if min_v and min_v not in _VERSIONS:
            problems.append(f"invalid TLS minimum version: {min_v}")
            min_v = ""
        if max_v and max_v not in _VERSIONS:
            problems.append(f"invalid TLS maximum version: {max_v}")
            max_v = ""
        if spec.get("minVersion") and spec.get("maxVersion") and _VERSIONS.get(min_v, 0) >= _VERSIONS.get(max_v, 0):
            problems.append(f"minVersion {spec['minVersion']} is not below maxVersion {spec['maxVersion']}: "
                            "VersionTLS12 and no maximum are used")
            min_v, max_v = "VersionTLS12", ""
        sans = tuple((str(s.get("type", "")), str(s.get("value", ""))) for s in spec.get("peerCertSANs") or ())
        out[normalize(_id(md))] = ServersTransport(
            server_name=spec.get("serverName") or "", insecure_skip_verify=bool(spec.get("insecureSkipVerify")),
            root_cas=tuple(cas), certificates=tuple(certs), cipher_suites=ciphers, min_version=min_v,
            max_version=max_v, max_idle_conns_per_host=int(spec.get("maxIdleConnsPerHost") or 0),
            forwarding_timeouts=_timeouts(spec.get("forwardingTimeouts"), problems),
            disable_http2=bool(spec.get("disableHTTP2")), peer_cert_uri=spec.get("peerCertURI") or "",
            peer_cert_sans=sans, spiffe=spec.get("spiffe"),
            error="; ".join(f"serverstransport {ns}/{md.get('name')}: {p}" for p in problems))
    return out
