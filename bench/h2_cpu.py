#!/usr/bin/env python3
"""Python CPU per proxied HTTP/2 request, without sockets: an HTTP/2 client connection and upstream
connections are driven with in-memory transports, so only the proxy's own Python work (h2's framing and
HPACK included) is timed. Requests arrive in batches of ``--streams`` concurrent streams, as from h2load -m.

  --upstream http1   GET, answered by HTTP/1.1 upstream connections (a 2-byte body)
  --upstream h2c     gRPC unary calls to one multiplexed h2c upstream connection (message and trailers);
                     the stand-in server's own CPU (an h2 connection in this process) is left out

Every warm-up answer is checked first (200, and ``grpc-status: 0`` for gRPC). ``--against TREE`` compares
with another checkout of pyk3s (the branch point, say): ``--rounds`` runs of each, interleaved in fresh
processes (this tree, then TREE, ...), CPU time only, so background load changes little; medians, the
spread and the ratio are printed.

  python bench/h2_cpu.py [--requests 50000] [--streams 10] [--upstream http1|h2c] [--profile]
                         [--against TREE [--rounds 5]]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.environ.get("H2_CPU_TREE") or HERE  # the pyk3s checkout measured (--against runs another one)
sys.path.insert(0, ROOT)

from h2.config import H2Configuration  # noqa: E402
from h2.connection import H2Connection  # noqa: E402
from h2.settings import SettingCodes  # noqa: E402

from pyk3s.addons.ingress.config.static import static_from_flags  # noqa: E402
from pyk3s.addons.ingress.providers import build_config  # noqa: E402
from pyk3s.addons.ingress.proxy.client import ClientConnection  # noqa: E402
from pyk3s.addons.ingress.proxy.h2upstream import H2UpstreamConnection  # noqa: E402
from pyk3s.addons.ingress.proxy.state import ProxyState  # noqa: E402
from pyk3s.addons.ingress.proxy.upstream import UpstreamConnection  # noqa: E402

RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 07:00:00 GMT\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")


class Sink:
    """A transport that keeps nothing (or, with ``keep``, what was written since the last ``take``)."""

    def __init__(self, keep: bool = False) -> None:
        self.written = 0
        self.protocol: Any = None
        self.keep = keep
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.keep:
            self.data.append(data)

    def take(self) -> bytes:
        out = b"".join(self.data)
        self.data.clear()
        return out

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 80)}.get(name, default)

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def objects() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "be", "namespace": "default"},
         "spec": {"ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "be-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "be"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 18480}], "endpoints": [{"addresses": ["127.0.0.1"]}]},
        {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute", "metadata": {"name": "r", "namespace": "default"},
         "spec": {"routes": [{"match": "Host(`h.example`)", "kind": "Rule", "services": [{"name": "be", "port": 80}]},
                             {"match": "Host(`g.example`)", "kind": "Rule",
                              "services": [{"name": "be", "port": 80, "scheme": "h2c"}]}]}},
    ]


GRPC_MESSAGE = b"\x00\x00\x00\x00\x10ping from h2load"


def grpc_batches(n: int, streams: int) -> tuple[bytes, list[bytes]]:
    """As client_batches, for gRPC unary calls."""
    cc = H2Connection(H2Configuration(client_side=True))
    cc.local_settings.update({SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    cc.initiate_connection()
    cc.increment_flow_control_window(2**31 - 1 - 65535)
    start = cc.data_to_send()
    cc.outbound_flow_control_window = 2**31 - 1  # the proxy grants that much; this client never reads it
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", "g.example"), (":path", "/pk.Echo/Unary"),
               ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "h2load nghttp2/1.52.0")]
    batches = []
    for _ in range(n // streams):
        for _ in range(streams):
            sid = cc.get_next_available_stream_id()
            cc.send_headers(sid, headers)
            cc.send_data(sid, GRPC_MESSAGE, end_stream=True)
        batches.append(cc.data_to_send())
        cc.streams.clear()
    return start, batches


class GrpcServer:
    """The upstream's side: an h2 server connection answering every call with its message and trailers."""

    def __init__(self) -> None:
        from h2.events import DataReceived, StreamEnded
        self.conn = H2Connection(H2Configuration(client_side=False))
        self.conn.local_settings = type(self.conn.local_settings)(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: 1000, SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(2**31 - 1 - 65535)
        self.ended, self.data = StreamEnded, DataReceived
        self.cpu = 0.0

    def answer(self, data: bytes) -> bytes:
        t0 = time.process_time()
        conn = self.conn
        for ev in conn.receive_data(data):
            if isinstance(ev, self.data):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, self.ended):
                sid = ev.stream_id
                conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
                conn.send_data(sid, GRPC_MESSAGE)
                conn.send_headers(sid, [("grpc-status", "0"), ("grpc-message", "")], end_stream=True)
        out = conn.data_to_send()
        conn.streams.clear()
        self.cpu += time.process_time() - t0
        return out


