"""Keep ``NodeHosts`` in ConfigMap ``kube-system/coredns`` listing every node (k3s.md 4.4).

Per node: IPv4 = its last InternalIP without ``:``, IPv6 = its last InternalIP with ``:``; names =
``<node name>`` plus `` <Hostname address>`` when that differs. Parsing the current value: text from
``#`` on is ignored, empty lines skipped, lines with fewer than two fields dropped; IP → the rest of
the fields joined by one space. A line whose first name is this node but whose IP is not its current
IP of that family is dropped. Nothing is written when the node's entries are already there;
otherwise its entries are set (taking over an IP another node had), lines are sorted by the 16-byte
form of the IP (IPv4 as ``::ffff:a.b.c.d``, so numerically, before IPv6) and rendered
``"<ip> <names>\\n"``. A deleted node loses every line whose first name is its name. Only the
``NodeHosts`` key is touched (merge patch), and only if the ConfigMap exists.

One deliberate difference: a node without a Hostname address gets just its name (upstream appends a
trailing space that never re-parses equal and rewrites the ConfigMap on every node event).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from pyk3s.client import NotFound
from pyk3s.client.controller import Result

from .common.loop import Loop
from .common.settings import ControllerSettings
from .objects import is_deleting

__all__ = ["NodeHostsController", "node_addresses", "parse_node_hosts", "update_node_hosts"]

log = logging.getLogger("pyk3s.controllers.nodehosts")

KEY = "NodeHosts"


def node_addresses(node: Mapping[str, Any]) -> tuple[str, str, str]:
    """(IPv4, IPv6, hostname) of a node, empty strings where missing."""
    v4 = v6 = host = ""
    for addr in (node.get("status") or {}).get("addresses") or []:
        kind, value = addr.get("type"), addr.get("address") or ""
        if kind == "InternalIP":
            if ":" in value:
                v6 = value
            else:
                v4 = value
        elif kind == "Hostname":
            host = value
    return v4, v6, host


def parse_node_hosts(text: str) -> tuple[dict[str, str], list[str]]:
    """(IP → names, warnings) from a hosts-format value."""
    hosts: dict[str, str] = {}
    warnings: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            warnings.append(f"Unknown format for hosts line [{raw}]")
            continue
        hosts[fields[0]] = " ".join(fields[1:])
    return hosts, warnings


def _sort_key(ip: str) -> bytes:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return b""
    if addr.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + addr.packed
    return addr.packed


def update_node_hosts(existing: str, name: str, v4: str, v6: str, hostname: str, removing: bool) -> str | None:
    """The new NodeHosts value, or None when nothing needs writing."""
    names = name if not hostname or hostname == name else f"{name} {hostname}"
    if removing:
        v4 = v6 = ""
    hosts, _warnings = parse_node_hosts(existing)
    for ip, line_names in list(hosts.items()):
        if line_names.split()[0] != name:
            continue
        current = v6 if ":" in ip else v4
        if ip != current:
            del hosts[ip]
    if not removing:
        if not v4 and not v6:
            return None
        if (not v4 or hosts.get(v4) == names) and (not v6 or hosts.get(v6) == names):
            return None
        for ip in (v4, v6):
            if ip:
                hosts[ip] = names
    rendered = "".join(f"{ip} {hosts[ip]}\n" for ip in sorted(hosts, key=_sort_key))
    return None if rendered == existing else rendered


class NodeHostsController(Loop):
    name = "nodehosts"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        s = self.settings
        self.nodes = self.informer("v1", "nodes")
        self.configmaps = self.informer("v1", "configmaps", namespace=s.coredns_namespace,
                                        field_selector=f"metadata.name={s.coredns_configmap}")
        self.cm_api = client.resource("v1", "configmaps")
        self.controller.watch(self.nodes)
        self.controller.watch(self.configmaps, lambda _cm: self.nodes.keys())

    async def reconcile(self, key: str) -> Result | None:
        s = self.settings
        try:
            # Read live: several nodes write the same value, and the cache may miss our last write.
            cm = await self.cm_api.get(s.coredns_configmap, s.coredns_namespace)
        except NotFound:
            return None
        node = self.nodes.get(key)
        removing = node is None or is_deleting(node)
        v4, v6, host = node_addresses(node) if node is not None else ("", "", "")
        if not removing and not v4 and not v6:
            log.info("No InternalIP addresses found for node %s", key)
            return None
        existing = (cm.get("data") or {}).get(KEY, "")
        new = update_node_hosts(existing, key, v4, v6, host, removing)
        if new is None:
            return None
        patch = {"metadata": {"resourceVersion": (cm.get("metadata") or {}).get("resourceVersion")},
                 "data": {KEY: new}}
        await self.cm_api.patch(s.coredns_configmap, patch, s.coredns_namespace)
        log.info("%s coredns NodeHosts entries for %s", "Removed" if removing else "Synced", key)
        return None
