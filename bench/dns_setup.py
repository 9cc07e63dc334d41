#!/usr/bin/env python3
"""Inputs of bench/dns.sh for `pyk3s coredns`: the packaged Corefile and the Services of the data set.

    python bench/dns_setup.py OUT --port P --health H --ready R --metrics M --upstream HOST:PORT
                              [--services 1000] [--namespaces 20]

OUT/Corefile is the Corefile of the packaged coredns ConfigMap (pyk3s/manifests/coredns.yaml) with every
plugin kept; only addresses and paths change: the server block listens on 127.0.0.1:P (`bind`), health,
ready and prometheus on loopback ports, NodeHosts and the custom imports come from OUT, and `forward`
goes to the local stand-in upstream instead of /etc/resolv.conf. OUT/services.yaml holds the namespaces
and Services of ../shared/peers/dns/gen_zone.py's data set (svc-N.ns-M, ClusterIP 10.96.x.y, port http
80/TCP), so the answers are the ones knot serves from the generated zone.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import yaml

SUBSTITUTIONS = (
    ("%{CLUSTER_DOMAIN}%", "cluster.local"),
    ("/etc/coredns/NodeHosts", "{out}/NodeHosts"),
    ("/etc/coredns/custom/", "{out}/custom/"),
    ("forward . /etc/resolv.conf", "forward . {upstream}"),
    ("prometheus :9153", "prometheus 127.0.0.1:{metrics}"),
)


def packaged_corefile() -> str:
    text = (resources.files("pyk3s.manifests") / "coredns.yaml").read_text()
    for doc in yaml.safe_load_all(text):
        if doc and doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "coredns":
            return str(doc["data"]["Corefile"])
    raise SystemExit("no coredns ConfigMap in the packaged manifest")


def corefile(out: Path, port: int, health: int, ready: int, metrics: int, upstream: str) -> str:
    text = packaged_corefile()
    for old, new in SUBSTITUTIONS:
        if old not in text:
            raise SystemExit(f"the packaged Corefile has no {old!r}: update bench/dns_setup.py")
        text = text.replace(old, new.format(out=out, upstream=upstream, metrics=metrics))
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == ".:53 {":
            line = line.replace(".:53", f".:{port}")
            lines += [line, "    bind 127.0.0.1"]
            continue
        if stripped == "health":
            line = line.replace("health", f"health 127.0.0.1:{health}")
        elif stripped == "ready":
            line = line.replace("ready", f"ready 127.0.0.1:{ready}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def services(count: int, namespaces: int) -> str:
    docs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i}"}}
                        for i in range(namespaces)]
    for i in range(count):
        ip = f"10.96.{1 + i // 250}.{1 + i % 250}"
        docs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"namespace": f"ns-{i % namespaces}", "name": f"svc-{i}"},
                     "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    return yaml.safe_dump_all(docs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    for name in ("port", "health", "ready", "metrics"):
        ap.add_argument(f"--{name}", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=20)
    a = ap.parse_args()
    out = a.out.resolve()
    (out / "custom").mkdir(parents=True, exist_ok=True)
    (out / "NodeHosts").write_text("127.0.0.1 pk-bench-node\n")
    (out / "Corefile").write_text(corefile(out, a.port, a.health, a.ready, a.metrics, a.upstream))
    (out / "services.yaml").write_text(services(a.services, a.namespaces))
    return 0


if __name__ == "__main__":
    sys.exit(main())
