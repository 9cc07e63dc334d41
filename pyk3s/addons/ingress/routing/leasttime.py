"""``strategy: leasttime`` (Traefik leasttime.go): the server with the lowest
``average time to first byte x (1 + requests in flight) / weight``; servers of equal score take turns
by earliest deadline first, as the weighted round robin does.

The average is over a server's last 100 answers, in whole milliseconds as Traefik counts them, so
servers that all answer within a millisecond tie and share the requests by weight; a server with no
answer yet scores 0 and is tried first.
"""

from __future__ import annotations

from collections.abc import Sequence

from .target import Target

__all__ = ["ResponseTimes", "LeastTime"]

SAMPLES = 100


class ResponseTimes:
    """One server's last :data:`SAMPLES` times to first response byte (ring buffer, running sum)."""

    __slots__ = ("samples", "total", "pos")

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.total = 0.0
        self.pos = 0

    def add(self, seconds: float) -> None:
        ms = float(int(seconds * 1000))
        samples = self.samples
        if len(samples) < SAMPLES:
            samples.append(ms)
        else:
            self.total -= samples[self.pos]
            samples[self.pos] = ms
        self.total += ms
        self.pos = (self.pos + 1) % SAMPLES

    def average(self) -> float:
        return self.total / len(self.samples) if self.samples else 0.0


class LeastTime:
    """The picking state of one load balancer: each server's response times (on its :class:`Target`)
    and deadlines for breaking ties."""

    __slots__ = ("deadlines", "current")

    def __init__(self, rotation: Sequence[Target]) -> None:
        self.deadlines: dict[Target, float] = {}
        self.current = 0.0
        for t in rotation:
            # staggered, so servers added together do not all start at one deadline
            self.current += 1.0 / t.weight
            self.deadlines[t] = self.current
            t.times = ResponseTimes()

    def pick(self, active: Sequence[Target]) -> Target:
        if len(active) == 1:
            return active[0]
        best = float("inf")
        tied: list[Target] = []
        for t in active:
            times = t.times
            score = (times.average() if times is not None else 0.0) * (1 + t.inflight) / t.weight
            if score < best:
                best, tied = score, [t]
            elif score == best:
                tied.append(t)
        if len(tied) == 1:
            return tied[0]
        deadlines = self.deadlines
        chosen = min(tied, key=deadlines.__getitem__)   # the first of equal deadlines
        later = deadlines[chosen] + 1.0 / chosen.weight
        deadlines[chosen] = later
        if later > self.current:
            self.current = later
        return chosen
