"""The ``pyk3s`` CNI plugin (CNI spec 1.0: ADD, DEL, CHECK, VERSION) that containerd's CRI calls for
each pod sandbox. It wires the sandbox's namespace with the same code as the process runtime
(:mod:`pyk3s.agent.cni.podnet`: a routed veth in the node's pod-link group, host-local IPAM owned by the
pod UID, default route via the bridge's gateway address), so the proxy, DNS, ServiceLB, network policy and host-gw routes see one kind of pod.
hostPorts are not the plugin's job: the node's nftables proxy maps them for every pod.

Invoked as ``loopback`` (containerd also asks for a loopback network) it only brings ``lo`` up; the agent
installs a small shell script under that name instead (:data:`LOOPBACK_SCRIPT`), which does the same
without starting Python for every pod.

Network configuration (written by the agent into ``<data-dir>/agent/etc/cni/net.d/10-pyk3s.conflist``)::

    {"type": "pyk3s", "bridge": "pyk3s0", "podCIDR": "10.42.0.0/24", "clusterCIDRs": [...],
     "serviceCIDRs": [...], "ipamDir": ".../agent/ipam/pyk3s0", "recordDir": ".../agent/cni"}

Each ADD records ``<recordDir>/<pod uid>.json`` (netns, address, sandbox id) for the kubelet's
port-forward and for ``pyk3s killall``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from pyk3s.agent.cni.bridge import BridgeConfig
from pyk3s.agent.cni.ipam import HostLocalIpam
from pyk3s.agent.cni.ipcmd import CniError, ip
from pyk3s.agent.cni.podnet import link_macs, setup_pod_network, teardown_pod_network, veth_name

__all__ = ["LOOPBACK_SCRIPT", "SUPPORTED_VERSIONS", "conflist", "main", "run"]

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")
CNI_VERSION = "1.0.0"

# CNI error codes (spec "Error")
ERR_INCOMPATIBLE_VERSION, ERR_UNSUPPORTED_FIELD, ERR_UNKNOWN_CONTAINER = 1, 2, 3
ERR_INVALID_ENV, ERR_IO, ERR_DECODE, ERR_INVALID_CONFIG, ERR_TRY_LATER = 4, 5, 6, 7, 11


LOOPBACK_SCRIPT = """#!/bin/sh
# CNI "loopback" for containerd's sandboxes (written by pyk3s): lo up, and a result in the asked version
v=$(sed -n 's/.*"cniVersion" *: *"\\([^"]*\\)".*/\\1/p' | head -n 1)
case "$CNI_COMMAND" in
ADD) ip -n "$(basename "$CNI_NETNS")" link set lo up || exit 1
     printf '{"cniVersion":"%s","interfaces":[{"name":"lo","sandbox":"%s"}],"ips":[{"version":"4","address":"127.0.0.1/8","interface":0}]}' "${v:-1.0.0}" "$CNI_NETNS" ;;
