"""Prometheus metrics with Traefik's names and labels (Traefik pkg/observability/metrics/prometheus.go).

    traefik_config_reloads_total, traefik_config_last_reload_success
    traefik_open_connections{entrypoint,protocol}
    traefik_entrypoint_requests_total{code,method,protocol,entrypoint}            (addEntryPointsLabels, on)
    traefik_entrypoint_request_duration_seconds{code,method,protocol,entrypoint}  (histogram)
    traefik_entrypoint_requests_bytes_total / _responses_bytes_total{code,method,protocol,entrypoint}
    traefik_entrypoint_requests_tls_total{tls_version,tls_cipher,entrypoint}
    traefik_router_*{code,method,protocol,router,service}, traefik_router_requests_tls_total{...,router,service}
                                                                                  (addRoutersLabels, off)
    traefik_service_*{code,method,protocol,service}, traefik_service_requests_tls_total{...,service},
    traefik_service_retries_total{service}, traefik_service_server_up{service,url} (addServicesLabels, on)

Buckets default to 0.1, 0.3, 1.2, 5 (``--metrics.prometheus.buckets``). ``protocol`` is ``http``
(``websocket`` for upgrades, as Traefik labels them). Every family is a table in :data:`FAMILIES`;
a worker counts into plain dicts keyed by (family, label values) and sends a snapshot to the
supervisor, which adds the workers' up and renders the text format. Other parts of the proxy (TCP
entry points) add a family to FAMILIES and call :meth:`ProxyMetrics.add` / :meth:`ProxyMetrics.set`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypedDict

from ..config.observability import PrometheusOptions

__all__ = ["ProxyMetrics", "MetricsSnapshot", "render", "BUCKETS", "FAMILIES", "Family"]

BUCKETS = (0.1, 0.3, 1.2, 5.0)

_HTTP = ("code", "method", "protocol")


@dataclass(frozen=True, slots=True)
class Family:
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...]


FAMILIES: dict[str, Family] = {
    "traefik_config_reloads_total": Family("counter", "Config reloads", ()),
    "traefik_config_last_reload_success": Family("gauge", "Last config reload success", ()),
    "traefik_open_connections": Family("gauge", "How many open connections exist, by entryPoint and protocol",
                                       ("entrypoint", "protocol")),
    "traefik_entrypoint_requests_total": Family(
        "counter", "How many HTTP requests processed on an entrypoint, partitioned by status code, protocol, and method.",
        (*_HTTP, "entrypoint")),
    "traefik_entrypoint_requests_tls_total": Family(
        "counter", "How many HTTP requests with TLS processed on an entrypoint, partitioned by TLS Version and TLS cipher Used.",
        ("tls_version", "tls_cipher", "entrypoint")),
    "traefik_entrypoint_request_duration_seconds": Family(
        "histogram", "How long it took to process the request on an entrypoint, partitioned by status code, protocol, and method.",
        (*_HTTP, "entrypoint")),
    "traefik_entrypoint_requests_bytes_total": Family(
        "counter", "The total size of requests in bytes handled by an entrypoint, partitioned by status code, protocol, and method.",
        (*_HTTP, "entrypoint")),
    "traefik_entrypoint_responses_bytes_total": Family(
        "counter", "The total size of responses in bytes handled by an entrypoint, partitioned by status code, protocol, and method.",
        (*_HTTP, "entrypoint")),
    "traefik_router_requests_total": Family(
        "counter", "How many HTTP requests are processed on a router, partitioned by service, status code, protocol, and method.",
        (*_HTTP, "router", "service")),
    "traefik_router_requests_tls_total": Family(
        "counter", "How many HTTP requests with TLS are processed on a router, partitioned by service, TLS Version, and TLS cipher Used.",
        ("tls_version", "tls_cipher", "router", "service")),
    "traefik_router_request_duration_seconds": Family(
        "histogram", "How long it took to process the request on a router, partitioned by service, status code, protocol, and method.",
        (*_HTTP, "router", "service")),
    "traefik_router_requests_bytes_total": Family(
        "counter", "The total size of requests in bytes handled by a router, partitioned by service, status code, protocol, and method.",
        (*_HTTP, "router", "service")),
    "traefik_router_responses_bytes_total": Family(
        "counter", "The total size of responses in bytes handled by a router, partitioned by service, status code, protocol, and method.",
        (*_HTTP, "router", "service")),
    "traefik_service_requests_total": Family(
        "counter", "How many HTTP requests processed on a service, partitioned by status code, protocol, and method.",
        (*_HTTP, "service")),
    "traefik_service_requests_tls_total": Family(
        "counter", "How many HTTP requests with TLS processed on a service, partitioned by TLS version and TLS cipher.",
        ("tls_version", "tls_cipher", "service")),
    "traefik_service_request_duration_seconds": Family(
        "histogram", "How long it took to process the request on a service, partitioned by status code, protocol, and method.",
        (*_HTTP, "service")),
    "traefik_service_retries_total": Family("counter", "How many request retries happened on a service.", ("service",)),
    "traefik_service_server_up": Family("gauge", "service server is up, described by gauge value of 0 or 1.",
                                        ("service", "url")),
    "traefik_service_requests_bytes_total": Family(
        "counter", "The total size of requests in bytes received by a service, partitioned by status code, protocol, and method.",
        (*_HTTP, "service")),
    "traefik_service_responses_bytes_total": Family(
        "counter", "The total size of responses in bytes returned by a service, partitioned by status code, protocol, and method.",
        (*_HTTP, "service")),
}

Key = tuple[str, tuple[str, ...]]
"""(family, label values in the family's label order)."""


class MetricsSnapshot(TypedDict):
    """A worker's counters as sent to the supervisor."""

    values: dict[Key, float]  # counters and gauges
    histograms: dict[Key, list[float]]  # [count, sum, one count per bucket]
    buckets: tuple[float, ...]


class ProxyMetrics:
    __slots__ = ("values", "histograms", "options", "enabled", "reloads", "last_reload_ok", "last_reload_ts",
                 "open_source")

    def __init__(self, enabled: bool = True, options: PrometheusOptions | None = None) -> None:
        # (entrypoint, "TCP" | "UDP") -> open connections / sessions, read at each snapshot (set by the state)
        self.open_source: Callable[[], dict[tuple[str, str], int]] | None = None
        self.values: dict[Key, float] = {}
        self.histograms: dict[Key, list[float]] = {}
        self.options = options or PrometheusOptions()
        self.enabled = enabled
        self.reloads = 0
        self.last_reload_ok = 0
        self.last_reload_ts = 0.0

    # -- generic
    def add(self, family: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        key = (family, labels)
        self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, family: str, labels: tuple[str, ...], value: float) -> None:
        self.values[(family, labels)] = value

    def _observe(self, family: str, labels: tuple[str, ...], seconds: float, bucket: int) -> None:
        key = (family, labels)
        row = self.histograms.get(key)
        if row is None:
            row = self.histograms[key] = [0.0] * (len(self.options.buckets) + 2)
        row[0] += 1
        row[1] += seconds
        if bucket < len(self.options.buckets):
            row[2 + bucket] += 1

    # -- HTTP requests
    def observe(self, entrypoint: str, service: str, method: str, code: int, tls: bool, seconds: float,
                router: str = "", req_bytes: int = 0, resp_bytes: int = 0, tls_info: tuple[str, str] | None = None,
                protocol: str = "http") -> None:
        """One finished request: the entrypoint, router and service families that are switched on."""
        if not self.enabled:
            return
        opts = self.options
        scode = str(code)
        bucket = bisect.bisect_left(opts.buckets, seconds)
        add = self.add
        labels: tuple[str, ...]
        if opts.entrypoints:
            labels = (scode, method, protocol, entrypoint)
            add("traefik_entrypoint_requests_total", labels)
            self._observe("traefik_entrypoint_request_duration_seconds", labels, seconds, bucket)
            add("traefik_entrypoint_requests_bytes_total", labels, req_bytes)
            add("traefik_entrypoint_responses_bytes_total", labels, resp_bytes)
            if tls and tls_info is not None:
                add("traefik_entrypoint_requests_tls_total", (*tls_info, entrypoint))
        if opts.routers and router:
            labels = (scode, method, protocol, router, service)
            add("traefik_router_requests_total", labels)
            self._observe("traefik_router_request_duration_seconds", labels, seconds, bucket)
            add("traefik_router_requests_bytes_total", labels, req_bytes)
            add("traefik_router_responses_bytes_total", labels, resp_bytes)
            if tls and tls_info is not None:
                add("traefik_router_requests_tls_total", (*tls_info, router, service))
        if opts.services and service:
            labels = (scode, method, protocol, service)
            add("traefik_service_requests_total", labels)
            self._observe("traefik_service_request_duration_seconds", labels, seconds, bucket)
            add("traefik_service_requests_bytes_total", labels, req_bytes)
            add("traefik_service_responses_bytes_total", labels, resp_bytes)
            if tls and tls_info is not None:
                add("traefik_service_requests_tls_total", (*tls_info, service))

    def retried(self, service: str) -> None:
        if self.enabled and self.options.services:
            self.add("traefik_service_retries_total", (service,))

    def servers(self, up: Iterable[tuple[str, str]]) -> None:
        """traefik_service_server_up for the (service, url) of the current configuration (others removed)."""
        if not self.options.services:
            return
        for key in [k for k in self.values if k[0] == "traefik_service_server_up"]:
            del self.values[key]
        for service, url in up:
            self.values[("traefik_service_server_up", (service, url))] = 1.0

    def server_up(self, service: str, url: str, up: bool) -> None:
        """traefik_service_server_up of one server after a health check (1 up, 0 down)."""
        if self.enabled and self.options.services:
            self.values[("traefik_service_server_up", (service, url))] = 1.0 if up else 0.0

    def snapshot(self) -> MetricsSnapshot:
        values = dict(self.values)
        values[("traefik_config_reloads_total", ())] = float(self.reloads)
        # Traefik sets it to the Unix time of the last successful reload
        values[("traefik_config_last_reload_success", ())] = float(int(self.last_reload_ts)) or float(self.last_reload_ok)
        if self.open_source is not None:
            for (entrypoint, protocol), n in self.open_source().items():
                values[("traefik_open_connections", (entrypoint, protocol))] = float(n)
        return {"values": values, "histograms": {k: list(v) for k, v in self.histograms.items()},
                "buckets": self.options.buckets}


_MAX_OF = frozenset(("traefik_config_reloads_total", "traefik_config_last_reload_success", "traefik_service_server_up"))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    pairs = sorted(zip(names, values, strict=True))
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    if extra:
        text = f"{text},{extra}" if text else extra
    return "{" + text + "}" if text else ""


def _le(bound: str) -> str:
    return f'le="{bound}"'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def render(snapshots: Iterable[MetricsSnapshot]) -> bytes:
    """The text exposition format of the workers' counters added up (reloads and gauges: the maximum)."""
    values: dict[Key, float] = {}
    histograms: dict[Key, list[float]] = {}
    buckets: tuple[float, ...] = BUCKETS
    for snap in snapshots:
        buckets = snap["buckets"]
        for key, v in snap["values"].items():
            values[key] = max(values.get(key, v), v) if key[0] in _MAX_OF else values.get(key, 0.0) + v
        for key, row in snap["histograms"].items():
            cur = histograms.get(key)
            histograms[key] = list(row) if cur is None else [a + b for a, b in zip(cur, row, strict=True)]
    out: list[str] = []
    for name, fam in FAMILIES.items():
        if fam.kind == "histogram":
            rows = sorted((k, v) for k, v in histograms.items() if k[0] == name)
            if not rows:
                continue
            out.append(f"# HELP {name} {fam.help}")
            out.append(f"# TYPE {name} histogram")
            for (_, labels), row in rows:
                acc = 0.0
                for i, le in enumerate(buckets):
                    acc += row[2 + i]
                    out.append(f"{name}_bucket{_labels(fam.labels, labels, _le(format(le, 'g')))} {_number(acc)}")
                out.append(f"{name}_bucket{_labels(fam.labels, labels, _le('+Inf'))} {_number(row[0])}")
                out.append(f"{name}_sum{_labels(fam.labels, labels)} {row[1]}")
                out.append(f"{name}_count{_labels(fam.labels, labels)} {_number(row[0])}")
            continue
        series = sorted((k, v) for k, v in values.items() if k[0] == name)
        if not series:
            continue
        out.append(f"# HELP {name} {fam.help}")
        out.append(f"# TYPE {name} {fam.kind}")
        for (_, labels), v in series:
            out.append(f"{name}{_labels(fam.labels, labels)} {_number(v)}")
    return ("\n".join(out) + "\n").encode()
