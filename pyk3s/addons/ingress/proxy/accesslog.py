"""Access logs with Traefik's field names (Traefik pkg/middlewares/accesslog), for HTTP and TCP.

Interface (what the HTTP exchanges and the TCP/UDP relays call)::

    from pyk3s.addons.ingress.proxy import accesslog
    if accesslog.active() is not None:          # off: build nothing
        accesslog.log(AccessRecord(start=..., duration=..., client_addr="10.0.0.1:5555", ...))

:class:`AccessRecord` is one finished request or connection. Its fields map one to one to Traefik's
keys (``ClientAddr``, ``RouterName``, ``DownstreamStatus``...); :meth:`AccessRecord.fields` gives the
whole table. A TCP connection fills what it knows: ``protocol="TCP"`` (``"UDP"`` for a UDP session),
``scheme`` ``"tcp"`` or ``"tls"``, ``request_addr`` the SNI, ``request_size`` the bytes from the
client, ``response_size`` the bytes to it, ``status`` 0 (written ``-`` in the common format).

Formats (``--accesslog.format``): ``common`` (Traefik's extended CLF), ``genericCLF`` and ``json``
(every kept field, keys sorted as Go's encoder does, durations in nanoseconds, plus ``level``,
``msg``, ``time``). Filters (``--accesslog.filters.*``): a record is kept when its status is in
``statusCodes``, or it was retried and ``retryAttempts`` is set, or it lasted longer than
``minDuration``; with no filter set everything is kept. Fields (``--accesslog.fields.*``): every core
field is kept or dropped by ``defaultMode`` and ``names``; headers (``request_<Name>``,
``origin_<Name>``, ``downstream_<Name>``) are kept, dropped (default) or redacted by
``headers.defaultMode`` and ``headers.names``; ``queryParameters.defaultMode=drop`` strips the query
from ``RequestPath``.

Lines written during one turn of the event loop go out in one ``write`` (``O_APPEND``, so worker
processes sharing the file never interleave within a line).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from ..config.codes import status_ranges
from ..config.observability import AccessLogOptions

__all__ = [
    "AccessRecord", "AccessLogWriter", "log", "active", "install", "CORE_FIELDS", "status_ranges",
]

Headers = Sequence[tuple[str, str]]

# Traefik's defaultCoreKeys (logdata.go): the fields ``fields.names`` may keep or drop
CORE_FIELDS = (
    "StartUTC", "Duration", "RouterName", "ServiceAddr", "ServiceName", "ServiceURL", "ClientAddr", "ClientHost",
    "ClientPort", "ClientUsername", "GzipRatio", "StartLocal", "Overhead", "RetryAttempts", "TLSVersion",
    "TLSCipher", "TLSClientSubject", "RequestAddr", "RequestHost", "RequestPort", "RequestMethod", "RequestPath",
    "RequestProtocol", "RequestScheme", "RequestContentSize", "OriginDuration", "OriginContentSize",
    "OriginStatus", "DownstreamStatus", "DownstreamContentSize", "RequestCount", "entryPointName",
)


_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


class AccessRecord(NamedTuple):
    """One finished HTTP request or TCP/UDP connection, immutable (a named tuple: cheap to build on the
    request path). Times are seconds (``start``: ``time.time()``)."""

    start: float
    duration: float
    client_addr: str  # ClientAddr, "ip:port" ("[v6]:port")
    entrypoint: str = ""  # entryPointName
    router: str = ""  # RouterName
    service: str = ""  # ServiceName
    service_url: str = ""  # ServiceURL
    service_addr: str = ""  # ServiceAddr, "ip:port" of the backend
    request_addr: str = ""  # RequestAddr: the Host header (HTTP), the SNI (TCP)
    method: str = ""  # RequestMethod
    path: str = ""  # RequestPath, with the query
    protocol: str = ""  # RequestProtocol: "HTTP/1.1", "TCP", "UDP"
    scheme: str = ""  # RequestScheme: "http", "https", "tcp", "tls", "udp"
    request_size: int = 0  # RequestContentSize: body bytes (HTTP), bytes from the client (TCP)
    status: int = 0  # DownstreamStatus; 0 for TCP/UDP
    response_size: int = 0  # DownstreamContentSize: body bytes (HTTP), bytes to the client (TCP)
    origin_status: int = 0  # OriginStatus (0: answered by the proxy itself)
    origin_size: int = 0  # OriginContentSize
    origin_duration: float = 0.0  # OriginDuration
    retry_attempts: int = 0  # RetryAttempts
    username: str = ""  # ClientUsername
    forwarded_for: str = ""  # X-Forwarded-For as received (Traefik writes it as ClientHost)
    tls_version: str = ""  # TLSVersion, "1.3"
    tls_cipher: str = ""  # TLSCipher, Go's name
    tls_client_subject: str = ""  # TLSClientSubject
    request_headers: Headers = ()
    origin_headers: Headers = ()
    downstream_headers: Headers = ()
    request_count: int = 0  # RequestCount (the writer numbers records when 0)
    extra: Mapping[str, Any] = _NO_EXTRA  # more Traefik keys, e.g. KubernetesIngressName

    def fields(self, keep_query: bool = True, count: int = 0) -> dict[str, Any]:
        """Traefik's core fields; durations in seconds (the formats convert them); ``count`` numbers the
        record when it carries no RequestCount of its own."""
        host, port = _split_host_port(self.client_addr)
        out: dict[str, Any] = {
            "StartUTC": self.start, "StartLocal": self.start, "Duration": self.duration,
            "ClientAddr": self.client_addr, "ClientHost": self.forwarded_for or host, "ClientPort": port,
            "ClientUsername": self.username or "-", "RetryAttempts": self.retry_attempts,
            "RequestContentSize": self.request_size, "DownstreamStatus": self.status,
            "DownstreamContentSize": self.response_size, "OriginDuration": self.origin_duration,
            "OriginContentSize": self.origin_size, "OriginStatus": self.origin_status,
            "Overhead": max(self.duration - self.origin_duration, 0.0),
            "RequestCount": self.request_count or count,
        }
        if self.entrypoint:
            out["entryPointName"] = self.entrypoint
        if self.router:
            out["RouterName"] = self.router
        if self.service:
            out["ServiceName"] = self.service
        if self.service_url:
            out["ServiceURL"] = self.service_url
        if self.service_addr:
            out["ServiceAddr"] = self.service_addr
        if self.request_addr:
            out["RequestAddr"] = self.request_addr
            out["RequestHost"], out["RequestPort"] = _split_host_port(self.request_addr)
        if self.method:
            out["RequestMethod"] = self.method
        if self.path:
            out["RequestPath"] = self.path if keep_query else self.path.split("?", 1)[0]
        if self.protocol:
            out["RequestProtocol"] = self.protocol
        if self.scheme:
            out["RequestScheme"] = self.scheme
        if self.tls_version:
            out["TLSVersion"] = self.tls_version
            out["TLSCipher"] = self.tls_cipher
        if self.tls_client_subject:
            out["TLSClientSubject"] = self.tls_client_subject
        if self.origin_size and self.response_size and self.origin_size != self.response_size:
            out["GzipRatio"] = self.origin_size / self.response_size
        out.update(self.extra)
        return out


def _split_host_port(value: str) -> tuple[str, str]:
    """Go's net.SplitHostPort, with Traefik's fallback (the value itself and "-")."""
    if value.startswith("["):
        end = value.find("]")
        if end > 0 and value[end + 1:end + 2] == ":":
            return value[1:end], value[end + 2:]
        return value, "-"
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, "-"


_CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"
QUOTED_DASH = '"-"'


_CLF_STAMP: list[tuple[int, str]] = [(-1, "")]  # the last second formatted (records come in bursts)


def _clf_time(start: float) -> str:
    second = int(start)
    cached = _CLF_STAMP[0]
    if cached[0] == second:
        return cached[1]
    text = time.strftime(_CLF_TIME, time.gmtime(second))
    _CLF_STAMP[0] = (second, text)
    return text


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"' if value else QUOTED_DASH


def _value(fields: Mapping[str, Any], key: str, default: str, quoted: bool) -> str:
    """Traefik's toLog: strings empty -> default, quoted with \\" escaped; other values as they are."""
    if key not in fields or fields[key] is None:
        return default
    v = fields[key]
    if isinstance(v, str):
        if not v:
            return default
        return '"' + v.replace('"', '\\"') + '"' if quoted else v
    if key == "DownstreamStatus" and v == 0:
        return default  # a TCP/UDP connection has no status
    return str(v)


