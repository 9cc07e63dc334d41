"""Prometheus metrics with Traefik's names (spec 7.4 features.metrics; Traefik pkg/metrics/prometheus.go).

    traefik_entrypoint_requests_total{code,method,protocol,entrypoint}
    traefik_entrypoint_request_duration_seconds{code,method,protocol,entrypoint}   (histogram)
    traefik_service_requests_total{code,method,protocol,service}
    traefik_service_request_duration_seconds{code,method,protocol,service}         (histogram)
    traefik_config_reloads_total, traefik_config_last_reload_success, traefik_open_connections{entrypoint,protocol}

Each worker counts in plain dicts (one tuple key per series); workers send their counters to the
supervisor, which adds them up and renders the text format.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import NotRequired, TypedDict

__all__ = ["ProxyMetrics", "MetricsSnapshot", "render", "BUCKETS"]

BUCKETS = (0.1, 0.3, 1.2, 5.0)

Series = dict[tuple[str, str, str, str], list[float]]
"""(code, method, protocol, entrypoint or service) -> [count, sum of seconds, one count per bucket]."""


class MetricsSnapshot(TypedDict):
    """A worker's counters as sent to the supervisor."""

    entry: Series
    service: Series
    reloads: int
    ok: int
    ts: float
    open: NotRequired[dict[tuple[str, str], int]]  # (entrypoint, "TCP" | "UDP") -> open connections / sessions


class ProxyMetrics:
    __slots__ = ("entry", "service", "reloads", "last_reload_ok", "last_reload_ts", "enabled", "open_source")

    def __init__(self, enabled: bool = True) -> None:
        self.open_source: Callable[[], dict[tuple[str, str], int]] | None = None  # set by the proxy state
        self.entry: Series = {}
        self.service: Series = {}
        self.reloads = 0
        self.last_reload_ok = 0
        self.last_reload_ts = 0.0
        self.enabled = enabled

    def observe(self, entrypoint: str, service: str, method: str, code: int, tls: bool, seconds: float) -> None:
        if not self.enabled:
            return
        proto = "https" if tls else "http"
        scode = str(code)
        b = bisect.bisect_left(BUCKETS, seconds)
        key = (scode, method, proto, entrypoint)
        row = self.entry.get(key)
        if row is None:
            row = self.entry[key] = [0.0] * (len(BUCKETS) + 2)
        row[0] += 1
        row[1] += seconds
        if b < len(BUCKETS):
            row[2 + b] += 1
        if service:
            key = (scode, method, proto, service)
            row = self.service.get(key)
            if row is None:
                row = self.service[key] = [0.0] * (len(BUCKETS) + 2)
            row[0] += 1
            row[1] += seconds
            if b < len(BUCKETS):
                row[2 + b] += 1

    def snapshot(self) -> MetricsSnapshot:
        snap: MetricsSnapshot = {"entry": dict(self.entry), "service": dict(self.service), "reloads": self.reloads,
                                 "ok": self.last_reload_ok, "ts": self.last_reload_ts}
        if self.open_source is not None:
            snap["open"] = self.open_source()
        return snap


def _merge(into: Series, rows: Series) -> None:
    for k, v in rows.items():
        cur = into.get(k)
        into[k] = list(v) if cur is None else [a + b for a, b in zip(cur, v, strict=True)]


def _series(name: str, label: str, rows: Series, out: list[str]) -> None:
    out.append(f"# HELP traefik_{name}_requests_total How many HTTP requests processed, partitioned by status code, protocol, and method.")
    out.append(f"# TYPE traefik_{name}_requests_total counter")
    for (code, method, proto, who), row in sorted(rows.items()):
        out.append(f'traefik_{name}_requests_total{{code="{code}",{label}="{who}",method="{method}",protocol="{proto}"}} {int(row[0])}')
    out.append(f"# HELP traefik_{name}_request_duration_seconds How long it took to process the request, partitioned by status code, protocol, and method.")
    out.append(f"# TYPE traefik_{name}_request_duration_seconds histogram")
    for (code, method, proto, who), row in sorted(rows.items()):
        labels = f'code="{code}",{label}="{who}",method="{method}",protocol="{proto}"'
        acc = 0.0
        for i, le in enumerate(BUCKETS):
            acc += row[2 + i]
            out.append(f'traefik_{name}_request_duration_seconds_bucket{{{labels},le="{le}"}} {int(acc)}')
        out.append(f'traefik_{name}_request_duration_seconds_bucket{{{labels},le="+Inf"}} {int(row[0])}')
        out.append(f"traefik_{name}_request_duration_seconds_sum{{{labels}}} {row[1]}")
        out.append(f"traefik_{name}_request_duration_seconds_count{{{labels}}} {int(row[0])}")


def render(snapshots: Iterable[MetricsSnapshot]) -> bytes:
    entry: Series = {}
    service: Series = {}
    reloads, ok, ts = 0, 0, 0.0
    opened: dict[tuple[str, str], int] = {}
    for snap in snapshots:
        for key, n in snap.get("open", {}).items():
            opened[key] = opened.get(key, 0) + n
        _merge(entry, snap["entry"])
        _merge(service, snap["service"])
        reloads = max(reloads, snap["reloads"])
        ok = max(ok, snap["ok"])
        ts = max(ts, snap["ts"])
    out = ["# HELP traefik_config_reloads_total Config reloads", "# TYPE traefik_config_reloads_total counter",
           f"traefik_config_reloads_total {reloads}",
           "# HELP traefik_config_last_reload_success Last config reload success",
           "# TYPE traefik_config_last_reload_success gauge", f"traefik_config_last_reload_success {ts or ok}"]
    out.append("# HELP traefik_open_connections How many open connections exist, by entryPoint and protocol")
    out.append("# TYPE traefik_open_connections gauge")
    for (ep, proto), n in sorted(opened.items()):
        out.append(f'traefik_open_connections{{entrypoint="{ep}",protocol="{proto}"}} {n}')
    _series("entrypoint", "entrypoint", entry, out)
    _series("service", "service", service, out)
    return ("\n".join(out) + "\n").encode()
