#!/usr/bin/env python3
"""Objects for bench/soak.sh: the Traefik CRDs, N Host routes to one backend, and a wrk script that
picks the Host of every request at random among them.

    python bench/soak_setup.py OUT --routes 1000 --backend-port PORT

OUT/crds.yaml    the CustomResourceDefinitions of the packaged Traefik charts
OUT/routes.yaml  Service `be` + EndpointSlice (127.0.0.1:PORT) + IngressRoutes r0..rN-1 (Host h<i>.example)
OUT/random.lua   wrk: Host h<random>.example on every request
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def crds() -> str:
    """The CRDs of the packaged Traefik charts, as the helm controller renders them."""
    from pyk3s.controllers.helm.chart import Release
    from pyk3s.controllers.helm.charts import CHARTS

    docs = [m.obj for chart in CHARTS for m in chart.render({}, Release(chart.name, "kube-system")).objects
            if m.obj["kind"] == "CustomResourceDefinition"]
    return yaml.safe_dump_all(docs)


def routes(count: int, port: int) -> str:
    docs: list[dict] = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "be", "namespace": "default"},
         "spec": {"ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "be-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "be"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
         "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]},
    ]
    for i in range(count):
        docs.append({"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
                     "metadata": {"name": f"r{i}", "namespace": "default"},
                     "spec": {"routes": [{"match": f"Host(`h{i}.example`)", "kind": "Rule",
                                          "services": [{"name": "be", "port": 80}]}]}})
    return yaml.safe_dump_all(docs)


LUA = """local n, counter = {n}, 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init(args) math.randomseed(seed * 7919) end
function request()
  return wrk.format("GET", "/", {{Host = "h" .. math.random(0, n - 1) .. ".example"}})
end
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--backend-port", type=int, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "crds.yaml").write_text(crds())
    (a.out / "routes.yaml").write_text(routes(a.routes, a.backend_port))
    (a.out / "random.lua").write_text(LUA.format(n=a.routes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
