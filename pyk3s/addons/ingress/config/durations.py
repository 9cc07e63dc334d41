"""Go durations as Traefik reads them: the one parser of the ingress (middlewares, providers, static flags).

``"1s"``, ``"100ms"``, ``"1m30s"``, ``"1.5h"`` (units ns, us, µs, ms, s, m, h) or a plain number of
seconds, which Traefik accepts too.
"""

from __future__ import annotations

from .errors import ConfigError

__all__ = ["duration_seconds", "go_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(value: object, default: float, where: str) -> float:
    """``value`` in seconds (``default`` when unset); ConfigError naming ``where`` when it is no duration."""
    if value in (None, ""):
        return default
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if text.startswith(u, i)), None)
        if unit is None or not num:
            raise ConfigError(f"ingress: {where}: invalid duration {value!r}")
        total += float(num) * _UNITS[unit]
        num = ""
        i += len(unit)
    if num:
        raise ConfigError(f"ingress: {where}: invalid duration {value!r} (missing unit)")
    return total


def go_duration(seconds: float) -> str:
    """Seconds as Go's time.Duration.String() prints them (``100ms``, ``1m30s``, ``0s``): Traefik's JSON."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fraction(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return f"{sign}{text}{_fraction(rest, 1_000_000_000)}s"


def _fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    return f"{whole}." + f"{rest:0{len(str(unit)) - 1}d}".rstrip("0")
