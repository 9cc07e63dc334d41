"""The ingress's one Go-duration parser."""

from __future__ import annotations

import pytest

from pyk3s.addons.ingress.config.durations import duration_seconds
from pyk3s.addons.ingress.config.errors import ConfigError


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 7.0), ("", 7.0), (3, 3.0), (0.25, 0.25), ("2", 2.0), ("1.5", 1.5), ("100ms", 0.1), ("1s", 1.0),
    ("1m30s", 90.0), ("1.5h", 5400.0), ("250us", 0.00025), ("250µs", 0.00025), ("10ns", 1e-8), (" 2s ", 2.0),
])
def test_durations(value, seconds):
    assert duration_seconds(value, 7.0, "x") == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "why"), [
    ("1d", "invalid duration '1d'"), ("s", "invalid duration 's'"), ("1m30", "(missing unit)"),
])
def test_bad_durations_name_the_field(value, why):
    with pytest.raises(ConfigError, match=r"^ingress: retry\.initialInterval: ") as err:
        duration_seconds(value, 0.0, "retry.initialInterval")
    assert why in str(err.value)
