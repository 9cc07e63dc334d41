"""WatchHub fan-out: prefix filtering, clean end, and the backlog limit for stuck watchers."""

from __future__ import annotations

import pytest

from pyk3s.api.store.base import Compacted, Event, KeyValue, Unavailable
from pyk3s.api.store.watchhub import MAX_KEY, WatchHub, prefix_end


def ev(key: str, rev: int) -> Event:
    return Event("PUT", KeyValue(key, b"v", rev, rev))


@pytest.mark.parametrize(
    ("prefix", "end"), [("/a/", "/a0"), ("", MAX_KEY), ("x", "y"), ("a\U0010ffff", "a\U0010ffff" + MAX_KEY)]
)
def test_prefix_end(prefix: str, end: str) -> None:
    assert prefix_end(prefix) == end


async def test_filtering_order_and_end() -> None:
    hub = WatchHub(revision=3)
    pods, everything = hub.subscribe("/pods/"), hub.subscribe("")
    assert pods.start == 3
    hub.publish([ev("/pods/a", 4), ev("/svc/a", 5), ev("/pods/b", 6)], 6)
    hub.publish([], 7)
    assert hub.revision == 7
    assert [e.revision for e in await pods.next()] == [4, 6]
    assert [e.revision for e in await everything.next()] == [4, 5, 6]
    pods.end()
    assert await pods.next() is None
    hub.fail(Compacted(1, 5))
    with pytest.raises(Compacted):
        await everything.next()
    assert len(hub) == 0


async def test_stuck_watcher_is_dropped() -> None:
    hub = WatchHub(max_backlog=10)
    slow = hub.subscribe("")
    for rev in range(1, 13):
        hub.publish([ev("/k", rev)], rev)
    with pytest.raises(Unavailable, match="behind"):
        await slow.next()
    assert len(hub) == 0
