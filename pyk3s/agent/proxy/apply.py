"""Apply a compiled ruleset with one ``nft -f`` (atomic: the whole file is one transaction).

Only runs nft when the text changed since the last successful apply. Errors keep the last good ruleset
in the kernel (the transaction is rolled back) and are raised as :class:`NftError` naming the table.
"""

from __future__ import annotations

import asyncio
import json
import logging

from pyk3s.agent.spawn import CommandTimeout, run_command

__all__ = ["NftApplier", "NftError", "claimed_addresses", "delete_table", "run_nft"]

log = logging.getLogger("pyk3s.agent.proxy")


class NftError(RuntimeError):
    pass


async def run_nft(text: str, *, timeout: float = 20.0, args: tuple[str, ...] = ("-f", "-"),
                  component: str = "proxy") -> str:
    # started off the event loop (pyk3s.agent.spawn); no input: stdin is /dev/null, not a pipe nft may
    # exit before reading
    try:
        res = await run_command(["nft", *args], input=text.encode() if text else None, timeout=timeout)
    except CommandTimeout:
        raise NftError(f"{component}: nft {' '.join(args)} timed out after {timeout}s") from None
    if res.returncode != 0:
        raise NftError(f"{component}: nft {' '.join(args)} failed: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout.decode()


async def delete_table(family: str, table: str, component: str = "proxy") -> bool:
    """Delete one table if it exists; True when it did."""
    try:
        await run_nft("", args=("delete", "table", family, table), component=component)
    except NftError:
        return False
    return True


async def claimed_addresses(family: str, own_table: str, prefix: str, set_names: tuple[str, ...]) -> frozenset[str]:
    """The addresses the other tables named ``prefix*`` of this network namespace list in their sets
    ``set_names``: the node addresses other pyk3s nodes publish. Nothing when nft cannot tell."""
    try:
        out = await run_nft("", args=("-j", "list", "sets", family))
        listing = json.loads(out or "{}").get("nftables") or []
    except (NftError, ValueError, AttributeError):
        return frozenset()
    found: set[str] = set()
    for item in listing:
        s = item.get("set") if isinstance(item, dict) else None
        if not isinstance(s, dict) or s.get("name") not in set_names:
            continue
        table = str(s.get("table") or "")
        if table == own_table or not table.startswith(prefix):
            continue
        found.update(e for e in s.get("elem") or [] if isinstance(e, str))
    return frozenset(found)


class NftApplier:
    def __init__(self, family: str = "ip", table: str = "pyk3s") -> None:
        self.family, self.table = family, table
        self.last_text: str | None = None
        self.applies = 0
        self._lock = asyncio.Lock()

    async def apply(self, text: str) -> bool:
        """Apply ``text`` if it differs from the last applied ruleset; True when nft ran."""
        async with self._lock:
            if text == self.last_text:
                return False
            await run_nft(text)
            self.last_text = text
            self.applies += 1
            log.debug("proxy: applied table %s %s (%d bytes)", self.family, self.table, len(text))
            return True

    async def delete(self) -> None:
        async with self._lock:
            await delete_table(self.family, self.table)
            self.last_text = None
