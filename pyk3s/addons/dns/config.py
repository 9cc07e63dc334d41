"""Corefile -> DnsConfig: the server blocks with their plugin chains (spec dns.md C1-C10).

Rules:
- The only place where directives become plugins: each is set up by its class in `PLUGINS`; an unknown
  directive is a CorefileError naming file and line. A plugin twice in one block is an error unless it
  may repeat (`once_per_block = False`: bind, forward) or folds repeats into the first (`merges`: rewrite).
- The chain order is `ORDER`, never the Corefile's. What the plugins ask of their block (`Plugin.wants`)
  is folded into the Block; then each plugin is told what it may know of the assembled chain
  (`Plugin.chained`).
- Pure: nothing is started or opened here; the runtime does that with a whole DnsConfig.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dns.message
import dns.rcode

from .core import Block
from .corefile import ServerBlock, parse_corefile, read_corefile
from .errors import CorefileError
from .plugin import BlockContext, ChainInfo, DnsRequest, Handler, Plugin
from .plugins import ORDER, PLUGINS

__all__ = ["DEFAULT_COREFILE", "DnsConfig", "build_blocks", "read_config", "read_config_without_broken_imports"]

DEFAULT_COREFILE = ". {\n    whoami\n    log\n}\n"


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """A compiled Corefile: its server blocks, and a digest that tells whether a reload changes anything."""

    blocks: tuple[Block, ...]
    digest: str

    def plugins(self) -> Iterator[Plugin]:
        for b in self.blocks:
            yield from b.plugins

    def listeners(self) -> dict[tuple[str, int], list[Block]]:
        """The blocks served on each (host, port)."""
        out: dict[tuple[str, int], list[Block]] = {}
        for b in self.blocks:
            for host in b.binds:
                out.setdefault((host, b.port), []).append(b)
        return out

    @property
    def reload(self) -> tuple[float, float] | None:
        """Corefile check interval and jitter (the first `reload` of the file), or None."""
        return next((b.reload for b in self.blocks if b.reload is not None), None)


def read_config(corefile: str, dns_port: int | None = None, skip: frozenset[str] = frozenset(),
                globbed: set[str] | None = None) -> DnsConfig:
    """Read and compile a Corefile (an empty path: the default one, whoami and log on port 53)."""
    if corefile:
        sbs = read_corefile(corefile, default_port=dns_port, skip=skip, globbed=globbed)
    else:
        sbs = parse_corefile(DEFAULT_COREFILE, "Corefile", default_port=dns_port)
    digest = hashlib.sha512(repr(sbs).encode()).hexdigest()
    return DnsConfig(tuple(build_blocks(sbs, corefile)), digest)


def read_config_without_broken_imports(corefile: str, dns_port: int | None = None
                                       ) -> tuple[DnsConfig, tuple[CorefileError, ...]]:
    """read_config, except that a file an `import` glob brought in and that breaks the Corefile is left
    out (its error returned) and the rest compiled, so one broken `coredns-custom` entry does not stop
    cluster DNS at start. CoreDNS refuses to start then; an error in the Corefile itself, or in a file
    imported by name, still does here too."""
    skipped: list[CorefileError] = []
    while True:
        globbed: set[str] = set()
        try:
            cfg = read_config(corefile, dns_port, frozenset(os.path.realpath(e.file) for e in skipped), globbed)
            return cfg, tuple(skipped)
        except CorefileError as err:
            if not err.file or os.path.realpath(err.file) not in globbed:
                raise
            skipped.append(err)


def _chain(plugins: Sequence[Plugin]) -> Handler:
    async def end(req: DnsRequest) -> dns.message.Message:
        req.note("end of the plugin chain: SERVFAIL")
        return req.reply(dns.rcode.SERVFAIL)

    def link(plugin: Plugin, nxt: Handler) -> Handler:
        return lambda req: plugin.serve(req, nxt)

    handler: Handler = end
    for p in reversed([p for p in plugins if p.in_chain]):
        handler = link(p, handler)
    return handler


def build_blocks(server_blocks: list[ServerBlock], corefile: str) -> list[Block]:
    """Server blocks to Blocks with plugin instances in ORDER (unknown directives are errors)."""
    blocks: list[Block] = []
    for sb in server_blocks:
        zones = sb.zones
        port = sb.keys[0].port
        server = f"{sb.keys[0].scheme}://:{port}"
        ctx = BlockContext(zones, server, corefile)
        by_name: dict[str, list[Plugin]] = {}
        for d in sb.directives:
            cls = PLUGINS.get(d.name)
            if cls is None:
                raise CorefileError(f"Unknown directive '{d.name}'", file=d.file, line=d.line)
            if cls.once_per_block and d.name in by_name:
                raise d.error("this plugin can only be used once per Server Block", d.name)
            plugin = cls.setup(d, ctx)
            if cls.merges and d.name in by_name:
                by_name[d.name][0].merge(plugin)
                continue
            by_name.setdefault(d.name, []).append(plugin)
        plugins = tuple(p for name in ORDER for p in by_name.get(name, ()))
        wants = [p.wants() for p in plugins]
        varying = next((p for p in plugins if p.variants() is not None), None)
        chain = ChainInfo(fast_ok=all(p.fast_safe for p in plugins),
                          variants=varying.variants() if varying is not None else None,
                          wire_variants=varying.wire_variants() if varying is not None else None,
                          plugins=plugins)
        for p in plugins:
            p.chained(chain)
        blocks.append(Block(
            zones=zones, port=port, binds=tuple(a for w in wants for a in w.listen) or ("",), server=server,
            plugins=plugins, handler=_chain(plugins), metrics=any(w.metrics for w in wants),
            refuse_all=not any(p.in_chain for p in plugins), fast_ok=chain.fast_ok, variants=chain.variants,
            wire_variants=chain.wire_variants,
            workers=max((w.workers for w in wants), default=0),
            reload=next((w.reload for w in wants if w.reload is not None), None),
            classes=frozenset(c for p in plugins for c in p.query_classes),
        ))
    return blocks
