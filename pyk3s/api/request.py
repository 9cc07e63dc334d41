"""Framework-free request and response of the API server, and the options a write request carries.

The HTTP adapter (``pyk3s.api.http``) turns aiohttp requests into :class:`ApiRequest`, and the
in-process client transport (``pyk3s.client.transport``) builds them directly, so controller tests run
against the real API code on a memory store without sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["ApiRequest", "ApiResponse", "UserInfo", "WriteOptions"]


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""

    @property
    def is_admin(self) -> bool:
        return "system:masters" in self.groups


@dataclass(slots=True)
class ApiRequest:
    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""
    user: UserInfo | None = None

    def param(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return default

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(slots=True)
class ApiResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    # A streaming answer (watch, log -f): chunks are written as they come; the stream ends the response.
    stream: AsyncIterator[bytes] | None = None


@dataclass(slots=True)
class WriteOptions:
    """``dryRun``, ``fieldManager`` and ``fieldValidation`` of a write; ``warnings`` collects what the
    answer's ``Warning`` header reports."""
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    warnings: list[str] = field(default_factory=list)
