"""Request bodies: JSON, YAML (apply patches) and Kubernetes protobuf (spec 9) to plain dicts.

With ``fieldValidation=Strict`` duplicate JSON keys are refused like kube-apiserver does
(400 ``strict decoding error: json: duplicate field "x"``).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from pyk3s.api import protobuf
from pyk3s.api.errors import StatusError, bad_request, unsupported_media_type
from pyk3s.api.request import ApiRequest

__all__ = ["JSON_TYPES", "PROTOBUF", "decode_body", "media_type"]

PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_TYPES = ("application/json", "")
_ACCEPTED = ["application/json", "application/yaml", PROTOBUF]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def media_type(req: ApiRequest) -> str:
    return req.header("content-type").split(";", 1)[0].strip().lower()


class _Dup(Exception):
    pass


def _no_dups(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Dup(k)
        out[k] = v
    return out


def parse_json(raw: bytes, strict: bool = False) -> Any:
    try:
        if strict:
            return json.loads(raw, object_pairs_hook=_no_dups)
        return json.loads(raw)
    except _Dup as e:
        raise bad_request(f'strict decoding error: json: duplicate field "{e.args[0]}"') from None
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"the object provided is unrecognized: invalid JSON: {e}") from None
    except RecursionError:
        raise bad_request(f"the object provided is unrecognized: invalid JSON: {too_deep(raw)}") from None


# kube-apiserver decodes with Go's encoding/json scanner, which refuses nesting past 10,000 levels
GO_MAX_DEPTH = 10_000


def too_deep(raw: bytes) -> str:
    """Why a body the JSON decoder could not descend is refused: Go's message past Go's limit, else ours."""
    depth = deepest = 0
    in_string = escaped = False
    for i, c in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:           # backslash
                escaped = True
            elif c == 0x22:           # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):       # [ {
            depth += 1
            if depth > GO_MAX_DEPTH:
                return f"invalid character '{chr(raw[i])}' exceeded max depth"
            deepest = max(deepest, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return (f"nested {deepest} levels deep, more than this server decodes "
            f"(kube-apiserver's limit is {GO_MAX_DEPTH} levels)")


def parse_yaml(raw: bytes) -> Any:
    try:
        return yaml.load(raw, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        raise bad_request(f"error decoding YAML: {e}") from None


def decode_body(req: ApiRequest, *, strict: bool = False, allow_yaml: bool = True) -> Any:
    """The request body as Python data according to its Content-Type."""
    ct = media_type(req)
    raw = req.body
    if not raw:
        raise bad_request("the request body is empty")
    if ct in JSON_TYPES or ct.endswith("+json"):
        return parse_json(raw, strict)
    if ct == PROTOBUF:
        try:
            return protobuf.decode_body(raw)
        except protobuf.UnsupportedProtobuf as e:
            raise StatusError(415, "UnsupportedMediaType", str(e) or "this kind cannot be sent as protobuf; use "
                           "application/json") from None
    if allow_yaml and ct in ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml"):
        if raw.lstrip()[:1] in (b"{", b"["):
            return parse_json(raw, strict)
        return parse_yaml(raw)
    raise unsupported_media_type(ct, _ACCEPTED)
