"""A page of a list (spec 4.10): the stored values, the revision they were read at, and the opaque
``continue`` token that resumes the list after the page's last key at that same revision."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from pyk3s.api.errors import bad_request
from pyk3s.api.store.base import KeyValue

__all__ = ["ListResult", "decode_continue", "encode_continue"]


@dataclass(slots=True)
class ListResult:
    revision: int
    kvs: list[KeyValue]
    continue_token: str = ""


def encode_continue(rev: int, key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"v": 1, "rv": rev, "start": key}).encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
