"""Stopping asyncio tasks: cancelled, then awaited, so that none outlives what started it and no error of
a stopped one is left unretrieved. Shared by the API server (relays, watch fan-out, background syncs),
the client's leader election and the kubelet's relays.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["stop_tasks", "until_first_ends"]


async def stop_tasks(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and wait until each has ended, whatever it raised."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


async def until_first_ends(*tasks: asyncio.Future[Any]) -> set[asyncio.Future[Any]]:
    """Wait until one of ``tasks`` ends, then stop all of them; the ones that had ended by themselves."""
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await stop_tasks(*tasks)
    return done
