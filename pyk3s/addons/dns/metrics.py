"""A small Prometheus registry with CoreDNS's metric names (spec dns.md O6).

Counters and histograms are dicts keyed by label tuples; `render()` writes the text exposition format.
The fast path does not touch this registry per packet: it keeps plain integer counts that are folded in
at scrape time (`fold`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["DURATION_BUCKETS", "DnsMetrics"]

DURATION_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
                    0.512, 1.024, 2.048, 4.096, 8.192)
SIZE_BUCKETS = (0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000)
COMMON_TYPES = frozenset({"A", "AAAA", "MX", "SOA", "CNAME", "PTR", "TXT", "NS", "SRV", "DS", "DNSKEY",
                          "RRSIG", "NSEC", "NSEC3", "HTTPS", "IXFR", "AXFR", "ANY"})

HELP = {
    "coredns_build_info": ("gauge", "A metric with a constant '1' value labeled by version, revision, and goversion."),
    "coredns_panics_total": ("counter", "A metrics that counts the number of panics."),
    "coredns_plugin_enabled": ("gauge", "A metric that indicates whether a plugin is enabled on per server and zone basis."),
    "coredns_dns_requests_total": ("counter", "Counter of DNS requests made per zone, protocol and family."),
    "coredns_dns_responses_total": ("counter", "Counter of response status codes."),
    "coredns_dns_do_requests_total": ("counter", "Counter of DNS requests with DO bit set per zone."),
    "coredns_dns_request_duration_seconds": ("histogram", "Histogram of the time (in seconds) each request took."),
    "coredns_dns_request_size_bytes": ("histogram", "Size of the EDNS0 UDP buffer in bytes (64K for TCP)."),
    "coredns_dns_response_size_bytes": ("histogram", "Size of the returned response in bytes."),
    "coredns_cache_entries": ("gauge", "The number of elements in the cache."),
    "coredns_cache_requests_total": ("counter", "The count of cache requests."),
    "coredns_cache_hits_total": ("counter", "The count of cache hits."),
    "coredns_cache_misses_total": ("counter", "The count of cache misses."),
    "coredns_cache_prefetch_total": ("counter", "The number of times the cache has prefetched a cached item."),
    "coredns_cache_served_stale_total": ("counter", "The number of requests served from stale cache entries."),
    "coredns_cache_evictions_total": ("counter", "The count of cache evictions."),
    "coredns_forward_requests_total": ("counter", "Counter of requests made per upstream."),
    "coredns_forward_healthcheck_broken_total": ("counter", "Counter of the number of complete failures of the healthchecks."),
    "coredns_forward_max_concurrent_rejects_total": ("counter", "Counter of the number of queries rejected because the concurrent queries were at maximum."),
    "coredns_proxy_request_duration_seconds": ("histogram", "Histogram of the time each request took."),
    "coredns_hosts_entries": ("gauge", "The combined number of entries in hosts and Corefile."),
    "coredns_hosts_reload_timestamp_seconds": ("gauge", "The timestamp of the last reload of hosts file."),
    "coredns_reload_failed_total": ("counter", "Counter of the number of failed reload attempts."),
    "coredns_health_request_duration_seconds": ("histogram", "Histogram of the time (in seconds) each request took."),
    "coredns_kubernetes_dns_programming_duration_seconds": ("histogram", "Histogram of the time (in seconds) it took to program a dns instance."),
}


@dataclass
class _Hist:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def observe(self, v: float, times: int = 1) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)
        i = bisect_left(self.buckets, v)        # the first bucket whose bound is >= v
        if i < len(self.counts):
            self.counts[i] += times
        self.total += v * times
        self.n += times


_LabelKey = tuple[tuple[str, str], ...]
# what one request's metrics update, found once per label set: the request and response counters
# with their keys, the DO counter's key, and the duration and size histograms
_RequestSlots = tuple[dict[_LabelKey, float], _LabelKey, dict[_LabelKey, float], _LabelKey, _LabelKey,
                      _Hist, _Hist, _Hist]


class DnsMetrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self.hists: dict[str, dict[tuple[tuple[str, str], ...], _Hist]] = {}
        self.folds: list[Callable[[DnsMetrics], None]] = []
        self._requests: dict[tuple[str, ...], _RequestSlots] = {}
        self.set("coredns_build_info", 1, version="1.13.1", revision="pyk3s", goversion="python")
        self.inc("coredns_panics_total", 0)

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        d = self.counters.setdefault(name, {})
        key = tuple(sorted(labels.items()))
        d[key] = d.get(key, 0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        self.counters.setdefault(name, {})[tuple(sorted(labels.items()))] = value

    def observe(self, name: str, value: float, times: int = 1, buckets: tuple[float, ...] = DURATION_BUCKETS,
                **labels: str) -> None:
        d = self.hists.setdefault(name, {})
        key = tuple(sorted(labels.items()))
        h = d.get(key)
        if h is None:
            h = d[key] = _Hist(buckets)
        h.observe(value, times)

    def histogram(self, name: str, buckets: tuple[float, ...] = DURATION_BUCKETS, **labels: str) -> _Hist:
        """The histogram of `name` with these labels, to observe into directly (a hot path keeps it)."""
        d = self.hists.setdefault(name, {})
        key = tuple(sorted(labels.items()))
        h = d.get(key)
        if h is None:
            h = d[key] = _Hist(buckets)
        return h

    def request(self, server: str, zone: str, proto: str, family: str, qtype: str, rcode: str,
                plugin: str, seconds: float, req_size: int, resp_size: int, do: bool, times: int = 1) -> None:
        k = (server, zone, proto, family, qtype, rcode, plugin)
        slots = self._requests.get(k)
        if slots is None:
            slots = self._requests[k] = self._request_slots(*k)
        requests, req_key, responses, resp_key, do_key, duration, req_sizes, resp_sizes = slots
        requests[req_key] = requests.get(req_key, 0) + times
        responses[resp_key] = responses.get(resp_key, 0) + times
        if do:
            d = self.counters.setdefault("coredns_dns_do_requests_total", {})
            d[do_key] = d.get(do_key, 0) + times
        duration.observe(seconds, times)
        req_sizes.observe(req_size, times)
        resp_sizes.observe(resp_size, times)

    def _request_slots(self, server: str, zone: str, proto: str, family: str, qtype: str, rcode: str,
                       plugin: str) -> _RequestSlots:
        t = qtype if qtype in COMMON_TYPES else "other"

        def key(**labels: str) -> _LabelKey:
            return tuple(sorted(labels.items()))
        return (self.counters.setdefault("coredns_dns_requests_total", {}),
                key(server=server, zone=zone, view="", proto=proto, family=family, type=t),
                self.counters.setdefault("coredns_dns_responses_total", {}),
                key(server=server, zone=zone, view="", rcode=rcode, plugin=plugin),
                key(server=server, zone=zone, view=""),
                self.histogram("coredns_dns_request_duration_seconds", server=server, zone=zone, view="", type=t),
                self.histogram("coredns_dns_request_size_bytes", SIZE_BUCKETS, server=server, zone=zone, view="",
                               proto=proto),
                self.histogram("coredns_dns_response_size_bytes", SIZE_BUCKETS, server=server, zone=zone, view="",
                               proto=proto))

    def render(self) -> str:
        for fold in list(self.folds):
            fold(self)
        out: list[str] = []
        names = sorted(set(self.counters) | set(self.hists))
        for name in names:
            kind, text = HELP.get(name, ("counter" if name.endswith("_total") else "gauge", name))
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")
            for key, v in sorted(self.counters.get(name, {}).items()):
                out.append(f"{name}{_labels(key)} {_num(v)}")
            for key, h in sorted(self.hists.get(name, {}).items(), key=lambda kv: kv[0]):
                acc = 0
                counts = h.counts or [0] * len(h.buckets)
                for b, c in zip(h.buckets, counts, strict=True):
                    acc += c
                    out.append(f"{name}_bucket{_labels(key + (('le', _num(b)),))} {acc}")
                out.append(f"{name}_bucket{_labels(key + (('le', '+Inf'),))} {h.n}")
                out.append(f"{name}_sum{_labels(key)} {_num(h.total)}")
                out.append(f"{name}_count{_labels(key)} {h.n}")
        return "\n".join(out) + "\n"


def _labels(key: tuple[tuple[str, str], ...]) -> str:
    if not key:
        return ""
    parts = []
    for k, v in key:
        v = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{k}="{v}"')
    return "{" + ",".join(parts) + "}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))
