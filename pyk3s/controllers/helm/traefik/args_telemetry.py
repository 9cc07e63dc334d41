"""The Traefik container's metrics, tracing and OCSP arguments, and the chart's YAML-to-flags helper (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .context import Ctx, go_string, truthy

if TYPE_CHECKING:
    from .args import _Args

__all__ = ["metrics_args", "tracing_args", "yaml_to_args"]


def _labels_flags(a: _Args, prefix: str, cfg: Mapping[str, Any], key: str, routers_when_true: bool = False) -> None:
    for label in ("addRoutersLabels", "addEntryPointsLabels", "addServicesLabels"):
        value = cfg.get(label)
        if value is None:
            continue
        if label == "addRoutersLabels" and routers_when_true:
            if go_string(value) == "true":
                a.add(f"--{prefix}.addRoutersLabels=true", f"{key}.{label}")
            continue
        a.add(f"--{prefix}.{label}={go_string(value)}", f"{key}.{label}")


def _otlp_exporter(a: _Args, prefix: str, cfg: Mapping[str, Any], key: str) -> None:
    for proto in ("http", "grpc"):
        sub = cfg.get(proto) or {}
        if not truthy(sub) or not sub.get("enabled"):
            continue
        k = f"{key}.{proto}"
        a.add(f"--{prefix}.{proto}=true", f"{k}.enabled")
        if truthy(sub.get("endpoint")):
            a.add(f"--{prefix}.{proto}.endpoint={sub['endpoint']}", f"{k}.endpoint")
        if proto == "grpc" and truthy(sub.get("insecure")):
            a.add(f"--{prefix}.grpc.insecure={go_string(sub['insecure'])}", f"{k}.insecure")
        for name, value in sorted((sub.get("headers") or {}).items()):
            a.add(f"--{prefix}.{proto}.headers.{name}={go_string(value)}", f"{k}.headers.{name}")
        tls = sub.get("tls") or {}
        for field in ("ca", "cert", "key", "insecureSkipVerify"):
            if truthy(tls.get(field)):
                a.add(f"--{prefix}.{proto}.tls.{field}={go_string(tls[field])}", f"{k}.tls.{field}")


def yaml_to_args(a: _Args, path: str, content: Mapping[str, Any], key: str) -> None:
    """The chart's ``traefik.yaml2CommandLineArgs``: nested maps become dotted flags, lists join with commas."""
    for name, value in sorted(content.items()):
        if isinstance(value, dict):
            yaml_to_args(a, f"{path}.{name}", value, f"{key}.{name}")
        elif truthy(value):
            joined = ",".join(go_string(v) for v in value) if isinstance(value, list) else go_string(value)
            a.add(f"--{path}.{name}={joined}", f"{key}.{name}")


