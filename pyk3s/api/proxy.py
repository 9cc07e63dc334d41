"""Relay of pod logs, exec, attach and port-forward to the pod's kubelet (spec 8).

The API server finds the pod's node (``spec.nodeName``), the node's ``InternalIP`` and kubelet port
(``status.daemonEndpoints.kubeletEndpoint.Port``, default 10250), and calls the kubelet over HTTPS
with its own client certificate (CN ``system:kube-apiserver``, O ``system:masters``, signed by the
cluster client CA), verifying the kubelet's serving cert against the server CA (not its host name):

* ``GET /containerLogs/{ns}/{pod}/{container}?follow=&tailLines=...`` streamed back as text/plain;
* ``GET /exec|attach/{ns}/{pod}/{container}?...`` as WebSocket: the client's socket is upgraded with
  the subprotocol the kubelet picked, and frames are copied both ways. ``base64.channel.k8s.io``
  variants are translated to binary for the kubelet;
* ``GET /portForward/{ns}/{pod}?port=`` as WebSocket, one per forwarded stream (:meth:`open_port`);
  :mod:`pyk3s.api.portforward` speaks the client's side of port-forward.

Pods and nodes are read through the API core (``api.handle``) as the API server's own identity.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from pyk3s.api.request import ApiRequest, ApiResponse, UserInfo
from pyk3s.api.tasks import until_first_ends

__all__ = ["CHANNEL_PROTOCOLS", "INTERNAL_USER", "KubeletProxy", "ProxyError", "status_body"]

log = logging.getLogger("pyk3s.api.proxy")
INTERNAL_USER = UserInfo("system:kube-apiserver", ("system:masters", "system:authenticated"))
DEFAULT_KUBELET_PORT = 10250
LOG_PARAMS = ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "previous", "limitBytes",
              "insecureSkipTLSVerifyBackend")
EXEC_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")
# Client subprotocol -> the binary protocol spoken with the kubelet.
CHANNEL_PROTOCOLS = {
    "v5.channel.k8s.io": "v5.channel.k8s.io",
    "v4.channel.k8s.io": "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io": "v4.channel.k8s.io",
    "base64.channel.k8s.io": "v4.channel.k8s.io",
}


def status_body(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class ProxyError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def response(self) -> ApiResponse:
        return ApiResponse(self.code, json.dumps(status_body(self.code, self.reason, self.message)).encode())


class KubeletProxy:
    def __init__(self, api: Any, *, client_cert_file: Path, client_key_file: Path, server_ca_file: Path) -> None:
        self.api = api
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(server_ca_file))
        ctx.check_hostname = False  # kubelet certs name the node; we dial its IP
        ctx.load_cert_chain(str(client_cert_file), str(client_key_file))
        self._ssl = ctx
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # -- lookups through the core -------------------------------------------------------------

    async def _get(self, path: str, what: str) -> dict:
        resp = await self.api.handle(ApiRequest("GET", path, headers={"accept": "application/json"},
                                                user=INTERNAL_USER))
        if resp.status != 200:
            try:
                st = json.loads(resp.body)
                raise ProxyError(resp.status, st.get("reason", ""), st.get("message", f"{what} not readable"))
            except ValueError:
                raise ProxyError(resp.status, "InternalError", f"{what}: HTTP {resp.status}") from None
        return json.loads(resp.body)

    async def pod(self, namespace: str, name: str) -> dict:
        return await self._get(f"/api/v1/namespaces/{namespace}/pods/{name}", f'pod "{name}"')

    async def kubelet_base(self, pod: dict) -> str:
        node_name = (pod.get("spec") or {}).get("nodeName")
        name = (pod.get("metadata") or {}).get("name", "")
        if not node_name:
            raise ProxyError(400, "BadRequest", f'pod "{name}" does not have a host assigned')
        node = await self._get(f"/api/v1/nodes/{node_name}", f'node "{node_name}"')
        status = node.get("status") or {}
        ip = next((a.get("address") for a in status.get("addresses") or () if a.get("type") == "InternalIP"), None)
        if not ip:
            raise ProxyError(500, "InternalError", f'node "{node_name}" has no InternalIP address')
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or DEFAULT_KUBELET_PORT
        host = f"[{ip}]" if ":" in ip else ip
        return f"https://{host}:{port}"

    @staticmethod
    def container(pod: dict, requested: str | None) -> str:
        spec = pod.get("spec") or {}
        name = (pod.get("metadata") or {}).get("name", "")
        names = [c.get("name", "") for c in spec.get("containers") or ()]
        all_names = names + [c.get("name", "") for key in ("initContainers", "ephemeralContainers")
                             for c in spec.get(key) or ()]
        if requested:
            if requested not in all_names:
                raise ProxyError(400, "BadRequest", f"container {requested} is not valid for pod {name}")
            return requested
        if len(names) == 1:
            return names[0]
        raise ProxyError(400, "BadRequest",
                         f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")

    # -- logs ---------------------------------------------------------------------------------

    async def pod_log(self, req: ApiRequest, namespace: str, name: str) -> ApiResponse:
        """The ``pods/log`` hook: stream the container log from the kubelet."""
        try:
            pod = await self.pod(namespace, name)
            container = self.container(pod, req.param("container"))
            base = await self.kubelet_base(pod)
        except ProxyError as err:
            return err.response()
        query = [(k, v) for k, v in req.query if k in LOG_PARAMS]
        url = f"{base}/containerLogs/{namespace}/{name}/{container}"
        if query:
            url += "?" + urlencode(query)
        try:
            resp = await self._client().get(url, ssl=self._ssl)
        except (aiohttp.ClientError, OSError) as err:
            return ProxyError(500, "InternalError", f"error dialing backend: {err}").response()
        if resp.status != 200:
            text = (await resp.read()).decode(errors="replace").strip()
            resp.release()
            code = 400 if 400 <= resp.status < 500 else 500
            try:
                st = json.loads(text)
                if st.get("kind") == "Status":
                    return ApiResponse(resp.status, json.dumps(st).encode())
            except ValueError:
                pass
            return ProxyError(code, "BadRequest" if code == 400 else "InternalError",
                              text or f"kubelet answered HTTP {resp.status}").response()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            finally:
                resp.release()

        return ApiResponse(200, content_type="text/plain", stream=chunks())

    async def open_port(self, pod: dict, port: int) -> aiohttp.ClientWebSocketResponse:
        """A byte stream to localhost:``port`` in ``pod``: the kubelet's ``/portForward?port=`` WebSocket
        (binary messages are data, an empty one ends a direction, a text message is the kubelet's error)."""
        meta = pod.get("metadata") or {}
        base = await self.kubelet_base(pod)
        url = f"{base}/portForward/{meta.get('namespace', 'default')}/{meta.get('name', '')}?port={port}"
        try:
            return await self._client().ws_connect(url, ssl=self._ssl, max_msg_size=0, autoping=True)
        except (aiohttp.ClientError, OSError) as err:
            raise ProxyError(500, "InternalError", f"error dialing backend: {err}") from None

    # -- websockets ---------------------------------------------------------------------------

    async def _refusal(self, url: str, status: int) -> tuple[int, str, str]:
        """(code, reason, message) of a kubelet that refused an upgrade: the handshake drops the answer's
        body, so the same URL is asked again without upgrade (the kubelet checks before it upgrades)."""
        code = status if 400 <= status < 600 else 500
        reason = {400: "BadRequest", 404: "NotFound"}.get(code, "InternalError")
        message = f"error dialing backend: kubelet answered HTTP {status}"
        try:
            async with self._client().get(url, ssl=self._ssl, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                text = (await resp.read()).decode(errors="replace").strip()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return code, reason, message
        try:
            st = json.loads(text)
        except ValueError:
            st = None
        if isinstance(st, dict) and st.get("kind") == "Status" and st.get("message"):
            return int(st.get("code") or code), str(st.get("reason") or reason), str(st["message"])
        return code, reason, (f"{message}: {text}" if text else message)


    async def relay_websocket(self, request: web.Request, kind: str, namespace: str, name: str) -> web.StreamResponse:
        """Upgrade the client and copy frames to/from the kubelet's ``exec`` or ``attach`` (``kind``)."""
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        usable = [p for p in offered if p in CHANNEL_PROTOCOLS]
        if not usable:
            return _json_response(status_body(400, "BadRequest", (
                f"pyk3s: {kind} needs a WebSocket subprotocol among {', '.join(CHANNEL_PROTOCOLS)}; offered: "
                f"{', '.join(offered) or 'none'}")))
        try:
            pod = await self.pod(namespace, name)
            container = self.container(pod, request.query.get("container"))
            base = await self.kubelet_base(pod)
        except ProxyError as err:
            # kubectl retries any failed upgrade over SPDY, which would hide this reason: upgrade and say it
            return await _upgrade_with_error(request, usable[0], err.message, err.code, err.reason)
        backend_protocols = list(dict.fromkeys(CHANNEL_PROTOCOLS[p] for p in usable))
        query = [(k, v) for k, v in request.query.items() if k in EXEC_PARAMS]
        url = f"{base}/{kind}/{namespace}/{name}/{container}" + ("?" + urlencode(query) if query else "")
        try:
            backend = await self._client().ws_connect(url, protocols=backend_protocols, ssl=self._ssl,
                                                      max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as err:
            code, reason, message = await self._refusal(url, err.status)
            return await _upgrade_with_error(request, usable[0], message, code, reason)
        except (aiohttp.ClientError, OSError) as err:
            return await _upgrade_with_error(request, usable[0], f"error dialing backend: {err}")
        chosen_backend = backend.protocol or backend_protocols[0]
        client_protocol = next(p for p in usable if CHANNEL_PROTOCOLS[p] == chosen_backend)
        client = web.WebSocketResponse(protocols=(client_protocol,), max_msg_size=0, compress=False, autoping=True)
        await client.prepare(request)
        b64 = "base64" in client_protocol
        try:
            await _pump(client, backend, b64)
        finally:
            await backend.close()
            await client.close()
        return client


def _json_response(status: dict) -> web.Response:
    return web.Response(status=status["code"], body=json.dumps(status).encode(), content_type="application/json")


async def _upgrade_with_error(request: web.Request, protocol: str, message: str, code: int = 500,
                              reason: str = "InternalError") -> web.StreamResponse:
    """Upgrade anyway and report the failure on the status channel, so kubectl prints it."""
    client = web.WebSocketResponse(protocols=(protocol,), compress=False)
    await client.prepare(request)
    status = json.dumps(status_body(code, reason, message)).encode()
    if "base64" in protocol:
        await client.send_str("3" + base64.b64encode(status).decode())
    else:
        await client.send_bytes(b"\x03" + status)
    await client.close()
    return client


async def _pump(client: web.WebSocketResponse, backend: aiohttp.ClientWebSocketResponse, b64: bool) -> None:
    async def to_backend() -> None:
        async for msg in client:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await backend.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                data = msg.data
                if b64 and data:
                    await backend.send_bytes(bytes([int(data[0])]) + base64.b64decode(data[1:]))
                else:
                    await backend.send_bytes(data.encode())
            else:
                break

    async def to_client() -> None:
        async for msg in backend:
            if msg.type == aiohttp.WSMsgType.BINARY:
                if b64:
                    data = msg.data
                    await client.send_str(str(data[0]) + base64.b64encode(data[1:]).decode() if data else "")
                else:
                    await client.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await client.send_str(msg.data)
            else:
                break

    done = await until_first_ends(asyncio.ensure_future(to_backend()), asyncio.ensure_future(to_client()))
    for t in done:
        if t.exception() is not None and not isinstance(t.exception(), ConnectionError):
            log.debug("api/proxy: websocket relay ended: %s", t.exception())