DEL|CHECK) ;;
VERSION) printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
*) printf '{"cniVersion":"1.0.0","code":4,"msg":"unknown CNI_COMMAND %s"}' "$CNI_COMMAND"; exit 1 ;;
esac
"""


class PluginError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def conflist(bridge: BridgeConfig, ipam_dir: Path, record_dir: Path) -> dict[str, Any]:
    return {"cniVersion": CNI_VERSION, "name": "pyk3s", "plugins": [{
        "type": "pyk3s", "bridge": bridge.bridge_name, "podCIDR": bridge.pod_cidr,
        "extraPodCIDRs": list(bridge.extra_pod_cidrs), "mtu": bridge.mtu,
        "clusterCIDRs": list(bridge.cluster_cidrs), "serviceCIDRs": list(bridge.service_cidrs),
        "ipamDir": str(ipam_dir), "recordDir": str(record_dir)}]}


def _cni_args(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def _netns_name(path: str) -> str:
    p = Path(path)
    if p.parent.resolve() != Path("/run/netns").resolve():
        raise PluginError(ERR_INVALID_ENV, f"CNI_NETNS {path!r} is not under /run/netns")
    return p.name


def _owner(env: dict[str, str]) -> str:
    args = _cni_args(env.get("CNI_ARGS", ""))
    return args.get("K8S_POD_UID") or env.get("CNI_CONTAINERID", "")


def _bridge(conf: dict[str, Any]) -> tuple[BridgeConfig, HostLocalIpam, Path]:
    try:
        extra = tuple(conf.get("extraPodCIDRs") or ())
        bridge = BridgeConfig(conf["bridge"], conf["podCIDR"], tuple(conf.get("clusterCIDRs") or ()),
                              tuple(conf.get("serviceCIDRs") or ()), extra_pod_cidrs=extra,
                              mtu=int(conf.get("mtu") or 0))
        ipam = HostLocalIpam(Path(conf["ipamDir"]), conf["podCIDR"], extra)
        record = Path(conf.get("recordDir") or Path(conf["ipamDir"]).parent / "cni")
    except (KeyError, ValueError) as exc:
        raise PluginError(ERR_INVALID_CONFIG, f"pyk3s: bad network configuration: {exc}") from None
    return bridge, ipam, record


async def _add(conf: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    version = conf.get("cniVersion", CNI_VERSION)
    netns_path, ifname = env.get("CNI_NETNS", ""), env.get("CNI_IFNAME", "eth0")
    if not netns_path:
        raise PluginError(ERR_INVALID_ENV, "CNI_NETNS is required for ADD")
    ns = _netns_name(netns_path)
    if conf.get("type") == "loopback":
        await ip("link", "set", "lo", "up", netns=ns)
        return {"cniVersion": version, "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00",
                                                         "sandbox": netns_path}],
                "ips": [{"version": "4", "address": "127.0.0.1/8", "interface": 0}]}
    bridge, ipam, record = _bridge(conf)
    owner = _owner(env)
    net = await setup_pod_network(owner, bridge, ipam, netns=ns, ifname=ifname, fresh=True)
    record.mkdir(parents=True, exist_ok=True)
    (record / f"{owner}.json").write_text(json.dumps(
        {"netns": netns_path, "ip": net.ip, "containerID": env.get("CNI_CONTAINERID", ""), "ifname": ifname}))
    node_mac, pod_mac = link_macs(owner)  # fixed by the pod UID: known without asking the kernel
    return {"cniVersion": version,
            "interfaces": [{"name": net.veth, "mac": node_mac},
                           {"name": ifname, "mac": pod_mac, "sandbox": netns_path}],
            # "version" is required before CNI 1.0 and ignored since; the pod holds each address alone
            # (/32, /128) and reaches everything through the gateway
            "ips": [{"version": "6" if ":" in a else "4", "address": f"{a}/{128 if ':' in a else 32}",
                     "gateway": gw, "interface": 1}
                    for a, (gw, _) in zip(net.ips or (net.ip,), bridge.gateways(), strict=False)],
            "routes": [{"dst": "::/0" if ":" in gw else "0.0.0.0/0", "gw": gw}
                       for _, (gw, _) in zip(net.ips or (net.ip,), bridge.gateways(), strict=False)],
            "dns": {}}


async def _del(conf: dict[str, Any], env: dict[str, str]) -> None:
    if conf.get("type") == "loopback":
        return
    bridge, ipam, record = _bridge(conf)
    owner = _owner(env)
    await teardown_pod_network(owner, ipam, own_netns=False)
    (record / f"{owner}.json").unlink(missing_ok=True)


async def _check(conf: dict[str, Any], env: dict[str, str]) -> None:
    if conf.get("type") == "loopback":
        return
    _, ipam, _ = _bridge(conf)
    owner = _owner(env)
    want = ipam.lookup(owner)
    if want is None:
        raise PluginError(ERR_UNKNOWN_CONTAINER, f"pyk3s: no address allocated to {owner}")
    ns = _netns_name(env.get("CNI_NETNS", ""))
    ifname, veth = env.get("CNI_IFNAME", "eth0"), veth_name(owner)
    # the addresses ADD reported (prevResult), else the one IPAM holds for the pod
    prev = [str(i.get("address", "")).split("/")[0] for i in (conf.get("prevResult") or {}).get("ips") or []]
    if want not in (prev or [want]):
        raise PluginError(ERR_INVALID_CONFIG, f"pyk3s: prevResult {prev} lacks {want}, the address of {owner}")
    if not await ip("link", "show", veth, check=False):
        raise PluginError(ERR_TRY_LATER, f"pyk3s: host side {veth} of {owner} is missing")
    for fam in sorted({"-6" if ":" in a else "-4" for a in prev or [want]}):
        addrs = await ip(fam, "-o", "addr", "show", "dev", ifname, netns=ns, check=False)
        routes = await ip(fam, "-o", "route", "show", "dev", veth, check=False)
        for a in prev or [want]:
            if ("-6" if ":" in a else "-4") != fam:
                continue
            if f" {a}/" not in addrs:
                raise PluginError(ERR_TRY_LATER, f"pyk3s: {ifname} in {ns} lacks {a}")
            if not routes.startswith(f"{a} ") and f"\n{a} " not in routes:
                raise PluginError(ERR_TRY_LATER, f"pyk3s: the node has no route to {a} via {veth}")


def run(env: dict[str, str], stdin: TextIO, stdout: TextIO, prog: str = "pyk3s") -> int:
    command = env.get("CNI_COMMAND", "")
    if command == "VERSION":
        json.dump({"cniVersion": CNI_VERSION, "supportedVersions": list(SUPPORTED_VERSIONS)}, stdout)
        return 0
    version = CNI_VERSION
    try:
        try:
            conf = json.loads(stdin.read() or "{}")
        except ValueError as exc:
            raise PluginError(ERR_DECODE, f"pyk3s: network configuration is not JSON: {exc}") from None
        version = conf.get("cniVersion") or CNI_VERSION
        if version not in SUPPORTED_VERSIONS:
            raise PluginError(ERR_INCOMPATIBLE_VERSION, f"pyk3s: CNI version {version} is not supported",
                              f"supported: {', '.join(SUPPORTED_VERSIONS)}")
        if prog == "loopback":
            conf = {**conf, "type": "loopback"}
        if command == "ADD":
            json.dump(asyncio.run(_add(conf, env)), stdout)
        elif command == "DEL":
            asyncio.run(_del(conf, env))
        elif command == "CHECK":
            asyncio.run(_check(conf, env))
        else:
            raise PluginError(ERR_INVALID_ENV, f"pyk3s: unknown CNI_COMMAND {command!r}")
        return 0
    except PluginError as exc:
        err = {"cniVersion": version, "code": exc.code, "msg": exc.msg}
    except (CniError, OSError) as exc:
        err = {"cniVersion": version, "code": ERR_TRY_LATER if command != "DEL" else ERR_IO, "msg": str(exc)}
    if command == "DEL" and err["code"] == ERR_IO:
        return 0  # DEL of something already gone succeeds
    json.dump({k: v for k, v in err.items() if v != ""}, stdout)
    return 1


def main() -> None:
    prog = Path(sys.argv[1] if len(sys.argv) > 1 else sys.argv[0]).name
    sys.exit(run(dict(os.environ), sys.stdin, sys.stdout, prog))


if __name__ == "__main__":
    main()