def metrics_args(a: _Args, ctx: Ctx) -> None:
    metrics = ctx.v("metrics")
    if truthy(metrics):
        if metrics.get("addInternals"):
            a.add("--metrics.addinternals", "metrics.addInternals")
        dd = metrics.get("datadog")
        if truthy(dd):
            a.add("--metrics.datadog=true", "metrics.datadog")
            for field in ("address", "pushInterval", "prefix"):
                if truthy(dd.get(field)):
                    a.add(f"--metrics.datadog.{field}={go_string(dd[field])}", f"metrics.datadog.{field}")
            _labels_flags(a, "metrics.datadog", dd, "metrics.datadog")
        influx = metrics.get("influxdb2")
        if truthy(influx):
            a.add("--metrics.influxdb2=true", "metrics.influxdb2")
            for field in ("address", "token", "org", "bucket"):
                a.add(f"--metrics.influxdb2.{field}={go_string(influx.get(field))}", f"metrics.influxdb2.{field}")
            if truthy(influx.get("pushInterval")):
                a.add(f"--metrics.influxdb2.pushInterval={go_string(influx['pushInterval'])}",
                      "metrics.influxdb2.pushInterval")
            for name, value in sorted((influx.get("additionalLabels") or {}).items()):
                a.add(f"--metrics.influxdb2.additionalLabels.{name}={go_string(value)}",
                      f"metrics.influxdb2.additionalLabels.{name}")
            _labels_flags(a, "metrics.influxdb2", influx, "metrics.influxdb2")
        prom = metrics.get("prometheus")
        if truthy(prom):
            a.add("--metrics.prometheus=true", "metrics.prometheus")
            a.add(f"--metrics.prometheus.entrypoint={go_string(prom.get('entryPoint'))}",
                  "metrics.prometheus.entryPoint")
            _labels_flags(a, "metrics.prometheus", prom, "metrics.prometheus", routers_when_true=True)
            if truthy(prom.get("buckets")):
                a.add(f"--metrics.prometheus.buckets={go_string(prom['buckets'])}", "metrics.prometheus.buckets")
            if truthy(prom.get("manualRouting")):
                a.add("--metrics.prometheus.manualrouting=true", "metrics.prometheus.manualRouting")
            for label, header in sorted((prom.get("headerLabels") or {}).items()):
                a.add(f"--metrics.prometheus.headerlabels.{label}={go_string(header)}",
                      f"metrics.prometheus.headerLabels.{label}")
        statsd = metrics.get("statsd")
        if truthy(statsd):
            a.add("--metrics.statsd=true", "metrics.statsd")
            a.add(f"--metrics.statsd.address={go_string(statsd.get('address'))}", "metrics.statsd.address")
            for field in ("pushInterval", "prefix"):
                if truthy(statsd.get(field)):
                    a.add(f"--metrics.statsd.{field}={go_string(statsd[field])}", f"metrics.statsd.{field}")
            if truthy(statsd.get("addRoutersLabels")):
                a.add("--metrics.statsd.addRoutersLabels=true", "metrics.statsd.addRoutersLabels")
            for label in ("addEntryPointsLabels", "addServicesLabels"):
                if statsd.get(label) is not None:
                    a.add(f"--metrics.statsd.{label}={go_string(statsd[label])}", f"metrics.statsd.{label}")
    otlp = ctx.v("metrics", "otlp")
    if truthy(otlp) and otlp.get("enabled"):
        a.add("--metrics.otlp=true", "metrics.otlp.enabled")
        for label in ("addEntryPointsLabels", "addRoutersLabels", "addServicesLabels"):
            if otlp.get(label) is not None:
                a.add(f"--metrics.otlp.{label}={go_string(otlp[label])}", f"metrics.otlp.{label}")
        if truthy(otlp.get("explicitBoundaries")):
            a.add("--metrics.otlp.explicitBoundaries=" + ",".join(go_string(b) for b in otlp["explicitBoundaries"]),
                  "metrics.otlp.explicitBoundaries")
        for field in ("pushInterval", "serviceName"):
            if truthy(otlp.get(field)):
                a.add(f"--metrics.otlp.{field}={go_string(otlp[field])}", f"metrics.otlp.{field}")
        _otlp_exporter(a, "metrics.otlp", otlp, "metrics.otlp")


def tracing_args(a: _Args, ctx: Ctx) -> None:
    if ctx.v("ocsp", "enabled"):
        a.add("--ocsp=true", "ocsp.enabled")
        overrides = ctx.v("ocsp", "responderOverrides")
        if truthy(overrides):
            yaml_to_args(a, "ocsp.responderOverrides", overrides, "ocsp.responderOverrides")
    tracing = ctx.v("tracing") or {}
    if tracing.get("addInternals"):
        a.add("--tracing.addinternals", "tracing.addInternals")
    if truthy(tracing):
        if tracing.get("sampleRate") is not None:
            a.add(f"--tracing.sampleRate={go_string(tracing['sampleRate'])}", "tracing.sampleRate")
        if truthy(tracing.get("serviceName")):
            a.add(f"--tracing.serviceName={go_string(tracing['serviceName'])}", "tracing.serviceName")
        for name, value in sorted((tracing.get("resourceAttributes") or {}).items()):
            a.add(f"--tracing.resourceAttributes.{name}={go_string(value)}", f"tracing.resourceAttributes.{name}")
        for field in ("capturedRequestHeaders", "capturedResponseHeaders", "safeQueryParams"):
            if truthy(tracing.get(field)):
                a.add(f"--tracing.{field}=" + ",".join(go_string(h) for h in tracing[field]), f"tracing.{field}")
    otlp = tracing.get("otlp") or {}
    if truthy(otlp) and otlp.get("enabled"):
        a.add("--tracing.otlp=true", "tracing.otlp.enabled")
        _otlp_exporter(a, "tracing.otlp", otlp, "tracing.otlp")
