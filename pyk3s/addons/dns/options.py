"""Helpers for a plugin's Corefile options: Go durations, bounded integers, choices, `fallthrough`.

Each raises the directive's CorefileError (`plugin/<name>: <file>:<line> - Error during parsing: ...`), so
a wrong value names the plugin, the file and the line. `parse_duration` is the DNS add-on's only reader
of Go durations (through :mod:`pyk3s.k3s.durations`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyk3s.k3s.durations import parse_go_duration

from .corefile import Directive

__all__ = ["Fallthrough", "in_zone", "int_arg", "one_of", "parse_duration", "zone_test"]


def in_zone(name: str, zone: str) -> bool:
    """Whether the lower-case FQDN `name` is `zone` or below it."""
    return zone == "." or name == zone or name.endswith("." + zone)


def zone_test(zones: tuple[str, ...]) -> Callable[[str], bool]:
    """`in_zone` for any of `zones`, as one call (for per-query paths)."""
    if "." in zones:
        return lambda name: True
    exact = frozenset(zones)
    below = tuple("." + z for z in zones)
    return lambda name: name in exact or name.endswith(below)


@dataclass(frozen=True, slots=True)
class Fallthrough:
    """`fallthrough [ZONES...]`: empty zones = all."""

    enabled: bool = False
    zones: tuple[str, ...] = ()

    @classmethod
    def parse(cls, args: tuple[str, ...]) -> Fallthrough:
        zones = tuple(a.lower() if a.endswith(".") else a.lower() + "." for a in args)
        return cls(True, zones)

    def through(self, name: str) -> bool:
        if not self.enabled:
            return False
        if not self.zones:
            return True
        return any(in_zone(name, z) for z in self.zones)


def parse_duration(text: str, d: Directive, plugin: str) -> float:
    """Go-style durations: 15s, 1m, 500ms, 1h30m; a bare number means seconds."""
    if text.replace(".", "", 1).isdigit():
        return float(text)
    try:
        return parse_go_duration(text)
    except ValueError:
        hint = " (missing unit)" if text[-1:].isdigit() else ""
        raise d.error(f"invalid duration {text!r}{hint}", plugin) from None


def one_of(d: Directive, plugin: str, *choices: str) -> str:
    if len(d.args) != 1 or d.args[0] not in choices:
        raise d.error(f"{d.name} needs one of {', '.join(choices)}", plugin)
    return d.args[0]


def int_arg(d: Directive, plugin: str, lo: int, hi: int, text: str | None = None) -> int:
    raw = text if text is not None else (d.args[0] if len(d.args) == 1 else "")
    if not raw.lstrip("-").isdigit():
        raise d.error(f"{d.name} needs an integer", plugin)
    v = int(raw)
    if not lo <= v <= hi:
        raise d.error(f"{d.name} must be between {lo} and {hi}, got {v}", plugin)
    return v
