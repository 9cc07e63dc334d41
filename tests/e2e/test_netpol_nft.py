"""The policy table in a real kernel (a network namespace of its own, no traffic): every delta the
controller would send is accepted by nftables and leaves exactly the sets and maps a full load of the
same state gives, for random clusters changed at random; and a table the kernel refuses is replaced by
the deny-only one, never left open."""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netpol_strategies import clusters, mutation

from pyk3s.agent.netpol.render import NetpolTable, delta_script, full_script
from pyk3s.netpol import AllowIndex, namespace_info, parse_policy, pod_info

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")]


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"pknft{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def nft(netns: str, text: str) -> None:
    res = subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=text, capture_output=True, text=True)
    assert res.returncode == 0, f"nft refused:\n{res.stderr}\n--- input ---\n{text[:4000]}"


def contents(netns: str, table: str) -> dict[str, Any]:
    """Set and map name -> sorted elements, and chain name -> rules, as the kernel lists them."""
    res = subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "list", "table", "inet", table],
                         capture_output=True, text=True, check=True)
    out: dict[str, Any] = {}
    for item in json.loads(res.stdout)["nftables"]:
        for kind in ("set", "map"):
            if kind in item:
                out[f"{kind} {item[kind]['name']}"] = sorted(json.dumps(e, sort_keys=True)
                                                             for e in item[kind].get("elem", []))
        if "rule" in item:
            rule = item["rule"]
            out.setdefault(f"chain {rule['chain']}", []).append(json.dumps(rule["expr"], sort_keys=True))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(clusters(), st.lists(mutation, min_size=1, max_size=6))
def test_deltas_in_the_kernel_equal_a_full_load(netns: str, c: tuple, muts: list) -> None:
    nss, pods, pols = copy.deepcopy(c)
    index = AllowIndex("na")
    for n in nss:
        index.set_namespace(namespace_info(n))
    for p in pols:
        index.set_policy(parse_policy(p))
    for p in pods:
        info = pod_info(p)
        if info is not None:
            index.set_pod(info)
    inc = NetpolTable("pknp-inc", "pkbtest")
    ref = NetpolTable("pknp-ref", "pkbtest")
    nft(netns, full_script(inc, index.state()))
    index.mark_applied()
    for what, i, labels in muts:
        if what in ("pod_labels", "pod_ip") and pods:
            p = pods[i % len(pods)]
            p["metadata"]["labels"] = labels
            index.set_pod(pod_info(p))  # type: ignore[arg-type]
        elif what == "pod_delete" and pods:
            p = pods[i % len(pods)]
            index.delete_pod(f"{p['metadata']['namespace']}/{p['metadata']['name']}")
        elif what == "pod_readd" and pods:
            index.set_pod(pod_info(pods[i % len(pods)]))  # type: ignore[arg-type]
        elif what == "ns_labels":
            nss[i % len(nss)]["metadata"]["labels"] = labels
            index.set_namespace(namespace_info(nss[i % len(nss)]))
        elif what == "policy" and pols:
            p = pols[i % len(pols)]
            p["spec"]["podSelector"] = {"matchLabels": labels}
            index.set_policy(parse_policy(p))
        elif what == "policy_delete" and pols:
            p = pols.pop(i % len(pols))
            index.delete_policy(f"{p['metadata']['namespace']}/{p['metadata']['name']}")
        state = index.state()
        nft(netns, delta_script(inc, index.take_delta()))
        nft(netns, full_script(ref, state))
        assert contents(netns, inc.name) == contents(netns, ref.name)


def test_deny_only_table_isolates_every_group(netns: str) -> None:
    pods = [{"metadata": {"namespace": "n1", "name": "p", "labels": {"app": "a"}},
             "spec": {"nodeName": "na", "containers": [{"name": "c"}]},
             "status": {"phase": "Running", "podIP": "10.42.0.5"}}]
    index = AllowIndex("na")
    index.set_pod(pod_info(pods[0]))  # type: ignore[arg-type]
    index.set_policy(parse_policy({"metadata": {"namespace": "n1", "name": "q"},
                                   "spec": {"podSelector": {}, "ingress": [{}]}}))
    table = NetpolTable("pknp-deny", "pkbtest")
    nft(netns, full_script(table, index.state(), deny_only=True))
    got = contents(netns, table.name)
    groups = [k for k in got if k.startswith("chain i-")]
    assert groups and all(len(got[g]) == 1 and "goto" in got[g][0] for g in groups)
    assert not [k for k in got if k.startswith("set i-")], "no allow sets in the deny-only table"
