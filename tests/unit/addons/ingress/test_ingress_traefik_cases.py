"""The providers against Traefik's own provider tests (pkg/provider/kubernetes/ingress and .../crd).

``traefik_cases/*.json`` hold those tests' cases as data: the Kubernetes objects of each fixture, the
provider options of the test and the whole dynamic configuration Traefik expects (its JSON spelling).
Each case runs the pyk3s provider on the same objects and compares :func:`traefik_json` of the result
with Traefik's. One deliberate difference: a router or service that Traefik drops for a reference it
cannot resolve is kept here with its error (the API shows why it is not served), and so is a
middleware Traefik drops; such entries are left out before comparing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyk3s.addons.ingress.config.dynamic import DynamicConfig, traefik_json
from pyk3s.addons.ingress.config.static import ProviderOptions
from pyk3s.addons.ingress.providers.crd import build_crd_config
from pyk3s.addons.ingress.providers.ingress import build_ingress_config

CASES = Path(__file__).parent / "traefik_cases"

_OPTIONS = {
    "allowCrossNamespace": "allow_cross_namespace", "allowEmptyServices": "allow_empty_services",
    "allowExternalNameServices": "allow_external_name_services", "ingressClass": "ingress_class",
    "defaultRuleSyntax": "default_rule_syntax", "strictPrefixMatching": "strict_prefix_matching",
    "nativeLBByDefault": "native_lb_by_default", "disableClusterScopeResources": "disable_cluster_scope_resources",
    "disableIngressClassLookup": "disable_ingress_class_lookup", "crossProviderNamespaces": "cross_provider_namespaces",
    "namespaces": "namespaces",
}


def _load(name: str) -> tuple[dict[str, Any], list[Any]]:
    data = json.loads((CASES / name).read_text(encoding="utf-8"))
    return data, [pytest.param(c, id=c["test"]) for c in data["cases"]]


INGRESS, INGRESS_CASES = _load("ingress.json")
CRD, CRD_CASES = _load("crd.json")


def _options(case: dict[str, Any]) -> ProviderOptions:
    kw: dict[str, Any] = {}
    for key, value in case["options"].items():
        if key in ("crossProviderNamespaces", "namespaces"):
            value = tuple(value)
        kw[_OPTIONS[key]] = value
    kw.setdefault("default_rule_syntax", "v3")
    return ProviderOptions(**kw)


def _compact(value: Any) -> Any:
    """Go's omitempty on both sides: empty strings, lists, maps, false and null are left out."""
    if isinstance(value, dict):
        out = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {}, False)}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _served(cfg: DynamicConfig) -> tuple[dict[str, Any], list[str]]:
    """traefik_json without the routers and services kept for their errors (and the errors)."""
    out = traefik_json(cfg)
    errors = []
    for name, r in cfg.routers.items():
        if r.error:
            errors.append(f"router {name}: {r.error}")
            out["http"]["routers"].pop(name)
    for name, s in cfg.services.items():
        if s.error:
            errors.append(f"service {name}: {s.error}")
            out["http"]["services"].pop(name)
    for name, m in cfg.middlewares.items():
        if m.error:
            errors.append(f"middleware {name}: {m.error}")
            out["http"]["middlewares"].pop(name)
    return out, errors


def _expected(case: dict[str, Any]) -> dict[str, Any]:
    exp = case["expected"] or {}
    return {"http": exp.get("http") or {}, "tls": exp.get("tls") or {}}


def _objects(data: dict[str, Any], case: dict[str, Any]) -> list[dict[str, Any]]:
    return [obj for name in case["fixtures"] for obj in data["fixtures"][name]]


@pytest.mark.parametrize("case", INGRESS_CASES)
def test_ingress_provider_matches_traefik(case: dict[str, Any]) -> None:
    cfg = build_ingress_config(_objects(INGRESS, case), _options(case))
    got, _ = _served(cfg)
    assert _compact(got) == _compact(_expected(case))


@pytest.mark.parametrize("case", CRD_CASES)
def test_crd_provider_matches_traefik(case: dict[str, Any]) -> None:
    if case["expected"] is None:
        pytest.skip("Traefik's test has no expected configuration for this case")
    cfg = build_crd_config(_objects(CRD, case), _options(case))
    got, _ = _served(cfg)
    assert _compact(got) == _compact(_expected(case))
