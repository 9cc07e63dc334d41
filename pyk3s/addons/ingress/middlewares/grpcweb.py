"""grpcWeb: gRPC-Web requests from browsers (often HTTP/1.1) to a gRPC backend (Traefik
pkg/middlewares/grpcweb, on github.com/traefik/grpc-web; doc/PROTOCOL-WEB.md of grpc/grpc).

    grpcWeb: {allowOrigins: ["https://app.example", "*"]}

- A ``POST`` whose Content-Type starts with ``application/grpc-web`` becomes gRPC: the type's
  ``application/grpc-web`` (``-text``) prefix turns into ``application/grpc``, Content-Length is
  dropped, ``te: trailers`` is set (gRPC servers require it), ``-text`` bodies are base64-decoded on
  their way up. The backend (``scheme: h2c``) answers
  in gRPC; the answer goes back with the type turned into ``application/grpc-web`` (``-text``), every
  header name plus ``grpc-status`` and ``grpc-message`` in ``Access-Control-Expose-Headers``, and the
  HTTP/2 trailers as a last body frame (flag byte 0x80, 4-byte length, ``name: value\\r\\n`` lines in
  lower case); ``-text`` answers are base64, each chunk padded on its own as gRPC-Web allows.
- CORS as the wrapper's rs/cors: an ``OPTIONS`` whose ``Access-Control-Request-Headers`` names
  ``x-grpc-web`` is answered 204 here, with ``Access-Control-Allow-Origin`` (the origin),
  ``-Allow-Credentials: true``, ``-Allow-Methods`` (the requested one of GET, POST, HEAD),
  ``-Allow-Headers`` (those requested) and ``-Max-Age: 600`` when the origin is in ``allowOrigins``
  (or that holds ``*``); gRPC-Web answers carry ``Access-Control-Allow-Origin`` and
  ``-Allow-Credentials`` for such origins. ``Vary`` names what the answer depends on.
- Anything else passes through untouched. (gRPC-Web over WebSockets is not offered, as in Traefik.)
"""

from __future__ import annotations

import base64
import binascii

from ..http.reply import Reply
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler

__all__ = ["GrpcWeb"]

_WEB = "application/grpc-web"
_TEXT = "application/grpc-web-text"
_METHODS = ("GET", "POST", "HEAD")


def _canonical(name: str) -> str:
    """Go's http.CanonicalHeaderKey."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def trailer_frame(trailers: list[tuple[str, str]], sent: set[str]) -> bytes:
    """The gRPC-Web frame that carries trailers (names already sent as headers left out)."""
    lines = sorted((k.lower(), v) for k, v in trailers if k.lower() not in sent and k.lower() != "trailer")
    block = "".join(f"{k}: {v}\r\n" for k, v in lines).encode("latin-1", "replace")
    return b"\x80" + len(block).to_bytes(4, "big") + block


class _Base64Chunks:
    """-text answers: every chunk base64-encoded and padded on its own."""

    __slots__ = ()

    def compress(self, data: bytes, /) -> bytes:
        return base64.b64encode(data)

    def flush(self, mode: int, /) -> bytes:
        return b""


class _Base64Stream:
    """-text requests: base64 decoded across chunk boundaries (padded parts may follow each other)."""

    __slots__ = ("rest",)

    def __init__(self) -> None:
        self.rest = b""

    def __call__(self, data: bytes) -> bytes:
        data = self.rest + data.replace(b"\r", b"").replace(b"\n", b"")
        end = len(data) // 4 * 4
        self.rest = data[end:]
        out = []
        start = 0
        try:
            while start < end:
                pad = data.find(b"=", start, end)
                stop = end if pad < 0 else (pad // 4 + 1) * 4
                out.append(base64.b64decode(data[start:stop], validate=True))
                start = stop
        except (binascii.Error, ValueError):
            return b"".join(out)  # the backend sees a short message and says so in grpc-status
        return b"".join(out)


class GrpcWeb(MiddlewareHandler):
    __slots__ = ("origins", "any_origin", "text_mark")
    needs_response = True

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        origins = config.get("allowOrigins") or []
        if not isinstance(origins, list | tuple):
            raise ValueError("allowOrigins must be a list")
        self.origins = frozenset(str(o) for o in origins)
        self.any_origin = "*" in self.origins
        self.text_mark = object()  # marks a -text request (the middleware itself marks a binary one)

    def allowed(self, origin: str) -> bool:
        return bool(origin) and (self.any_origin or origin in self.origins)

    def on_request(self, req: HttpRequest) -> Reply | None:
        method = req.method
        if method == "OPTIONS" and "x-grpc-web" in req.header("access-control-request-headers").lower():
            return self.preflight(req)
        ctype = req.header("content-type")
        if method != "POST" or not ctype.startswith(_WEB):
            return None
        text = ctype.startswith(_TEXT)
        req.set_header("content-type", ctype.replace(_TEXT if text else _WEB, "application/grpc", 1))
        req.del_header("content-length")
        req.set_header("te", "trailers")  # gRPC servers check it ("used to detect incompatible proxies")
        if req.body_mode == "length":
            req.body_mode = "chunked"  # the decoded length is not the one sent
        if req.marks is None:
            req.marks = set()
        req.marks.add(id(self.text_mark) if text else id(self))
        if text and req.exchange is not None:
            req.exchange.decode_request_body(_Base64Stream())
        return None

    def preflight(self, req: HttpRequest) -> Reply:
        headers = [("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")]
        origin = req.header("origin")
        wanted = req.header("access-control-request-method").upper()
        if self.allowed(origin) and wanted in _METHODS:
            headers += [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"),
                        ("Access-Control-Allow-Methods", wanted)]
            asked = req.header("access-control-request-headers")
            if asked:
                headers.append(("Access-Control-Allow-Headers", asked))
            headers.append(("Access-Control-Max-Age", "600"))
        return Reply(204, headers)

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        marks = req.marks
        if not marks:
            return status
        text = id(self.text_mark) in marks
        if not text and id(self) not in marks:
            return status
        web = _TEXT if text else _WEB
        kept = []
        for k, v in headers:
            lk = k.lower()
            if lk in ("trailer", "content-length"):
                continue
            if lk == "content-type":
                v = v.replace("application/grpc", web, 1)
            kept.append((k, v))
        origin = req.header("origin")
        kept.append(("Vary", "Origin"))
        if self.allowed(origin):
            kept += [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]
        names = sorted({_canonical(k) for k, _ in kept})
        kept.append(("Access-Control-Expose-Headers", ", ".join([*names, "grpc-status", "grpc-message"])))
        headers[:] = kept
        ex = req.exchange
        if ex is not None:
            sent = {k.lower() for k, _ in kept}
            ex.on_trailers = lambda trailers: trailer_frame(trailers, sent)
            if text:
                ex.encoder = _Base64Chunks()
        return status
