"""Log format of the long-running commands (`pyk3s server`, `pyk3s agent`)."""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging"]


def setup_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
