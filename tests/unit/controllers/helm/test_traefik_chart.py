"""The native Traefik chart against the chart's own test expectations (traefik_cases.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_kit import run_case

from pyk3s.controllers.helm.traefik import CHART

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "traefik_cases.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["it"] for c in CASES])
def test_chart_case(case: dict[str, Any]) -> None:
    run_case(CHART, case)


def test_gateway_values_are_rendered_not_reported_as_unserved() -> None:
    from pyk3s.controllers.helm.chart import Release
    from pyk3s.images.traefik_flags import unhonoured

    values = {"providers": {"kubernetesGateway": {"enabled": True, "experimentalChannel": True}},
              "gateway": {"annotations": {"a": "b"}}, "gatewayClass": {"labels": {"c": "d"}}}
    rendered = CHART.render(values, Release("traefik", "kube-system"))
    kinds = {m.obj["kind"] for m in rendered.objects}
    assert {"Gateway", "GatewayClass"} <= kinds
    keys = {i.key for i in rendered.ignored}
    assert not any(k.startswith(("gateway", "gatewayClass")) for k in keys)
    # what is still reported is exactly the provider's arguments the ingress's flag table does not honour
    args = rendered.objects[[m.obj["kind"] for m in rendered.objects].index("Deployment")].obj[
        "spec"]["template"]["spec"]["containers"][0]["args"]
    gateway_args = [a for a in args if a.startswith("--providers.kubernetesgateway")]
    assert gateway_args
    reported = {i.reason.split(": ", 1)[0] for i in rendered.ignored if i.key.startswith("providers.kubernetesGateway")}
    assert reported == {u.flag for u in unhonoured(gateway_args)}
