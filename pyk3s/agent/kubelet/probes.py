"""One probe attempt (httpGet, tcpSocket, exec), run against the pod IP or inside the container."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from pyk3s.agent.spawn import CommandTimeout, run_command

__all__ = ["probe_once", "resolve_port"]


def resolve_port(port: int | str, container: Mapping) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"probe port {port!r} not found in container {container.get('name')!r}")


async def _http(probe: Mapping, host: str, container: Mapping, timeout: float) -> tuple[bool, str]:
    port = resolve_port(probe["port"], container)
    path = probe.get("path") or "/"
    scheme = (probe.get("scheme") or "HTTP").upper()
    headers = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*", "Connection": "close"}
    for h in probe.get("httpHeaders") or []:
        headers[h["name"]] = h["value"]
    ssl_ctx = None
    if scheme == "HTTPS":
        import ssl

        ssl_ctx = ssl.create_default_context()
        ssl_ctx.check_hostname = False
        ssl_ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ssl_ctx), timeout)
    try:
        req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(req.encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    parts = line.split()
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return 200 <= code < 400, f"HTTP probe failed with statuscode: {code}"


async def _tcp(probe: Mapping, host: str, container: Mapping, timeout: float) -> tuple[bool, str]:
    port = resolve_port(probe["port"], container)
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    writer.close()
    return True, ""


async def _exec(probe: Mapping, pid: int, timeout: float) -> tuple[bool, str]:
    cmd = list(probe.get("command") or [])
    try:
        res = await run_command(["nsenter", "-t", str(pid), "-m", "-n", "-u", "--", *cmd], timeout=timeout,
                                merge_stderr=True)
    except CommandTimeout:
        return False, f"command {cmd} timed out"
    return res.returncode == 0, res.stdout.decode(errors="replace")[-200:]


ExecSync = Callable[[list[str], float], Awaitable[tuple[bool, str]]]


async def probe_once(probe: Mapping, container: Mapping, pod_ip: str, pid: int,
                     exec_sync: ExecSync | None = None) -> tuple[bool, str]:
    """(success, message) of one attempt; exceptions count as failures. ``exec_sync``: run an exec
    probe through the container runtime instead of entering the process's namespaces."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "httpGet" in probe:
            hg = probe["httpGet"]
            return await _http(hg, hg.get("host") or pod_ip, container, timeout)
        if "tcpSocket" in probe:
            ts = probe["tcpSocket"]
            return await _tcp(ts, ts.get("host") or pod_ip, container, timeout)
        if "exec" in probe:
            if exec_sync is not None:
                return await exec_sync(list(probe["exec"].get("command") or []), timeout)
            return await _exec(probe["exec"], pid, timeout)
        return False, "unsupported probe handler"
    except (OSError, TimeoutError, ValueError) as exc:
        return False, f"probe error: {exc or type(exc).__name__}"
