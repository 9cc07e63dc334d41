"""HTTP status code ranges as Traefik's configuration writes them (types.NewHTTPCodeRanges): the
access log's ``statusCodes`` filter, the errors middleware's ``status`` and a failover's
``errors.status``."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["status_ranges"]


def status_ranges(specs: Iterable[object]) -> tuple[tuple[int, int], ...]:
    """``("200", "300-302")`` -> ((200, 200), (300, 302)); ValueError naming the bad entry."""
    out = []
    for spec in specs:
        text = str(spec).strip()
        low, _, high = text.partition("-")
        try:
            out.append((int(low), int(high or low)))
        except ValueError:
            raise ValueError(f"invalid status range {text!r}") from None
    return tuple(out)
