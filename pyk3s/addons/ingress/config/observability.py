"""Static options of the access log (``--accesslog.*``, Traefik otypes.AccessLog) and of Prometheus
metrics (``--metrics.prometheus.*``, otypes.Prometheus); read by ``proxy/accesslog.py`` and
``proxy/metrics.py``. A value of the wrong type is a ConfigError; an option pyk3s does not honour is
reported through the flag table (``pyk3s.images.traefik_flags``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .durations import duration_seconds
from .errors import ConfigError
from .flag_values import flag_bool, switched_on

__all__ = ["AccessLogOptions", "PrometheusOptions", "access_log_options", "prometheus_options", "ACCESS_LOG_FORMATS"]

ACCESS_LOG_FORMATS = {"common": "common", "genericclf": "genericCLF", "json": "json"}


@dataclass(frozen=True, slots=True)
class AccessLogOptions:
    file_path: str = ""
    format: str = "common"  # common | genericCLF | json (an unknown one falls back to common, as in Traefik)
    buffering_size: int = 0
    add_internals: bool = False
    status_codes: tuple[str, ...] = ()
    retry_attempts: bool = False
    min_duration: float = 0.0  # seconds
    fields_default_mode: str = "keep"  # keep | drop
    field_names: Mapping[str, str] = field(default_factory=dict)  # field -> keep | drop
    headers_default_mode: str = "drop"  # keep | drop | redact
    header_names: Mapping[str, str] = field(default_factory=dict)  # header -> keep | drop | redact
    query_parameters_mode: str = "keep"  # keep | drop


@dataclass(frozen=True, slots=True)
class PrometheusOptions:
    entrypoints: bool = True  # addEntryPointsLabels
    routers: bool = False  # addRoutersLabels
    services: bool = True  # addServicesLabels
    buckets: tuple[float, ...] = (0.1, 0.3, 1.2, 5.0)


def access_log_options(flags: dict[str, str]) -> AccessLogOptions | None:
    """``--accesslog`` and ``--accesslog.*``: on when any is given (``--accesslog=false`` turns it off)."""
    if not switched_on(flags, "accesslog"):
        return None
    sub = {k[len("accesslog."):]: v for k, v in flags.items() if k.startswith("accesslog.")}

    def mode(key: str, default: str) -> str:
        # Traefik keeps the default for a mode it does not know (the flag table reports it)
        value = sub.get(key, default).lower()
        return value if value in ("keep", "drop", "redact") else default

    codes = tuple(c.strip() for c in sub.get("filters.statuscodes", "").split(",") if c.strip())
    for code in codes:
        low, _, high = code.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ConfigError(f"traefik: accesslog.filters.statuscodes: invalid status code range {code!r}")
    try:
        buffering = int(sub.get("bufferingsize", "0") or 0)
    except ValueError:
        raise ConfigError(f"traefik: accesslog.bufferingsize: not a number: {sub['bufferingsize']!r}") from None
    fields_mode = mode("fields.defaultmode", "keep")
    return AccessLogOptions(
        file_path=sub.get("filepath", ""), format=ACCESS_LOG_FORMATS.get(sub.get("format", "common").lower(), "common"),
        buffering_size=buffering, add_internals=flag_bool(sub.get("addinternals")), status_codes=codes,
        retry_attempts=flag_bool(sub.get("filters.retryattempts")),
        min_duration=duration_seconds(sub.get("filters.minduration"), 0.0, "accesslog.filters.minduration"),
        fields_default_mode="keep" if fields_mode == "redact" else fields_mode,
        field_names={k[len("fields.names."):]: v.lower() for k, v in sub.items() if k.startswith("fields.names.")},
        headers_default_mode=mode("fields.headers.defaultmode", "drop"),
        header_names={k[len("fields.headers.names."):]: v.lower() for k, v in sub.items()
                      if k.startswith("fields.headers.names.")},
        query_parameters_mode="drop" if mode("fields.queryparameters.defaultmode", "keep") == "drop" else "keep")


def prometheus_options(flags: dict[str, str]) -> PrometheusOptions:
    sub = {k[len("metrics.prometheus."):]: v for k, v in flags.items() if k.startswith("metrics.prometheus.")}
    buckets: tuple[float, ...] = (0.1, 0.3, 1.2, 5.0)
    if sub.get("buckets"):
        try:
            buckets = tuple(sorted(float(b) for b in sub["buckets"].split(",") if b.strip()))
        except ValueError:
            raise ConfigError(f"traefik: metrics.prometheus.buckets: not a list of numbers: {sub['buckets']!r}") from None
    return PrometheusOptions(entrypoints=flag_bool(sub.get("addentrypointslabels"), True),
                             routers=flag_bool(sub.get("addrouterslabels")),
                             services=flag_bool(sub.get("addserviceslabels"), True), buckets=buckets)
