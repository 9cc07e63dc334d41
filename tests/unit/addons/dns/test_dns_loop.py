"""loop: a forwarding loop stops the server; an upstream that answers late (or not at all) at start-up
is not a loop (CoreDNS resets its count after a probe that got no answer)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_dns_plugins import Upstream

from pyk3s.addons.dns.plugins.loop import LoopPlugin
from pyk3s.addons.dns.runtime import DnsRuntime


@pytest.fixture
def quick_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LoopPlugin, "probe_timeout", 0.2)
    monkeypatch.setattr(LoopPlugin, "probe_pause", 0.05)


async def test_slow_upstream_at_start_is_not_a_loop(make_dns: Callable[..., Any], quick_probes: None) -> None:
    loop = asyncio.get_running_loop()
    slow = Upstream(delay=0.6)               # every probe times out before its answer comes
    tr, _ = await loop.create_datagram_endpoint(lambda: slow, local_addr=("127.0.0.1", 0))
    try:
        h = await make_dns(body=f"loop\nforward . 127.0.0.1:{tr.get_extra_info('sockname')[1]}\n", load=False)
        await asyncio.sleep(1.5)
        assert slow.count >= 3                   # the probe went upstream at least three times
        assert h.runtime.fatal_error is None
    finally:
        tr.close()


@pytest.mark.timing_sensitive     # the loop must be found within 3 s, on a shared machine too
async def test_forwarding_to_itself_is_a_loop(tmp_path: Path, quick_probes: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    corefile = tmp_path / "Corefile"
    corefile.write_text(f".:{port} {{\n    bind 127.0.0.1\n    loop\n    forward . 127.0.0.1:{port}\n}}\n")
    rt = DnsRuntime(str(corefile))
    await rt.start()
    try:
        await asyncio.wait_for(rt.stopped.wait(), 3)
        assert rt.fatal_error == "plugin/loop: forwarding loop detected"
    finally:
        await rt.stop()


def test_retried_probes_seconds_apart_are_not_a_loop() -> None:
    # a worker that receives the primary's retries never sees the primary's reset (multisocket)
    worker = LoopPlugin(".")
    assert [worker.sighting(t) for t in (10.0, 13.0, 16.0, 19.0)] == [1, 1, 1, 1]
    assert [worker.sighting(t) for t in (30.0, 30.01, 30.02)] == [1, 2, 3]    # a probe coming straight back