def format_common(fields: Mapping[str, Any], generic: bool = False) -> str:
    """One line of Traefik's common (or generic CLF) format."""
    stamp = _clf_time(fields["StartUTC"]) if "StartUTC" in fields else (
        time.strftime(_CLF_TIME, time.localtime(fields["StartLocal"])) if "StartLocal" in fields else "-")
    v = _value
    line = (f'{v(fields, "ClientHost", "-", False)} - {v(fields, "ClientUsername", "-", False)} [{stamp}] '
            f'"{v(fields, "RequestMethod", "-", False)} {v(fields, "RequestPath", "-", False)} '
            f'{v(fields, "RequestProtocol", "-", False)}" {v(fields, "DownstreamStatus", "-", True)} '
            f'{v(fields, "DownstreamContentSize", "-", True)} {v(fields, "request_Referer", QUOTED_DASH, True)} '
            f'{v(fields, "request_User-Agent", QUOTED_DASH, True)}')
    if generic:
        return line + "\n"
    millis = int(fields.get("Duration", 0.0) * 1000)
    return (f'{line} {v(fields, "RequestCount", "-", True)} {v(fields, "RouterName", QUOTED_DASH, True)} '
            f'{v(fields, "ServiceURL", QUOTED_DASH, True)} {millis}ms\n')


