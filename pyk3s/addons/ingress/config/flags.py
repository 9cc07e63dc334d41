"""Reporting the arguments the ingress accepts but does not act on (the table: :mod:`pyk3s.images.traefik_flags`).

At start each such argument is logged as a warning and recorded as a Warning event
``UnsupportedArgument`` on the ingress's own pod (``POD_NAME``/``POD_NAMESPACE``), so nothing given to
the ingress is ignored silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from pyk3s.images.traefik_flags import Unhonoured, unhonoured

__all__ = ["report_unhonoured"]

log = logging.getLogger("pyk3s.ingress")


async def report_unhonoured(client: Any, argv: Iterable[str]) -> list[Unhonoured]:
    """Log each ignored argument and record it as a Warning event on this pod (``POD_NAME``/``POD_NAMESPACE``)."""
    found = unhonoured(argv)
    for item in found:
        log.warning("traefik: argument %s", item)
    pod, ns = os.environ.get("POD_NAME", ""), os.environ.get("POD_NAMESPACE", "")
    if not found or client is None or not pod or not ns:
        return found
    meta: dict[str, str] = {"name": pod, "namespace": ns}
    ref = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
    try:
        live = await client.resource("v1", "pods").get(pod, ns)
        meta["uid"] = (live.get("metadata") or {}).get("uid", "")
    except Exception as err:  # noqa: BLE001 - the event is still worth recording without the uid
        log.debug("traefik: reading pod %s/%s: %s", ns, pod, err)
    for item in found:
        await client.record_event(ref, type="Warning", reason="UnsupportedArgument",
                                  message=f"argument {item}", component="traefik")
    return found
