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
