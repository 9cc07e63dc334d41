"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in NUL on file descriptors 3 and 4), for end-to-end tests of pages: load a URL, run
JavaScript in it, wait for a condition, take screenshots of the page or of one element.

No port is opened and nothing is fetched: the browser runs with a fresh profile in a temporary
directory, in its own process group, killed and removed on close.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "Browser", "BrowserError"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-quic", "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, width: int = 1280, height: int = 900, binary: str = CHROMIUM) -> None:
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="pk-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:
            # In the child: the protocol's descriptors become 3 (commands in) and 4 (replies out). Python
            # opens every other descriptor close-on-exec, so nothing else leaks into the browser.
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        argv = [binary, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=wire, close_fds=False,
                                     start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""
        try:
            self._attach()
        except BaseException:
            self.close()
            raise

    # -- protocol --------------------------------------------------------------------------------
    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        q = self._replies.get(msg["id"])
                    if q is not None:
                        q.put(msg)
                else:
                    with self._lock:
                        self._events.append(msg)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        with self._lock:
            self._next += 1
            ident = self._next
            q: queue.Queue[dict[str, Any]] = queue.Queue()
            self._replies[ident] = q
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        sid = self.session if session is None else session
        if sid:
            msg["sessionId"] = sid
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        try:
            reply = q.get(timeout=timeout)
        except queue.Empty:
            raise BrowserError(f"{method}: no reply in {timeout}s") from None
        finally:
            with self._lock:
                self._replies.pop(ident, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result") or {}

    def _attach(self) -> None:
        targets = self.send("Target.getTargets", session="")["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        target = page["targetId"] if page else self.send("Target.createTarget", {"url": "about:blank"}, session="")["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session="")["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})

    # -- page ------------------------------------------------------------------------------------
    def goto(self, url: str, timeout: float = 30.0) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete'", timeout=timeout, what=f"{url} loaded")

    def js(self, expression: str, timeout: float = 30.0) -> Any:
        """The value of ``expression`` (awaited when it is a promise)."""
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                        timeout=timeout)
        if "exceptionDetails" in res:
            details = res["exceptionDetails"]
            raise BrowserError(f"{expression[:80]}: {(details.get('exception') or {}).get('description') or details}")
        return (res.get("result") or {}).get("value")

    def wait(self, expression: str, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; its value (``True`` for an element)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(BrowserError):
                last = self.js(f"((v) => v instanceof Node ? true : v)({expression})")
                if last:
                    return last
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what or expression}; last: {last!r}")

    def screenshot(self, path: Path, selector: str | None = None, full_page: bool = False) -> Path:
        """A PNG of the viewport, of the whole page, or of one element (scrolled into view first)."""
        params: dict[str, Any] = {"format": "png"}
        if selector is not None:
            rect = self.js(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
                if (!el) return null; el.scrollIntoView({{block: "center"}});
                const r = el.getBoundingClientRect();
                return {{x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height}}; }})()""")
            if not rect or rect["width"] < 1 or rect["height"] < 1:
                raise BrowserError(f"{selector}: not on the page, or empty")
            params["clip"] = {**rect, "scale": 1}
            params["captureBeyondViewport"] = True
        elif full_page:
            size = self.js("({width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight})")
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    # -- end -------------------------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", session="", timeout=3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
