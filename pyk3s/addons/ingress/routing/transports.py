"""ServersTransports: how the proxy reaches a load balancer's servers (Traefik pkg/server/service/transport.go).

    serverName          SNI sent to the server and the name its certificate must carry
    insecureSkipVerify  do not verify the server's certificate
    rootCAs             the only CAs trusted for servers (default: the system's)
    certificates        client certificate and key for mTLS (the first one is presented)
    cipherSuites, minVersion, maxVersion    TLS 1.2 suites (Go names) and protocol versions
    maxIdleConnsPerHost idle keep-alive connections kept per server (0: Go's default of 2; <0: none)
    forwardingTimeouts  dialTimeout (30s), responseHeaderTimeout (none), idleConnTimeout (90s),
                        readIdleTimeout (none) and pingTimeout (15s): an HTTP/2 connection to a server
                        (h2c or https+h2) from which no frame came for readIdleTimeout gets a PING; no
                        ACK within pingTimeout and the connection is closed as lost (Go's http2 health
                        check: its streams fail, the next request dials a new connection)
    disableHTTP2        offer only http/1.1 to https servers (by default ALPN offers h2 and http/1.1;
                        h2c servers always get HTTP/2)
    peerCertURI, peerCertSANs   SANs the server certificate must carry (checked after the handshake,
                        the chain being verified against rootCAs even with insecureSkipVerify)

Servers' certificates are verified by default, as in Traefik: against the system CAs, and against the
server's address when no serverName is set (an IP address is matched with the certificate's IP SANs).
The static ``--serversTransport.*`` flags make ``default@internal``, used by load balancers that name
no transport. What pyk3s cannot honour is a warning on the services using the transport (``spiffe``),
and a transport that cannot be built falls back to the default TLS settings with its error shown, as
Traefik does.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile

from ..config.dynamic import Certificate, ForwardingTimeouts, ServersTransport, to_json

__all__ = ["ServersTransportRuntime", "build_transport", "DEFAULT_TRANSPORT", "GO_DEFAULT_IDLE", "STATIC_DEFAULT_IDLE",
           "PING_TIMEOUT", "match_peer_sans"]

DEFAULT_TRANSPORT = "default@internal"
GO_DEFAULT_IDLE = 2  # net/http DefaultMaxIdleConnsPerHost, for a ServersTransport without maxIdleConnsPerHost
STATIC_DEFAULT_IDLE = 200  # Traefik's static serversTransport default
PING_TIMEOUT = 15.0  # x/net/http2's default wait for a health-check PING's ACK

_VERSIONS = {"VersionTLS10": ssl.TLSVersion.TLSv1, "VersionTLS11": ssl.TLSVersion.TLSv1_1,
             "VersionTLS12": ssl.TLSVersion.TLSv1_2, "VersionTLS13": ssl.TLSVersion.TLSv1_3}
# Go cipher suite names -> OpenSSL names (TLS 1.2; TLS 1.3 suites are not configurable, as in Go)
_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
_SAN_TYPES = {"DNSName": "DNS", "URI": "URI", "IPAddress": "IP Address", "EmailAddress": "email"}
_idents: dict[str, int] = {}


class ServersTransportRuntime:
    """A compiled ServersTransport; ``ident`` is the same for equal configurations, so connection
    pools (keyed by it) survive reloads that do not change the transport."""

    __slots__ = ("name", "ident", "ssl_context", "h2_ssl_context", "server_name", "dial_timeout",
                 "response_header_timeout", "idle_timeout", "read_idle_timeout", "ping_timeout", "max_idle",
                 "peer_sans")

    def __init__(self, name: str, config: ServersTransport, ssl_context: ssl.SSLContext,
                 peer_sans: tuple[tuple[str, str], ...], max_idle: int,
                 h2_ssl_context: ssl.SSLContext | None = None) -> None:
        timeouts = config.forwarding_timeouts or ForwardingTimeouts()
        self.name = name
        self.ident = _idents.setdefault(json.dumps(to_json(config), sort_keys=True), len(_idents) + 1)
        self.ssl_context = ssl_context  # ALPN http/1.1: the HTTP/1.1 pools (and every Upgrade)
        self.h2_ssl_context = h2_ssl_context  # ALPN h2, http/1.1: the HTTP/2 pools; None with disableHTTP2
        self.server_name = config.server_name
        self.dial_timeout = timeouts.dial_timeout or None  # 0: no timeout
        self.response_header_timeout = timeouts.response_header_timeout
        self.idle_timeout = timeouts.idle_conn_timeout
        self.read_idle_timeout = timeouts.read_idle_timeout  # 0: no HTTP/2 health-check pings
        self.ping_timeout = timeouts.ping_timeout or PING_TIMEOUT  # 0 means Go's default, as in x/net/http2
        self.max_idle = max_idle
        self.peer_sans = peer_sans


def _client_certificate(ctx: ssl.SSLContext, cert: Certificate) -> None:
    with tempfile.TemporaryDirectory(prefix="pk-st-") as tmp:
        path = os.path.join(tmp, "client.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(cert.cert_pem.strip() + "\n" + cert.key_pem.strip() + "\n")
        ctx.load_cert_chain(path)


def _tls_context(cfg: ServersTransport, peer_sans: tuple[tuple[str, str], ...],
                 alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """The client context offering ``alpn``; ValueError (Traefik's message) when a setting is invalid."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cfg.root_cas:
        ctx.load_verify_locations(cadata="\n".join(ca.strip() for ca in cfg.root_cas) + "\n")
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if cfg.insecure_skip_verify:
        ctx.check_hostname = False
        # Traefik still verifies the chain when peer SANs are required (VerifyPeerCertificate)
        ctx.verify_mode = ssl.CERT_REQUIRED if peer_sans else ssl.CERT_NONE
    elif peer_sans:
        ctx.check_hostname = False  # the SANs to match are the configured ones, not the server's name
    suites = []
    for name in cfg.cipher_suites:
        if name in _CIPHERS:
            suites.append(_CIPHERS[name])
        elif name not in _TLS13:
            raise ValueError(f"invalid CipherSuite: {name}")
    if suites:
        ctx.set_ciphers(":".join(suites))
    if cfg.min_version:
        if cfg.min_version not in _VERSIONS:
            raise ValueError(f"invalid TLS minimum version: {cfg.min_version}")
        ctx.minimum_version = _VERSIONS[cfg.min_version]
    if cfg.max_version:
        if cfg.max_version not in _VERSIONS:
            raise ValueError(f"invalid TLS maximum version: {cfg.max_version}")
        ctx.maximum_version = _VERSIONS[cfg.max_version]
    if cfg.min_version and cfg.max_version and _VERSIONS[cfg.min_version] > _VERSIONS[cfg.max_version]:
        raise ValueError(f"TLS minimum version {cfg.min_version} is above the maximum version {cfg.max_version}")
    if cfg.certificates:
        _client_certificate(ctx, cfg.certificates[0])
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def build_transport(name: str, cfg: ServersTransport,
                    max_idle_default: int = GO_DEFAULT_IDLE) -> tuple[ServersTransportRuntime, list[str]]:
    """(the compiled transport, warnings for what it does not honour or could not load)."""
    warnings: list[str] = []
    if cfg.error:
        warnings.append(cfg.error)
    if cfg.spiffe is not None:
        warnings.append(f"serversTransport {name}: spiffe is not supported by pyk3s; the default TLS settings are used")
    peer_sans = tuple((_SAN_TYPES.get(t, t), v) for t, v in cfg.peer_cert_sans)
    if cfg.peer_cert_uri:
        peer_sans += (("URI", cfg.peer_cert_uri),)
    try:
        if cfg.spiffe is not None:
            raise ValueError("SPIFFE is enabled for this transport, but not configured")
        ctx = _tls_context(cfg, peer_sans)
        h2_ctx = None if cfg.disable_http2 else _tls_context(cfg, peer_sans, ("h2", "http/1.1"))
    except (ValueError, ssl.SSLError, OSError) as err:
        warnings.append(f"serversTransport {name}: could not configure TLS ({err}); the default TLS settings are used")
        ctx = _tls_context(ServersTransport(), ())
        h2_ctx = None if cfg.disable_http2 else _tls_context(ServersTransport(), (), ("h2", "http/1.1"))
        peer_sans = ()
    max_idle = cfg.max_idle_conns_per_host or max_idle_default
    return ServersTransportRuntime(name, cfg, ctx, peer_sans, max_idle, h2_ctx), warnings


def match_peer_sans(peercert: dict[str, object] | None, wanted: tuple[tuple[str, str], ...]) -> bool:
    """Whether the server certificate (``SSLObject.getpeercert()``) carries one of the wanted SANs."""
    if not wanted:
        return True
    sans = set()
    for entry in (peercert or {}).get("subjectAltName", ()) or ():  # type: ignore[attr-defined]
        if isinstance(entry, tuple) and len(entry) == 2:
            sans.add((str(entry[0]), str(entry[1])))
    return any(w in sans for w in wanted)
