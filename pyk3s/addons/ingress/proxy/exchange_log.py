"""The access-log record of a finished HTTP exchange (Traefik's access-log middleware, what it captures).

RequestPath and RequestAddr are the request as it arrived (before middlewares rewrite it);
ClientHost is the X-Forwarded-For a trusted client sent, else the peer; OriginStatus, OriginContentSize
and OriginDuration describe the server's answer (absent when the proxy answered itself);
DownstreamStatus and DownstreamContentSize what the client got; RetryAttempts the retries of a retry
middleware; ClientUsername the user basicAuth or digestAuth accepted. The exchange's route carries
its router's observability settings (``accessLogs: false`` leaves it out) and the Kubernetes Ingress it
comes from (KubernetesIngressNamespace...).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from ..http.request import HttpRequest
from ..routing.services import Target
from ..routing.table import Route
from .accesslog import AccessLogWriter, AccessRecord

__all__ = ["LoggedExchange", "FastLogged", "log_exchange", "log_fast", "tls_details"]

# OpenSSL cipher names -> Go's (TLS 1.3 names are the same in both)
_GO_CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-SHA": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "ECDHE-RSA-AES128-SHA": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "ECDHE-ECDSA-AES256-SHA": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "ECDHE-RSA-AES256-SHA": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
}


class _Client(Protocol):
    entrypoint: str
    peer: str
    peer_port: int

    @property
    def transport(self) -> asyncio.Transport: ...


class LoggedExchange(Protocol):
    """What an exchange keeps for its access-log record (``Exchange`` fills it when logging is on)."""

    req: HttpRequest
    route: Route
    service_name: str
    status: int
    t0: float
    uri0: str
    req_bytes: int
    resp_bytes: int
    origin_status: int
    origin_size: int
    origin_duration: float
    origin_headers: list[tuple[str, str]]
    resp_headers: list[tuple[str, str]]
    retries: int

    @property
    def client(self) -> _Client: ...

    @property
    def chosen(self) -> Target | None: ...


class FastLogged(Protocol):
    """What a fast-lane exchange keeps (proxy/fastlane.py): a GET without body or middlewares."""

    route: Route
    target: Target
    url: bytes
    headers: list[tuple[bytes, bytes]]
    status: int
    t0: float

    @property
    def client(self) -> _Client: ...


def tls_details(transport: asyncio.BaseTransport) -> tuple[str, str, str]:
    """(TLSVersion "1.3", TLSCipher in Go's naming, TLSClientSubject) of a TLS connection."""
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None:
        return "", "", ""
    version = (sslobj.version() or "").removeprefix("TLSv")
    cipher = (sslobj.cipher() or ("",))[0]
    subject = ""
    peer = sslobj.getpeercert()
    if peer:
        parts = [f"{k}={v}" for rdn in reversed(peer.get("subject", ())) for k, v in rdn]
        subject = ",".join(parts).replace("commonName=", "CN=").replace("organizationName=", "O=")
    return version, _GO_CIPHERS.get(cipher, cipher), subject


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def log_exchange(writer: AccessLogWriter, ex: LoggedExchange, now: float) -> None:
    """Write ``ex``'s record (``now``: the loop's clock at the end of the exchange)."""
    route = ex.route
    if not route.access_log:
        return
    req = ex.req
    client = ex.client
    target = ex.chosen
    duration = now - ex.t0
    tls = tls_details(client.transport) if req.tls else ("", "", "")
    writer.log(AccessRecord(
        start=time.time() - duration, duration=duration, client_addr=_addr(client.peer, client.peer_port),
        entrypoint=client.entrypoint, router=route.log_name or route.name, service=ex.service_name,
        service_url=target.url if target is not None and ex.origin_status else "",
        service_addr=target.addr if target is not None and ex.origin_status else "",
        request_addr=req.authority, method=req.method, path=ex.uri0, protocol="HTTP/" + req.version,
        scheme="https" if req.tls else "http", request_size=ex.req_bytes, status=ex.status,
        response_size=ex.resp_bytes, origin_status=ex.origin_status, origin_size=ex.origin_size,
        origin_duration=ex.origin_duration, retry_attempts=ex.retries, username=req.user,
        forwarded_for=req.header("x-forwarded-for"), tls_version=tls[0], tls_cipher=tls[1], tls_client_subject=tls[2],
        request_headers=req.headers, origin_headers=ex.origin_headers, downstream_headers=ex.resp_headers,
        extra=route.log_fields))


def log_fast(writer: AccessLogWriter, ex: FastLogged, size: int, now: float) -> None:
    """The record of a fast-lane exchange; its route needs no headers in its records (else no fast lane)."""
    client = ex.client
    route = ex.route
    target = ex.target
    duration = now - ex.t0
    host = next((v for k, v in ex.headers if k.lower() == b"host"), b"").decode("latin-1")
    tls = tls_details(client.transport) if route.tls else ("", "", "")
    writer.log(AccessRecord(
        start=time.time() - duration, duration=duration, client_addr=_addr(client.peer, client.peer_port),
        entrypoint=client.entrypoint, router=route.name, service=route.service.name, service_url=target.url,
        service_addr=target.addr, request_addr=host, method="GET", path=ex.url.decode("latin-1"),
        protocol="HTTP/1.1", scheme="https" if route.tls else "http", status=ex.status, response_size=size,
        origin_status=ex.status, origin_size=size, origin_duration=duration, tls_version=tls[0], tls_cipher=tls[1],
        tls_client_subject=tls[2], extra=route.log_fields))
