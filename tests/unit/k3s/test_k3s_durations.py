"""Go durations as K3s's kubelet arguments and the Corefile write them."""

from __future__ import annotations

import pytest

from pyk3s.k3s.durations import parse_go_duration


@pytest.mark.parametrize(("text", "seconds"), [("2m0s", 120.0), ("90s", 90.0), ("1h30m", 5400.0), ("0", 0.0),
                                               ("1.5s", 1.5), ("500ms", 0.5)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "m", "1x", "1m two"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)
