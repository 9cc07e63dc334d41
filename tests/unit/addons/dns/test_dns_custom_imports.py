"""A broken file brought in by an `import` glob (K3s's coredns-custom entries) does not stop cluster DNS at
start: the server starts without it, serves the rest, logs it and reports it as a Warning event on the
coredns-custom ConfigMap naming the file and line. CoreDNS refuses to start (the pod crash-loops)."""

from __future__ import annotations

import logging
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.runtime import DnsRuntime

COREFILE = """.:0 {
    bind 127.0.0.1
    errors
    hosts {
      10.0.0.1 a.example
      fallthrough
    }
    import custom/*.override
}
import custom/*.server
"""


def setup(tmp_path: Path, files: dict[str, str], corefile: str = COREFILE) -> str:
    (tmp_path / "custom").mkdir()
    for name, text in files.items():
        (tmp_path / "custom" / name).write_text(text)
    (tmp_path / "Corefile").write_text(corefile)
    return str(tmp_path / "Corefile")


async def ask(port: int, name: str) -> dns.message.Message:
    return await dns.asyncquery.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)


async def test_a_broken_custom_file_is_left_out_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    corefile = setup(tmp_path, {
        "broken.override": "# a second hosts in the main server block\nhosts {\n  10.0.0.2 b.example\n}\n",
        "names.override": "rewrite name x.example a.example\n",
        "other.server": "other.example:0 {\n  bind 127.0.0.1\n  whoami\n}\n",
    })
    events: list[tuple[str, str, str]] = []

    async def sink(reason: str, message: str, configmap: str) -> None:
        events.append((reason, message, configmap))

    rt = DnsRuntime(corefile, event_sink=sink)
    with caplog.at_level(logging.ERROR):
        await rt.start()
    try:
        (port,) = [lst.port for lst in rt.listeners.values()]
        r = await ask(port, "x.example")                      # names.override: rewritten to a.example
        assert r.rcode() == dns.rcode.NOERROR and "10.0.0.1" in r.to_text()
        assert "10.0.0.2" not in (await ask(port, "b.example")).to_text()      # broken.override left out
        r = await ask(port, "other.example")                  # other.server: its block is served
        assert r.rcode() == dns.rcode.NOERROR and r.additional
    finally:
        await rt.stop()
    assert [(r, c) for r, _, c in events] == [("CustomFileSkipped", "coredns-custom")]
    message = events[0][1]
    assert message.startswith("broken.override: line 2: ") and "only be used once per Server Block" in message
    assert any("broken.override:2" in r.getMessage() and "without this file" in r.getMessage()
               for r in caplog.records)


async def test_an_error_in_the_corefile_itself_still_stops_start(tmp_path: Path) -> None:
    corefile = setup(tmp_path, {}, COREFILE.replace("errors", "errors\n    nosuchplugin"))
    rt = DnsRuntime(corefile)
    with pytest.raises(CorefileError, match="nosuchplugin"):
        await rt.start()
    await rt.stop()
