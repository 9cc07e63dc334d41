"""compress (spec 5.12): gzip responses for clients that accept it.

    compress: {excludedContentTypes: [text/event-stream], includedContentTypes: [], minResponseBodyBytes: 1024}

Only gzip is produced (br/zstd need libraries pyk3s does not ship); already-encoded responses,
small bodies (known length below the minimum) and excluded content types pass unchanged.
"""

from __future__ import annotations

import zlib

from ..config.errors import ConfigError
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler

__all__ = ["Compress"]


def _accepts_gzip(value: str) -> bool:
    for part in value.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return "q=0" not in params.replace(" ", "") or "q=0." in params.replace(" ", "")
    return False


class Compress(MiddlewareHandler):
    __slots__ = ("excluded", "included", "min_bytes")
    needs_response = True

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.excluded = [c.split(";")[0].strip().lower() for c in config.get("excludedContentTypes") or ()]
        self.included = [c.split(";")[0].strip().lower() for c in config.get("includedContentTypes") or ()]
        if self.excluded and self.included:
            raise ConfigError("compress: excludedContentTypes and includedContentTypes are mutually exclusive")
        self.min_bytes = int(config.get("minResponseBodyBytes") or 1024)

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        ex = req.exchange
        if ex is None or req.method == "HEAD" or status < 200 or status in (204, 304):
            return status
        if not _accepts_gzip(req.header("accept-encoding")):
            return status
        ctype = ""
        length = -1
        for k, v in headers:
            lk = k.lower()
            if lk == "content-encoding":
                return status
            if lk == "content-type":
                ctype = v.split(";")[0].strip().lower()
            elif lk == "content-length" and v.strip().isdigit():
                length = int(v)
        if 0 <= length < self.min_bytes:
            return status
        if (self.included and ctype not in self.included) or ctype in self.excluded:
            return status
        headers[:] = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Encoding", "gzip"))
        headers.append(("Vary", "Accept-Encoding"))
        ex.encoder = zlib.compressobj(6, zlib.DEFLATED, 31)
        return status
