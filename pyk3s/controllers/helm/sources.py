"""Where a HelmChart's values come from, in helm-controller's order (k3s.md 5.3.2).

``values_sources`` lists them: the HelmChart's ``valuesContent``, each key of its ``valuesSecrets``,
the HelmChartConfig's ``valuesContent`` and ``valuesSecrets``; :func:`user_values` merges them and puts
the HelmChart's ``set`` map on top. A Secret named in ``valuesSecrets`` must exist unless its entry has
``ignoreUpdates: true``; an entry without keys reads nothing (as in helm-controller).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .values import ValuesError, ValuesSource, merge_sources, parse_set, parse_values

__all__ = ["SecretReader", "user_values", "values_sources"]

SecretReader = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]


def _where(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', 'HelmChart')} {meta.get('namespace')}/{meta.get('name')}"


async def _secret_sources(obj: Mapping[str, Any], read: SecretReader) -> list[ValuesSource]:
    out: list[ValuesSource] = []
    ns = (obj.get("metadata") or {}).get("namespace") or "default"
    for i, ref in enumerate((obj.get("spec") or {}).get("valuesSecrets") or []):
        name, keys, optional = ref.get("name") or "", ref.get("keys") or [], bool(ref.get("ignoreUpdates"))
        where = f"{_where(obj)} spec.valuesSecrets[{i}]"
        if not keys:
            continue
        secret = await read(ns, name)
        if secret is None:
            if optional:
                continue
            raise ValuesError(where, f'Secret "{ns}/{name}" not found')
        data = secret.get("data") or {}
        for key in keys:
            if key not in data:
                if optional:
                    continue
                raise ValuesError(where, f'Secret "{ns}/{name}" has no key "{key}"')
            try:
                text = base64.b64decode(data[key]).decode()
            except (ValueError, UnicodeDecodeError):
                raise ValuesError(where, f'Secret "{ns}/{name}" key "{key}" is not UTF-8 text') from None
            out.append(ValuesSource(f'{where} (Secret {name} key "{key}")', text))
    return out


async def values_sources(chart: Mapping[str, Any], config: Mapping[str, Any] | None,
                         read: SecretReader) -> list[ValuesSource]:
    out = [ValuesSource(f"{_where(chart)} spec.valuesContent", (chart.get("spec") or {}).get("valuesContent") or "")]
    out += await _secret_sources(chart, read)
    if config is not None:
        config = {"kind": "HelmChartConfig", **config}
        out.append(ValuesSource(f"{_where(config)} spec.valuesContent",
                                (config.get("spec") or {}).get("valuesContent") or ""))
        out += await _secret_sources(config, read)
    return out


async def user_values(chart: Mapping[str, Any], config: Mapping[str, Any] | None,
                      read: SecretReader) -> dict[str, Any]:
    """The user-supplied values (Helm's ``config``): every source merged, then ``spec.set``."""
    sources = await values_sources(chart, config, read)
    merged = merge_sources([parse_values(s) for s in sources])
    spec_set = (chart.get("spec") or {}).get("set") or {}
    if spec_set:
        merged = parse_set(spec_set, f"{_where(chart)} spec.set", merged)
    return merged
