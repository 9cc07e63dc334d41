"""The DNS part of a trace: ``pyk3s dns explain``'s engine run on the cluster's Corefile (from the
coredns and coredns-custom ConfigMaps the map watches), its story turned into hops, and an answer
that is a Service's address followed to the Service and its endpoints."""

from __future__ import annotations

import io
import tempfile
from typing import TYPE_CHECKING, Any

import dns.rcode
import dns.rdatatype

from pyk3s.addons.dns.errors import CorefileError
from pyk3s.addons.dns.explain import explain, write_corefile

from .hops import ERROR, INFO, OK, Hop, endpoint_hops, find_service, service_hop

if TYPE_CHECKING:
    from pyk3s.client import Client

    from .state import MapState

__all__ = ["dns_hops", "dns_trace", "run_dns_explain"]


async def run_dns_explain(state: MapState, name: str, qtype: str) -> tuple[str, dict[str, Any]]:
    """The text ``pyk3s dns explain NAME TYPE`` prints for this cluster, and the reply's gist."""
    data: dict[str, str] = {}
    custom: dict[str, str] = {}
    for cm in state.objects("configmaps"):
        if cm["metadata"].get("name") == "coredns":
            data = dict(cm.get("data") or {})
        elif cm["metadata"].get("name") == "coredns-custom":
            custom = dict(cm.get("data") or {})
    opened: list[Client] = []

    def factory(kubeconfig: str | None) -> Client:
        from pyk3s.addons.dns.cli import client_factory

        client = (state.client_factory or client_factory)(kubeconfig)
        opened.append(client)
        return client

    out = io.StringIO()
    try:
        with tempfile.TemporaryDirectory(prefix="pyk3s-map-dns-") as tmp:
            path = write_corefile(data, custom, tmp)
            reply = await explain(name, qtype, path, kubeconfig=state.kubeconfig, client_factory=factory, out=out)
    finally:
        for client in opened:  # the explain engine's own API clients (closing twice is harmless)
            await client.close()
    addresses = [rd.to_text() for rr in reply.answer for rd in rr
                 if rr.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)]
    kind = dns.rcode.to_text(reply.rcode())
    if reply.rcode() == dns.rcode.NOERROR and not reply.answer:
        kind = "NODATA"
    return out.getvalue(), {"rcode": kind, "answer": [rr.to_text() for rr in reply.answer], "addresses": addresses}


async def dns_hops(state: MapState, name: str, qtype: str) -> tuple[str, dict[str, Any], list[Hop]]:
    try:
        text, reply = await run_dns_explain(state, name, qtype)
    except CorefileError as err:
        return str(err), {"rcode": "", "answer": [], "addresses": []}, [
            Hop("dns", "Corefile", ERROR, (f"the cluster's Corefile does not load: {err}",))]
    lines = text.splitlines()
    block = [ln for ln in lines if ln.startswith(("server block:", "chain:"))]
    notes = [ln.strip() for ln in lines if ln.startswith("  ") and not ln.strip().startswith(
        ("answer:", "authority:", "additional:"))]
    hops = [Hop("dns", f"{name} {qtype}", INFO, tuple(block), "dns:")]
    for note in notes:
        plugin, _, said = note.partition(": ")
        hops.append(Hop("dns", plugin if said else "dns", INFO, (said or note,)))
    answered = bool(reply["answer"])
    why = [f"result {reply['rcode']}", *(f"answer {a}" for a in reply["answer"])]
    hops.append(Hop("dns", "answer", OK if answered else ERROR, tuple(why)))
    return text, reply, hops


async def dns_trace(state: MapState, name: str, qtype: str) -> tuple[list[Hop], dict[str, Any]]:
    text, reply, hops = await dns_hops(state, name, qtype)
    seen: set[str] = set()
    for ip in reply["addresses"]:
        svc = find_service(state.services(), ip=ip)
        if svc is None or svc["key"] in seen:
            continue
        seen.add(svc["key"])
        shop, _ = service_hop(svc, None)
        hops.append(shop)
        hops += endpoint_hops(svc)
    return hops, {"text": text, **reply}
