"""The ``mode: grpc`` health check: one call of the gRPC Health Checking Protocol v1
(``grpc.health.v1.Health/Check`` with an empty request, i.e. the server as a whole) over HTTP/2.

As in Traefik the call is made in cleartext (h2c) unless the health check's ``scheme`` asks for
something else, which Traefik's gRPC dialer then refuses ("no transport security set"); ``port``
replaces the server's port. The server passes when it answers SERVING.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from pyk3s.api.protobuf.decode import MalformedProtobuf, iter_fields

if TYPE_CHECKING:
    from .health import HealthSpec
    from .services import Target

__all__ = ["probe_grpc"]

_PATH = "/grpc.health.v1.Health/Check"
_STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
_GRPC_UNIMPLEMENTED = "12"


def _serving_status(message: bytes) -> int:
    """Field 1 (``status``, a varint enum) of a HealthCheckResponse; 0 (UNKNOWN) when absent."""
    try:
        for field, wire, value in iter_fields(message):
            if field == 1 and wire == 0:
                return int(value)
    except MalformedProtobuf as err:
        raise ValueError(f"the health check answer: {err}") from None
    return 0


async def probe_grpc(target: Target, spec: HealthSpec) -> str | None:
    """None when the server answers SERVING, else why the check failed."""
    if spec.scheme not in ("", "http", "h2c"):
        return "checking gRPC health: grpc: no transport security set"
    port = spec.port or target.port
    host = target.host
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        async with asyncio.timeout(spec.timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                return await _call(reader, writer, authority)
            finally:
                writer.close()
    except TimeoutError:
        return f"checking gRPC health: gRPC health check timeout after {spec.timeout:g}s"
    except (OSError, ValueError, h2.exceptions.H2Error) as err:
        return f"checking gRPC health: fail to connect to {authority}: {err}"


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str) -> str | None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", _PATH), (":authority", authority),
                            ("content-type", "application/grpc"), ("te", "trailers")])
    conn.send_data(sid, b"\x00\x00\x00\x00\x00", end_stream=True)  # an empty HealthCheckRequest
    writer.write(conn.data_to_send())
    body = bytearray()
    fields: dict[str, str] = {}
    while True:
        data = await reader.read(65536)
        if not data:
            return "checking gRPC health: the server closed the connection"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                fields.update((str(k), str(v)) for k, v in event.headers)
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                return f"checking gRPC health: the stream was reset (error code {event.error_code})"
            elif isinstance(event, h2.events.ConnectionTerminated):
                return "checking gRPC health: the server closed the connection"
            elif isinstance(event, h2.events.StreamEnded):
                return _verdict(fields, bytes(body))
        writer.write(conn.data_to_send())


def _verdict(fields: dict[str, str], body: bytes) -> str | None:
    if fields.get(":status") != "200":
        return f"checking gRPC health: HTTP status {fields.get(':status')}"
    code = fields.get("grpc-status", "")
    if code == _GRPC_UNIMPLEMENTED:
        return "checking gRPC health: gRPC server does not implement the health protocol"
    if code != "0":
        return f"checking gRPC health: gRPC health check failed: code {code} {fields.get('grpc-message', '')}".rstrip()
    if len(body) < 5:
        return "checking gRPC health: empty answer"
    size = int.from_bytes(body[1:5], "big")
    status = _serving_status(body[5:5 + size])
    if status != 1:
        return f"checking gRPC health: received gRPC status code: {_STATUS_NAMES.get(status, str(status))}"
    return None
