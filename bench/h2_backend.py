#!/usr/bin/env python3
"""The gRPC backend of bench/h2.sh, and its answer check.

  h2_backend.py serve PORT               grpc.aio server: /pk.Echo/Unary echoes its request bytes
  h2_backend.py check PORT AUTHORITY     one call through a proxy: exit 0 when the echo and status OK come back
  h2_backend.py frame FILE               writes one gRPC message (the request h2load sends) to FILE
  h2_backend.py latency LOGFILE          h2load --log-file: "p50_ms p99_ms n"
"""

from __future__ import annotations

import asyncio
import statistics
import sys

MESSAGE = b"ping from h2load"


async def _serve(port: int) -> None:
    import grpc

    async def unary(request: bytes, context: object) -> bytes:
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "pk.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(unary)}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def _check(port: int, authority: str) -> int:
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.default_authority", authority)]) as ch:
        reply, call = ch.unary_unary("/pk.Echo/Unary").with_call(MESSAGE, timeout=10)
    ok = reply == MESSAGE and call.code() == grpc.StatusCode.OK
    print("gRPC check:", "ok" if ok else f"unexpected {reply!r} {call.code()}")
    return 0 if ok else 1


def _latency(path: str) -> None:
    times = []
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit():
                times.append(int(parts[2]) / 1000.0)
    if not times:
        print("nan nan 0")
        return
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{statistics.median(times):.3f} {p99:.3f} {len(times)}")


def main() -> int:
    cmd, *args = sys.argv[1:]
    if cmd == "serve":
        asyncio.run(_serve(int(args[0])))
        return 0
    if cmd == "check":
        return _check(int(args[0]), args[1])
    if cmd == "frame":
        with open(args[0], "wb") as fh:
            fh.write(b"\x00" + len(MESSAGE).to_bytes(4, "big") + MESSAGE)
        return 0
    if cmd == "latency":
        _latency(args[0])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
