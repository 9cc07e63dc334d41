"""What a packaged chart is to the helm controller, and what a render returns (pure data).

A packaged chart is rendered natively: ``render(user_values, release)`` coalesces the user's values
with the chart's defaults, refuses bad values with :class:`RenderError` (naming the key, as the
chart's schema and ``fail`` checks would), and returns the objects with the template each came from,
plus the values pyk3s renders but cannot honour (:class:`Ignored`), which the controller reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Ignored", "Manifest", "PackagedChart", "Release", "RenderError", "Rendered"]


class RenderError(Exception):
    """Values the chart refuses; ``key`` is the value key at fault (``""`` when it is not one key)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class Release:
    """The release a chart is rendered for (Helm's ``.Release``)."""

    name: str
    namespace: str
    revision: int = 1
    is_install: bool = True


@dataclass(frozen=True, slots=True)
class Ignored:
    """A value pyk3s does not act on: the key, and why (the argument it produced, when there is one)."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Manifest:
    """One rendered object and the chart template it came from (``traefik/templates/service.yaml``)."""

    source: str
    obj: dict[str, Any]

    @property
    def ident(self) -> tuple[str, str, str, str]:
        meta = self.obj.get("metadata") or {}
        return (str(self.obj.get("apiVersion", "")), str(self.obj.get("kind", "")),
                str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclass(frozen=True, slots=True)
class Rendered:
    objects: tuple[Manifest, ...]
    ignored: tuple[Ignored, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)


RenderFn = Callable[[Mapping[str, Any], Release], Rendered]


@dataclass(frozen=True, slots=True)
class PackagedChart:
    """A chart pyk3s ships and renders itself; ``archive`` is the file name K3s serves it under."""

    name: str
    version: str
    app_version: str
    description: str
    defaults: Mapping[str, Any] = field(repr=False)
    render: RenderFn = field(repr=False)

    @property
    def archive(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def label(self) -> str:
        """The ``helm.sh/chart`` label value: ``name-version`` with ``+`` made ``_``, 63 characters at most."""
        return f"{self.name}-{self.version}".replace("+", "_")[:63].rstrip("-")

    def metadata(self) -> dict[str, Any]:
        return {"apiVersion": "v2", "name": self.name, "version": self.version, "appVersion": self.app_version,
                "description": self.description, "type": "application"}
