"""Apply a compiled ruleset with one ``nft -f`` (atomic: the whole file is one transaction).

Only runs nft when the text changed since the last successful apply. Errors keep the last good ruleset
in the kernel (the transaction is rolled back) and are raised as :class:`NftError` naming the table.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["NftApplier", "NftError", "delete_table", "run_nft"]

log = logging.getLogger("pyk3s.agent.proxy")


class NftError(RuntimeError):
    pass


async def run_nft(text: str, *, timeout: float = 20.0, args: tuple[str, ...] = ("-f", "-"),
                  component: str = "proxy") -> str:
    # no input, no pipe: nft may exit before reading one, and writing to a closed pipe is an error
    proc = await asyncio.create_subprocess_exec(
        "nft", *args, stdin=asyncio.subprocess.PIPE if text else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(text.encode() if text else None), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise NftError(f"{component}: nft {' '.join(args)} timed out after {timeout}s") from None
    if proc.returncode != 0:
        raise NftError(f"{component}: nft {' '.join(args)} failed: {err.decode(errors='replace').strip()}")
    return out.decode()


async def delete_table(family: str, table: str, component: str = "proxy") -> bool:
    """Delete one table if it exists; True when it did."""
    try:
        await run_nft("", args=("delete", "table", family, table), component=component)
    except NftError:
        return False
    return True


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
