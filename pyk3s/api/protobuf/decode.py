"""The protobuf wire format and the decoder that turns it into JSON objects, driven by ``messages``.

The rules that make the output match Go's JSON are in the package docstring.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from .messages import KINDS, MESSAGES

__all__ = ["MAGIC", "MalformedProtobuf", "UnsupportedProtobuf", "decode_body", "decode_message", "iter_fields"]

MAGIC = b"k8s\x00"


class UnsupportedProtobuf(Exception):
    """The body is protobuf of a kind (or shape) this server cannot decode: answer 415."""


class MalformedProtobuf(UnsupportedProtobuf):
    """The bytes are not valid protobuf wire format."""


# -- wire format ------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise MalformedProtobuf("protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise MalformedProtobuf("protobuf: varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): int for varint/fixed, bytes for length-delimited."""
    pos, end = 0, len(buf)
    value: int | bytes
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise MalformedProtobuf("protobuf: field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise MalformedProtobuf("protobuf: truncated fixed64")
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise MalformedProtobuf(f"protobuf: field {number}: length {size} past the end")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            if pos + 4 > end:
                raise MalformedProtobuf("protobuf: truncated fixed32")
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise MalformedProtobuf(f"protobuf: field {number}: unsupported wire type {wire}")
        yield number, wire, value


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(v: Any, where: str) -> str:
    if not isinstance(v, bytes):
        raise MalformedProtobuf(f"protobuf: {where}: expected a length-delimited string")
    try:
        return v.decode()
    except UnicodeDecodeError as err:
        raise MalformedProtobuf(f"protobuf: {where}: invalid UTF-8") from err


def _int(v: Any, where: str) -> int:
    if not isinstance(v, int):
        raise MalformedProtobuf(f"protobuf: {where}: expected a varint")
    return _signed(v)


def _time(buf: bytes) -> str | None:
    seconds = 0
    for n, _w, v in iter_fields(buf):
        if n == 1:
            seconds = _signed(v)
    if seconds == 0:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(buf: bytes, where: str) -> str:
    for n, _w, v in iter_fields(buf):
        if n == 1:
            return _text(v, where)
    return "0"


def _int_or_string(buf: bytes) -> int | str:
    kind, ival, sval = 0, 0, ""
    for n, _w, v in iter_fields(buf):
        if n == 1:
            kind = _signed(v)
        elif n == 2:
            ival = _signed(v)
        elif n == 3:
            sval = _text(v, "IntOrString.strVal")
    return sval if kind == 1 else ival


def _map_entry(buf: bytes) -> tuple[str, Any]:
    key, value = "", b""
    for n, _w, v in iter_fields(buf):
        if n == 1:
            key = _text(v, "map key")
        elif n == 2:
            value = v
    return key, value


def _scalar(kind: str, v: Any, where: str) -> Any:
    if kind == "s":
        return _text(v, where)
    if kind == "b":
        return base64.b64encode(v).decode()
    if kind == "i":
        return _int(v, where)
    if kind == "bool":
        return bool(_int(v, where))
    if kind == "time":
        return _time(v)
    if kind == "q":
        return _quantity(v, where)
    if kind == "ios":
        return _int_or_string(v)
    if kind == "json":
        try:
            return json.loads(v)
        except ValueError as err:
            raise MalformedProtobuf(f"protobuf: {where}: invalid JSON") from err
    return decode_message(kind, v, where)


def _map_value(kind: str, raw: Any, where: str) -> Any:
    if kind == "ms":
        return _text(raw, where)
    if kind == "mb":
        return base64.b64encode(raw).decode()
    if kind == "mq":
        return _quantity(raw, where)
    return [_text(item, where) for n, _w, item in iter_fields(raw) if n == 1]  # mx: ExtraValue


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == 0 or value is False


def decode_message(name: str, buf: bytes, where: str = "") -> dict:
    """Decode ``buf`` as message ``name`` of :data:`MESSAGES` into its JSON form."""
    spec = MESSAGES[name]
    where = f"{where}.{name}" if where else name
    out: dict[str, Any] = {}
    for number, _wire, value in iter_fields(buf):
        field = spec.get(number)
        if field is None:
            continue
        json_name, kind, flags = field
        here = f"{where}.{json_name}"
        if kind in ("ms", "mb", "mq", "mx"):
            key, raw = _map_entry(value)
            out.setdefault(json_name, {})[key] = _map_value(kind, raw, here)
        elif "r" in flags:
            out.setdefault(json_name, []).append(_scalar(kind, value, here))
        elif "in" in flags:
            out.setdefault(json_name, {}).update(_scalar(kind, value, here))
        else:
            out[json_name] = _scalar(kind, value, here)
    result: dict[str, Any] = {}
    for json_name, kind, flags in spec.values():
        if json_name not in out:
            continue
        value = out[json_name]
        if "in" in flags:
            result.update(value)
        elif kind in ("time", "ios") and (value is None or value in ("", 0)):
            continue
        elif "k" in flags or isinstance(value, (dict, list)) or not _empty(value):
            result[json_name] = value
    return result


def decode_body(body: bytes) -> dict:
    """A ``k8s\\x00``-prefixed protobuf body -> the object as JSON would have carried it."""
    if not body.startswith(MAGIC):
        raise MalformedProtobuf("protobuf: body does not start with the k8s\\x00 magic")
    api_version = kind = ""
    raw = b""
    encoding = ""
    for number, _wire, value in iter_fields(body[len(MAGIC):]):
        if number == 1:
            for n, _w, v in iter_fields(value):
                if n == 1:
                    api_version = _text(v, "Unknown.typeMeta.apiVersion")
                elif n == 2:
                    kind = _text(v, "Unknown.typeMeta.kind")
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _text(value, "Unknown.contentEncoding")
    if encoding:
        raise UnsupportedProtobuf(f"protobuf: content encoding {encoding!r} is not supported")
    group = api_version.rpartition("/")[0]
    message = KINDS.get((group, kind))
    if message is None:
        raise UnsupportedProtobuf(
            f"protobuf: kind {kind!r} of {api_version!r} has no protobuf decoder in pyk3s; send it as JSON"
        )
    obj: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    obj.update(decode_message(message, raw))
    return obj
