"""Dialing a TCP server as its transport says (Traefik pkg/tcp/dialer.go): dial timeout, TCP keep-alive,
a PROXY protocol header first, TLS to the server.

:class:`Dial` connects without a coroutine (non-blocking ``connect`` and one writability callback),
which is what the kernel relay uses. :func:`client_context` builds (once per configuration) the TLS
context a TCP service uses towards servers dialed with ``tls: true``: the transport's root CAs (else
the system's), client certificates for mTLS, ``serverName`` (SNI and the name verified),
``insecureSkipVerify``; ``peerCertURI``/``peerCertSANs`` are checked by :func:`check_peer` after the
handshake. As in Go, a handshake needs ``serverName`` or ``insecureSkipVerify``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import tempfile
from collections.abc import Callable

from cryptography import x509

from ..config.dynamic_tcp import TLSClientConfig
from ..routing.tcp_services import TCPDial
from .proxyprotocol import build_header

__all__ = ["Dial", "client_context", "check_peer", "new_backend_socket", "set_keep_alive", "keep_alive_period",
           "MISSING_SERVER_NAME"]

MISSING_SERVER_NAME = "tls: either ServerName or InsecureSkipVerify must be specified in the tls.Config"


def keep_alive_period(target: TCPDial) -> int:
    """Seconds between TCP keep-alive probes (Go's dialer: 15 by default), 0 when switched off."""
    return max(1, int(target.keep_alive or 15)) if target.keep_alive >= 0 else 0


def set_keep_alive(sock: socket.socket, period: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, period)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, period)


def new_backend_socket(target: TCPDial, ip: str, keep_alive: bool = True) -> socket.socket:
    """A non-blocking socket for ``ip`` with TCP_NODELAY and (unless the caller sets it later with
    :func:`set_keep_alive`) the transport's keep-alive."""
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if keep_alive and target.keep_alive >= 0:
        set_keep_alive(sock, keep_alive_period(target))
    return sock


class Dial:
    """Connect to ``target``; then ``done(sock, None)`` or ``done(None, error)``, once. Names (an
    ExternalName server) are resolved in a thread first."""

    __slots__ = ("loop", "target", "sock", "done", "timer", "header", "finished")

    def __init__(self, loop: asyncio.AbstractEventLoop, target: TCPDial, header: bytes,
                 done: Callable[[socket.socket | None, OSError | None], None]) -> None:
        self.loop, self.target, self.done, self.header = loop, target, done, header
        self.sock: socket.socket | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.finished = False
        if target.dial_timeout > 0:
            self.timer = loop.call_later(target.dial_timeout, self._timeout)
        if target.is_ip:
            self._connect((target.host, target.port))
        else:
            loop.create_task(self._resolve())

    async def _resolve(self) -> None:
        try:
            infos = await self.loop.getaddrinfo(self.target.host, self.target.port, type=socket.SOCK_STREAM)
        except OSError as err:
            self._end(None, err)
            return
        if not self.finished:
            self._connect(infos[0][4][:2])  # type: ignore[arg-type]

    def _connect(self, addr: tuple[str, int]) -> None:
        try:
            sock = self.sock = new_backend_socket(self.target, addr[0])
            err = sock.connect_ex(addr)
        except OSError as e:
            self._end(None, e)
            return
        if err == 0:
            self._connected_now()
        elif err == errno.EINPROGRESS:
            self.loop.add_writer(sock.fileno(), self._writable)
        else:
            self._end(None, OSError(err, os.strerror(err)))

    def _writable(self) -> None:
        sock = self.sock
        assert sock is not None
        self.loop.remove_writer(sock.fileno())
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._end(None, OSError(err, os.strerror(err)))
            return
        self._connected_now()

    def _connected_now(self) -> None:
        sock = self.sock
        assert sock is not None
        if self.header:
            try:
                sent = sock.send(self.header)
            except OSError as err:
                self._end(None, err)
                return
            if sent != len(self.header):  # a fresh socket's buffer always takes ~100 bytes
                self._end(None, OSError(errno.EAGAIN, "PROXY header not written at once"))
                return
        self._end(sock, None)

    def _timeout(self) -> None:
        self.timer = None
        if self.sock is not None and not self.finished:
            self.loop.remove_writer(self.sock.fileno())
        self._end(None, TimeoutError(errno.ETIMEDOUT, f"dial tcp {self.target.address}: i/o timeout"))

    def _end(self, sock: socket.socket | None, err: OSError | None) -> None:
        if self.finished:
            return
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        if sock is None and self.sock is not None:
            self.sock.close()
        self.done(sock, err)


def proxy_header(target: TCPDial, client: tuple[str, int], local: tuple[str, int]) -> bytes:
    return build_header(target.proxy_protocol, client, local) if target.proxy_protocol else b""


_CONTEXTS: dict[TLSClientConfig, ssl.SSLContext] = {}


def client_context(cfg: TLSClientConfig) -> ssl.SSLContext:
    """The TLS context for servers dialed with TLS (ValueError for a configuration that cannot work)."""
    ctx = _CONTEXTS.get(cfg)
    if ctx is not None:
        return ctx
    if not cfg.server_name and not cfg.insecure_skip_verify:
        raise ValueError(MISSING_SERVER_NAME)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cfg.root_cas:
        try:
            ctx.load_verify_locations(cadata="\n".join(c.strip() for c in cfg.root_cas) + "\n")
        except ssl.SSLError as err:
            raise ValueError(f"rootCAs: {err}") from None
    else:
        ctx.load_default_certs()
    for cert, key in cfg.certificates:
        with tempfile.TemporaryDirectory(prefix="pk-tls-") as tmp:
            path = os.path.join(tmp, "client.pem")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(cert.strip() + "\n" + key.strip() + "\n")
            try:
                ctx.load_cert_chain(path)
            except ssl.SSLError as err:
                raise ValueError(f"certificates: {err}") from None
    _CONTEXTS[cfg] = ctx
    return ctx


def check_peer(cfg: TLSClientConfig, der: bytes | None) -> str:
    """'' when the server certificate carries the SANs the transport asks for, else why not."""
    wanted = list(cfg.peer_cert_sans)
    if cfg.peer_cert_uri:
        wanted.append(("URI", cfg.peer_cert_uri))
    if not wanted:
        return ""
    if der is None:
        return "no peer certificate"
    try:
        san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return "peer certificate has no SAN"
    dns = set(san.get_values_for_type(x509.DNSName))
    uris = set(san.get_values_for_type(x509.UniformResourceIdentifier))
    for kind, value in wanted:
        if (kind == "URI" and value in uris) or (kind == "DNSName" and value in dns):
            return ""
    return f"peer certificate does not match any of the SANs {[v for _, v in wanted]}"