def client_batches(n: int, streams: int) -> tuple[bytes, list[bytes]]:
    """The client's preface and settings, then one chunk of ``streams`` GET requests per batch."""
    cc = H2Connection(H2Configuration(client_side=True))
    cc.local_settings.update({SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    cc.initiate_connection()
    cc.increment_flow_control_window(2**31 - 1 - 65535)
    start = cc.data_to_send()
    headers = [(":method", "GET"), (":scheme", "http"), (":authority", "h.example"), (":path", "/"),
               ("user-agent", "h2load nghttp2/1.52.0")]
    batches = []
    for _ in range(n // streams):
        for _ in range(streams):
            cc.send_headers(cc.get_next_available_stream_id(), headers, end_stream=True)
        batches.append(cc.data_to_send())
        cc.streams.clear()  # this client never reads its answers: forget its streams (h2 counts them per new one)
    return start, batches


def check_answers(data: bytes, expected: int, grpc: bool) -> None:
    """Every warm-up request got its answer: 200 (with ``grpc-status: 0`` trailers for gRPC), not an error."""
    from hpack import Decoder
    from hyperframe.frame import Frame, HeadersFrame
    decoder = Decoder()
    statuses: list[bytes] = []
    grpc_ok = 0
    pos = 0
    while pos + 9 <= len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[pos:pos + 9]))
        frame.parse_body(memoryview(data[pos + 9:pos + 9 + length]))
        pos += 9 + length
        if isinstance(frame, HeadersFrame):
            fields = dict(decoder.decode(frame.data, raw=True))
            if b":status" in fields:
                statuses.append(fields[b":status"])
            if fields.get(b"grpc-status") == b"0":
                grpc_ok += 1
    ok = statuses.count(b"200") == len(statuses) == expected and (not grpc or grpc_ok == expected)
    if not ok:
        raise SystemExit(f"wrong answers: {len(statuses)} of {expected} heads, statuses {sorted(set(statuses))}, "
                         f"{grpc_ok} with grpc-status 0")


def run(n: int, streams: int, upstream: str, profile: cProfile.Profile | None = None) -> float:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    static = static_from_flags(["--entryPoints.web.address=127.0.0.1:18481", "--providers.kubernetescrd"])
    state = ProxyState(loop, static)
    state.apply(build_config(static, objects()))
    http_target = next(t for svc in state.compiled.services.values() for t in getattr(svc, "targets", ())
                       if t.scheme == "http")
    pool = state.pool(http_target)
    ups = []
    for _ in range(streams):
        up = UpstreamConnection(pool)
        up.connection_made(Sink())  # type: ignore[arg-type]
        pool.put(up)
        ups.append(up)
    ct = Sink(keep=True)
    client = ClientConnection(state, "web", False, None)
    client.connection_made(ct)  # type: ignore[arg-type]
    grpc = upstream == "h2c"
    start, batches = (grpc_batches if grpc else client_batches)(n + 10 * streams, streams)
    client.data_received(start)
    h2 = ct.protocol
    server = GrpcServer()
    if grpc:  # the pool of the route's own h2c target (its key carries the route's transport)
        target = next(t for svc in state.compiled.services.values() for t in getattr(svc, "targets", ())
                      if t.scheme == "h2c")
        h2pool = state.h2_pool(target)
        assert h2pool is not None
        ut = Sink(keep=True)
        h2up = H2UpstreamConnection(h2pool)
        h2up.connection_made(ut)  # type: ignore[arg-type]
        h2pool.conns.append(h2up)
        h2up.data_received(server.answer(ut.take()))

    def one(batch: bytes) -> None:
        h2.data_received(batch)
        if grpc:
            loop.run_until_complete(asyncio.sleep(0))  # the requests go out
            h2up.data_received(server.answer(ut.take()))
        else:
            for up in ups:
                up.data_received(RESPONSE)
        loop.run_until_complete(asyncio.sleep(0))  # the flush callbacks

    for batch in batches[:10]:
        one(batch)
    check_answers(ct.take(), 10 * streams, grpc)
    ct.keep = False
    if profile is not None:
        profile.enable()
    server.cpu = 0.0
    t0 = time.process_time()
    for batch in batches[10:]:
        one(batch)
    spent = (time.process_time() - t0 - server.cpu) / (len(batches) - 10) / streams
    if profile is not None:
        profile.disable()
    loop.close()
    return spent


def compare(args: argparse.Namespace) -> int:
    """Interleaved runs of this tree and ``args.against``, each in a fresh process."""
    trees = {"this": HERE, "against": os.path.abspath(args.against)}
    spent: dict[str, list[float]] = {k: [] for k in trees}
    cmd = [sys.executable, os.path.abspath(__file__), "--requests", str(args.requests), "--streams",
           str(args.streams), "--upstream", args.upstream]
    for i in range(args.rounds):
        for name, tree in trees.items():
            out = subprocess.run(cmd, env={**os.environ, "H2_CPU_TREE": tree}, capture_output=True, text=True,
                                 check=False)
            if out.returncode:
                print(f"{name} ({tree}) failed:\n{out.stdout}{out.stderr}", file=sys.stderr)
                return 1
            us = float(out.stdout.split(" us/request")[0].rsplit(" ", 1)[1])
            spent[name].append(us)
            print(f"round {i + 1} {name:7} {us:8.2f} us/request", flush=True)
    med = {k: statistics.median(v) for k, v in spent.items()}
    what = "gRPC over h2c -> h2c" if args.upstream == "h2c" else "HTTP/2 -> HTTP/1.1"
    for name, tree in trees.items():
        print(f"{what} {name:7} median {med[name]:8.2f} us/request (min {min(spent[name]):.2f}, "
              f"max {max(spent[name]):.2f}, {args.rounds} runs)  {tree}")
    print(f"{what} this / against: {med['this'] / med['against']:.2f}x (medians)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--upstream", choices=("http1", "h2c"), default="http1")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--against", metavar="TREE", help="another pyk3s checkout to compare with, interleaved")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if args.against:
        return compare(args)
    if args.profile:
        prof = cProfile.Profile()
        spent = run(args.requests, args.streams, args.upstream, prof)
        pstats.Stats(prof).sort_stats(os.environ.get("SORT", "tottime")).print_stats(int(os.environ.get("TOP", "35")))
    else:
        spent = run(args.requests, args.streams, args.upstream)
    what = "gRPC over h2c -> h2c" if args.upstream == "h2c" else "HTTP/2 -> HTTP/1.1"
    print(f"pyk3s {what} {spent * 1e6:.2f} us/request ({args.streams} streams per batch, "
          f"{args.requests} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
