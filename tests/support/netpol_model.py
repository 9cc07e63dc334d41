"""The upstream model (:mod:`netpol_cases`) on a real cluster: namespaces, pods and one Service per pod
created with kubectl, reachability observed with real packets from every pod's network namespace
(:mod:`netpol_probe`), and the steps of a case applied with kubectl."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from netpol_cases import NAMESPACES, PODS, Check, Reachability, Step, model_namespaces, pod_manifest

from pyk3s.agent.cni.podnet import netns_name

__all__ = ["Model"]

PROBE = Path(__file__).with_name("netpol_probe.py")
Kubectl = Callable[..., Any]


def _service(ns: str, name: str) -> dict[str, Any]:
    ports = [{"name": f"serve-{p}-{proto.lower()}", "port": p, "protocol": proto}
             for p in (80, 81) for proto in ("TCP", "UDP")]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": f"s-{ns}-{name}"},
            "spec": {"selector": {"pod": name}, "ports": ports, "ipFamilyPolicy": "PreferDualStack"}}


class Model:
    """``kubectl(*args, input=..., check=...)`` drives the cluster; ``nodes`` places pods (pod -> node)."""

    def __init__(self, kubectl: Kubectl, nodes: Mapping[str, str] | None = None, timeout: float = 1.0,
                 family: int = 4) -> None:
        self.kubectl = kubectl
        self.nodes = dict(nodes or {})
        self.timeout = timeout
        self.family = family  # which of a dual-stack pod's addresses the probes use
        self.ips: dict[str, str] = {}
        self.service_ips: dict[str, str] = {}
        self.netns: dict[str, str] = {}

    # -- set-up ----------------------------------------------------------------------------------------

    def create(self) -> None:
        docs: list[dict[str, Any]] = list(model_namespaces())
        for key in PODS:
            ns, name = key.split("/")
            docs.append(pod_manifest(ns, name, self.nodes.get(key, "")))
            docs.append(_service(ns, name))
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read_pods():
                break
            time.sleep(1)
        else:
            raise TimeoutError(f"model pods not running with addresses: {self.ips}")
        # every server answers before any policy exists
        self.wait_matrix(Check(80, "TCP", Reachability()), timeout=max(10.0, deadline - time.monotonic()))
        self.wait_matrix(Check(81, "UDP", Reachability()), timeout=60)

    def _read_pods(self) -> bool:
        res = self.kubectl("get", "pods", "-A", "-l", "pod", "-o", "json", check=False)
        if res.rc != 0:
            return False
        for p in json.loads(res.out)["items"]:
            key = f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            if key in PODS and (p.get("status") or {}).get("podIP") and p["status"].get("phase") == "Running":
                ips = [a["ip"] for a in p["status"].get("podIPs") or [{"ip": p["status"]["podIP"]}]]
                mine = [ip for ip in ips if (":" in ip) == (self.family == 6)]
                if mine:
                    self.ips[key] = mine[0]
                    self.netns[key] = netns_name(p["metadata"]["uid"])
        svcs = self.kubectl("get", "svc", "-A", "-o", "json", check=False)
        if svcs.rc == 0:
            for s in json.loads(svcs.out)["items"]:
                name = s["metadata"]["name"]
                if name.startswith("s-"):
                    _, ns, pod = name.split("-", 2)
                    ips = [ip for ip in s["spec"].get("clusterIPs") or [s["spec"].get("clusterIP", "")]
                           if (":" in ip) == (self.family == 6)]
                    self.service_ips[f"{ns}/{pod}"] = ips[0] if ips else ""
        return len(self.ips) == len(PODS) and all(self.service_ips.get(k) for k in PODS)

    # -- observing -------------------------------------------------------------------------------------

    def _probe_from(self, src: str, check: Check) -> list[bool]:
        targets = [[(self.service_ips if check.via_service else self.ips)[d], check.protocol, check.port]
                   for d in PODS]
        proc = subprocess.run(["ip", "netns", "exec", self.netns[src], sys.executable, str(PROBE),
                               "--timeout", str(self.timeout)], input=json.dumps(targets), capture_output=True,
                              text=True, timeout=30 + self.timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"probe from {src} failed: {proc.stderr}")
        return json.loads(proc.stdout)

    def observe(self, check: Check) -> dict[tuple[str, str], bool]:
        with ThreadPoolExecutor(max_workers=len(PODS)) as pool:
            rows = dict(zip(PODS, pool.map(lambda s: self._probe_from(s, check), PODS), strict=True))
        return {(s, d): rows[s][i] for s in PODS for i, d in enumerate(PODS)}

    def wait_matrix(self, check: Check, timeout: float = 15.0) -> tuple[bool, dict[tuple[str, str], bool], int]:
        """Probe until the matrix is the expected one or ``timeout`` passes: (matched, last seen, rounds)."""
        want = check.expected.with_loopback()
        deadline = time.monotonic() + timeout
        rounds = 0
        while True:
            seen = self.observe(check)
            rounds += 1
            if seen == want or time.monotonic() > deadline:
                return seen == want, seen, rounds
            time.sleep(0.3)

    # -- driving ---------------------------------------------------------------------------------------

    def apply_step(self, step: Step) -> None:
        for ns, name in step.delete:
            self.kubectl("delete", "networkpolicy", "-n", ns, name, "--wait=false")
        objs = step.policy_objects(self.ips)
        if objs:
            self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
        for key, labels in step.pod_labels.items():
            ns, name = key.split("/")
            self.kubectl("label", "pod", "-n", ns, name, "--overwrite", *(f"{k}={v}" for k, v in labels.items()))
        for ns, labels in step.ns_labels.items():
            self.kubectl("label", "namespace", ns, "--overwrite", *(f"{k}={v}" for k, v in labels.items()))

    def reset(self) -> None:
        """Remove every policy and every label a case added."""
        for ns in NAMESPACES:
            self.kubectl("delete", "networkpolicy", "--all", "-n", ns, "--wait=false")
            self.kubectl("label", "namespace", ns, "ns2-", "--overwrite", check=False)
        for key in PODS:
            ns, name = key.split("/")
            self.kubectl("label", "pod", "-n", ns, name, "pod2-", "target-", check=False)

    def matrix_text(self, seen: Mapping[tuple[str, str], bool], want: Mapping[tuple[str, str], bool]) -> str:
        return Reachability.render(seen, want)
