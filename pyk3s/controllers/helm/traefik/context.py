"""Names, labels and small template helpers of the Traefik chart (its ``_helpers.tpl``), pure.

``Ctx`` holds the coalesced values and the release, and answers what the templates ask again and
again: the full name (``traefik`` for release ``traefik``, ``<release>-traefik`` otherwise), the
instance label ``<release>-<namespace>``, the labels every object carries, the proxy version the
chart compares features against. ``tpl`` evaluates the few template expressions the chart's
documentation shows inside values (``{{ template "traefik.name" . }}`` in an affinity rule); any
other expression is refused with the key that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from ..chart import Release, RenderError

__all__ = ["CHART_NAME", "Ctx", "port_name", "port_reference", "truthy", "version_tuple"]

CHART_NAME = "traefik"


def truthy(value: Any) -> TypeGuard[Any]:
    """Go template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str | list | dict | tuple):
        return len(value) > 0
    return True


def _trunc(text: str, n: int = 63) -> str:
    return text[:n].rstrip("-")


def port_name(name: str) -> str:
    """A valid port name: lower case, no leading ``-``, 15 characters at most, no trailing ``-``."""
    return name.lower().lstrip("-")[:15].rstrip("-")


def port_reference(ref: Any) -> Any:
    return port_name(ref) if isinstance(ref, str) else ref


_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """``v3.5.1`` -> (3, 5, 1, 1); a pre-release sorts before its release (last element 0)."""
    m = _SEMVER.match(version.strip())
    if not m:
        raise RenderError("image.tag", f"version {version!r} is not a semantic version the chart can compare")
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), 0 if m.group(4) else 1


def go_string(value: Any) -> str:
    """How a Go template prints a value: booleans lower case, whole floats without a fraction."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class Ctx:
    values: Mapping[str, Any]
    release: Release
    chart_label: str
    app_version: str

    def v(self, *path: str, default: Any = None) -> Any:
        node: Any = self.values
        for part in path:
            if not isinstance(node, Mapping):
                return default
            node = node.get(part)
            if node is None:
                return default
        return node

    @property
    def name(self) -> str:
        return _trunc(str(self.v("nameOverride") or CHART_NAME))

    @property
    def fullname(self) -> str:
        override = self.v("fullnameOverride")
        if override:
            return _trunc(str(override))
        name = str(self.v("nameOverride") or CHART_NAME)
        if name in self.release.name:
            return _trunc(self.release.name)
        return _trunc(f"{self.release.name}-{name}")

    @property
    def namespace(self) -> str:
        override = self.v("namespaceOverride")
        return _trunc(str(override)) if override else self.release.namespace

    @property
    def instance(self) -> str:
        return _trunc(str(self.v("instanceLabelOverride") or f"{self.release.name}-{self.namespace}"))

    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/instance": self.instance}

    def labels(self, *extra: Mapping[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {**self.selector(), "helm.sh/chart": self.chart_label,
                               "app.kubernetes.io/managed-by": "Helm"}
        for more in (self.v("commonLabels"), *extra):
            if more:
                out.update(more)
        return out

    @property
    def service_account_name(self) -> str:
        return str(self.v("serviceAccount", "name") or self.fullname)

    @property
    def cluster_role_name(self) -> str:
        return _trunc(f"{self.fullname}-{self.namespace}")

    @property
    def proxy_version(self) -> str:
        override = self.v("versionOverride")
        if override:
            return str(override)
        tag = go_string(self.v("image", "tag")) or self.app_version
        return tag.split("@", 1)[0].replace("latest-", "").replace("experimental-", "")

    def version_at_least(self, minimum: str) -> bool:
        return version_tuple(self.proxy_version) >= version_tuple(minimum)

    # -- values holding template expressions -------------------------------------------------------
    _EXPR = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
    _VALUES_REF = re.compile(r"^\.Values((?:\.[A-Za-z0-9_]+)+)$")

    def tpl(self, value: Any, key: str) -> Any:
        """``value`` with its template expressions evaluated (strings inside lists and maps too)."""
        if isinstance(value, str):
            if "{{" not in value:
                return value
            return self._EXPR.sub(lambda m: self._expr(m.group(1), key), value)
        if isinstance(value, list):
            return [self.tpl(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {self.tpl(k, f"{key}.{k}"): self.tpl(v, f"{key}.{k}") for k, v in value.items()}
        return value

    def _expr(self, expr: str, key: str) -> str:
        known = {
            'template "traefik.name" .': self.name, 'include "traefik.name" .': self.name,
            'template "traefik.fullname" .': self.fullname, 'include "traefik.fullname" .': self.fullname,
            'template "traefik.namespace" .': self.namespace, 'include "traefik.namespace" .': self.namespace,
            'template "traefik.instance-name" .': self.instance, 'include "traefik.instance-name" .': self.instance,
            ".Release.Name": self.release.name, ".Release.Namespace": self.release.namespace,
            ".Chart.Name": CHART_NAME,
        }
        if expr in known:
            return known[expr]
        m = self._VALUES_REF.match(expr)
        if m:
            return go_string(self.v(*m.group(1).split(".")[1:]))
        raise RenderError(key, f"template expression {{{{ {expr} }}}} is not one pyk3s evaluates "
                               f"(known: {', '.join(sorted(known))}, .Values.<key>)")