def _rfc3339(ts: float, local: bool, nano: bool) -> str:
    tm = time.localtime(ts) if local else time.gmtime(ts)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
    if nano:
        frac = f"{ts % 1:.9f}"[1:].rstrip("0").rstrip(".")
        base += frac
    off = tm.tm_gmtoff if local else 0
    if not off:
        return base + "Z"
    sign = "+" if off > 0 else "-"
    off = abs(off)
    return f"{base}{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"


_DURATIONS = ("Duration", "OriginDuration", "Overhead")


def format_json(fields: Mapping[str, Any], now: float) -> str:
    """One line of the json format: logrus's JSON of the fields, Go types kept (ns durations, RFC 3339 times)."""
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if k in _DURATIONS:
            out[k] = int(round(v * 1e9))
        elif k == "StartUTC":
            out[k] = _rfc3339(v, False, True)
        elif k == "StartLocal":
            out[k] = _rfc3339(v, True, True)
        else:
            out[k] = v
    out["level"] = "info"
    out["msg"] = ""
    out["time"] = _rfc3339(now, True, False)
    return json.dumps(out, sort_keys=True, separators=(",", ":")) + "\n"


class AccessLogWriter:
    """Formats, filters and writes records for one process."""

    __slots__ = ("options", "fd", "pending", "flush_handle", "count", "ranges", "names", "header_names",
                 "keep_query", "filtered", "owns_fd", "all_fields", "any_header")

    def __init__(self, options: AccessLogOptions, fd: int | None = None) -> None:
        self.options = options
        self.owns_fd = fd is None and bool(options.file_path)
        if fd is not None:
            self.fd = fd
        elif options.file_path:
            directory = os.path.dirname(options.file_path)
            if directory:
                os.makedirs(directory, 0o755, exist_ok=True)
            self.fd = os.open(options.file_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o664)
        else:
            self.fd = sys.stdout.fileno()
        self.pending: list[str] = []
        self.flush_handle: asyncio.Handle | None = None
        self.count = 0
        self.ranges = status_ranges(options.status_codes)
        self.names = {k.lower(): v for k, v in options.field_names.items()}
        self.header_names = {_canonical(k): v for k, v in options.header_names.items()}
        self.keep_query = options.query_parameters_mode != "drop"
        self.filtered = bool(self.ranges or options.retry_attempts or options.min_duration > 0)
        # the usual settings need no per-field or per-header work: every field kept, every header dropped
        self.all_fields = options.fields_default_mode != "drop" and all(v != "drop" for v in self.names.values())
        self.any_header = options.headers_default_mode != "drop" or any(v != "drop" for v in self.header_names.values())

    # -- filters (Traefik keepAccessLog)
    def keeps(self, record: AccessRecord) -> bool:
        if not self.filtered:
            return True
        status = record.status
        for low, high in self.ranges:
            if low <= status <= high:
                return True
        if self.options.retry_attempts and record.retry_attempts > 0:
            return True
        return self.options.min_duration > 0 and record.duration > self.options.min_duration

    # -- fields (Traefik AccessLogFields.Keep / KeepHeader)
    def _keep_field(self, name: str) -> bool:
        default = self.options.fields_default_mode != "drop"
        mode = self.names.get(name.lower())
        if mode == "keep":
            return True
        if mode == "drop":
            return False
        return default

    def _headers(self, out: dict[str, Any], headers: Headers, prefix: str) -> None:
        default = self.options.headers_default_mode
        names = self.header_names
        joined: dict[str, list[str]] = {}
        for k, v in headers:
            name = _canonical(k)
            if default == "drop" and name not in names:
                continue
            joined.setdefault(name, []).append(v)
        for name, values in joined.items():
            mode = self.header_names.get(name, default)
            if mode == "keep":
                out[prefix + name] = ",".join(values)
            elif mode == "redact":
                out[prefix + name] = "REDACTED"

    def _header(self, headers: Headers, name: str) -> str:
        """A request header as the common format shows it: its values when its mode keeps it."""
        mode = self.header_names.get(name, self.options.headers_default_mode)
        if mode == "drop":
            return ""
        values = [v for k, v in headers if _canonical(k) == name]
        if not values:
            return ""
        return "REDACTED" if mode == "redact" else ",".join(values)

    def _common(self, r: AccessRecord, count: int) -> str:
        """The common (or generic CLF) line straight from the record: no field is dropped."""
        host, _ = _split_host_port(r.client_addr)
        path = r.path if self.keep_query else r.path.split("?", 1)[0]
        line = (f'{r.forwarded_for or host or "-"} - {r.username or "-"} [{_clf_time(r.start)}] '
                f'"{r.method or "-"} {path or "-"} {r.protocol or "-"}" {r.status or "-"} {r.response_size} '
                f'{_quoted(self._header(r.request_headers, "Referer"))} '
                f'{_quoted(self._header(r.request_headers, "User-Agent"))}')
        if self.options.format == "genericCLF":
            return line + "\n"
        return (f"{line} {r.request_count or count} {_quoted(r.router)} {_quoted(r.service_url)} "
                f"{int(r.duration * 1000)}ms\n")

    def render(self, record: AccessRecord, count: int = 0, now: float | None = None) -> str:
        """The line for a record, whatever the filters say."""
        if self.all_fields and self.options.format != "json":
            return self._common(record, count)
        core = record.fields(self.keep_query, count)
        out = core if self.all_fields else {k: v for k, v in core.items() if self._keep_field(k)}
        if self.any_header:
            self._headers(out, record.request_headers, "request_")
            self._headers(out, record.origin_headers, "origin_")
            self._headers(out, record.downstream_headers, "downstream_")
        fmt = self.options.format
        if fmt == "json":
            return format_json(out, time.time() if now is None else now)
        return format_common(out, generic=fmt == "genericCLF")

    def log(self, record: AccessRecord) -> None:
        self.count += 1
        if not self.keeps(record):
            return
        self.pending.append(self.render(record, self.count))
        if self.flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self.flush_handle = loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_handle = None
        if not self.pending:
            return
        data = "".join(self.pending).encode("utf-8", "replace")
        self.pending = []
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except BlockingIOError:
            pass  # a full pipe on stdout: the lines are dropped rather than stalling the proxy
        except OSError as err:
            print(f"traefik: access log: {err}", file=sys.stderr)

    def close(self) -> None:
        self.flush()
        if self.owns_fd:
            os.close(self.fd)


_CANONICAL: dict[str, str] = {}


def _canonical(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey (remembered: the same few names come back)."""
    found = _CANONICAL.get(name)
    if found is None:
        found = "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))
        if len(_CANONICAL) < 4096:
            _CANONICAL[name] = found
    return found


_ACTIVE: list[AccessLogWriter | None] = [None]


def install(writer: AccessLogWriter | None) -> None:
    """Make ``writer`` this process's access log (None: off)."""
    old = _ACTIVE[0]
    if old is not None and old is not writer:
        old.close()
    _ACTIVE[0] = writer


def active() -> AccessLogWriter | None:
    """This process's access log, or None when access logs are off."""
    return _ACTIVE[0]


def log(record: AccessRecord) -> None:
    """Write one record to this process's access log (nothing when access logs are off)."""
    writer = _ACTIVE[0]
    if writer is not None:
        writer.log(record)
