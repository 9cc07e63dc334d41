"""The event loop of the long-running commands (`pyk3s server`, `pyk3s agent`)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

__all__ = ["run_until_signal"]


def run_until_signal(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main()`` on uvloop until it ends or SIGTERM/SIGINT cancels it; what it raises (a
    cancellation included) goes to the caller, which knows how to report it."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; this only keeps a broken venv usable
        pass

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        await main()

    asyncio.run(runner())
