"""Query-parameter and header parsing shared by the handlers (spec 4.10, 3.1, 1.2)."""

from __future__ import annotations

from dataclasses import dataclass

from pyk3s.api.errors import bad_request
from pyk3s.api.request import ApiRequest

__all__ = ["MediaType", "TableRequest", "go_bool", "parse_accept", "query_bool", "query_int", "table_request"]


def go_bool(value: str | None) -> bool:
    """Parse like apimachinery: absent, "0" or "false" (any case) are false; anything else, "" included,
    is true."""
    if value is None:
        return False
    return value not in ("0",) and value.lower() != "false"


def query_bool(req: ApiRequest, name: str) -> bool:
    return go_bool(req.param(name))


def query_int(req: ApiRequest, name: str) -> int | None:
    v = req.param(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise bad_request(f"invalid value for {name}: {v!r} is not an integer") from None


@dataclass(frozen=True, slots=True)
class MediaType:
    type: str
    params: dict[str, str]


def parse_accept(accept: str) -> list[MediaType]:
    out: list[MediaType] = []
    for part in accept.split(","):
        bits = [b.strip() for b in part.split(";")]
        if not bits[0]:
            continue
        params: dict[str, str] = {}
        for b in bits[1:]:
            k, _, v = b.partition("=")
            params[k.strip().lower()] = v.strip()
        out.append(MediaType(bits[0].lower(), params))
    return out


@dataclass(frozen=True, slots=True)
class TableRequest:
    version: str  # meta.k8s.io version to answer with
    include_object: str  # None | Metadata | Object


def table_request(req: ApiRequest) -> TableRequest | None:
    """The Table form when the Accept header asks for it first (spec 3.1)."""
    accept = req.header("accept")
    if "as=Table" not in accept:
        return None
    for mt in parse_accept(accept):
        if mt.params.get("as") == "Table" and mt.params.get("g") == "meta.k8s.io":
            inc = req.param("includeObject") or "Metadata"
            if inc not in ("None", "Metadata", "Object"):
                raise bad_request(f"includeObject: Unsupported value: {inc!r}")
            return TableRequest(mt.params.get("v", "v1"), inc)
        if mt.type in ("application/json", "*/*") and not mt.params:
            return None
    return None
