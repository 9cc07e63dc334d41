import asyncio

import pytest
from ctrl_kit import Kit, cluster_fixture, node  # noqa: F401

from pyk3s.controllers.common.settings import ControllerSettings
from pyk3s.controllers.nodeipam import NodeIpamController, allocate


@pytest.mark.parametrize(
    ("cidrs", "taken", "expected"),
    [
        (["10.42.0.0/16"], [], ["10.42.0.0/24"]),
        (["10.42.0.0/16"], ["10.42.0.0/24", "10.42.2.0/24"], ["10.42.1.0/24"]),
        (["10.42.0.0/16", "fd00:42::/56"], ["10.42.0.0/24", "fd00:42::/64"], ["10.42.1.0/24", "fd00:42:0:1::/64"]),
    ],
)
def test_lowest_free_range_per_family(cidrs: list[str], taken: list[str], expected: list[str]) -> None:
    assert allocate(cidrs, taken) == expected


def test_full_cluster_cidr_says_which() -> None:
    with pytest.raises(ValueError, match="no free /24 left in cluster-cidr 10.42.0.0/24"):
        allocate(["10.42.0.0/24"], ["10.42.0.0/24"])


async def test_nodes_registering_together_get_distinct_ranges(cluster: Kit) -> None:
    ctrl = NodeIpamController(cluster.client, ControllerSettings(cluster_cidrs=("10.42.0.0/16",)))
    cluster.run(ctrl)
    bare = [node(f"n{i}", f"10.0.0.{i}") for i in range(4)]
    for n in bare:
        n["spec"].pop("podCIDR", None)
        n["spec"].pop("podCIDRs", None)
    await asyncio.gather(*(cluster.nodes.create(n) for n in bare))

    async def assigned() -> list[str] | None:
        cidrs = [(await cluster.nodes.get(f"n{i}"))["spec"].get("podCIDR") for i in range(4)]
        return cidrs if all(cidrs) else None
    cidrs = await cluster.eventually(assigned)
    assert sorted(cidrs) == [f"10.42.{i}.0/24" for i in range(4)]
    await cluster.assert_no_writes(ctrl, [f"n{i}" for i in range(4)])
