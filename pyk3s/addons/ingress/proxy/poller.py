"""One epoll set for the sockets of routed TCP connections, watched by the event loop as a single reader.

The kernel relay changes what it waits for on a socket several times per connection; through the event
loop's ``add_reader``/``add_writer`` every change costs a handle and extra system calls. Here a change
is one ``epoll_ctl``, a closed socket leaves the set by itself, and one ``epoll_wait`` serves every ready
socket of a loop turn. Registration is level-triggered; callbacks get the event mask and must tolerate a
spurious call (a closed descriptor's number may be reused by the next connection within one batch).

Deadlines of relays (dial timeout, termination delay) are kept here too: one timer ticking every
``TICK`` seconds while any is pending checks them all, instead of a timer per connection. Work that only
matters for connections that live on (TCP keep-alive on a server socket, see ``tcp_dial.py``) is put off
by ``after_a_while``: done between ``SETTLE`` and twice that later for the sockets still open, and never
for the many connections that ended before (a timer ticking every ``SETTLE`` seconds while work waits
takes the work queued before the previous tick).
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable
from typing import Protocol

__all__ = ["Poller", "poller_for", "IN", "OUT", "ERR", "HUP", "RDHUP", "TICK", "SETTLE", "Expiring"]

TICK = 0.02
SETTLE = 1.0

IN = select.EPOLLIN
OUT = select.EPOLLOUT
HUP = select.EPOLLHUP
RDHUP = select.EPOLLRDHUP
ERR = select.EPOLLERR | select.EPOLLHUP
_BATCH = 512


class Expiring(Protocol):
    def expired(self) -> None: ...


class Poller:
    __slots__ = ("loop", "epoll", "handlers", "deadlines", "ticking", "settling", "aging", "settle_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.epoll = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.deadlines: dict[Expiring, float] = {}
        self.ticking = False
        self.settling: list[tuple[Callable[[socket.socket, int], None], socket.socket, int]] = []
        self.aging: list[tuple[Callable[[socket.socket, int], None], socket.socket, int]] = []  # queued a tick ago
        self.settle_timer: asyncio.TimerHandle | None = None
        loop.add_reader(self.epoll.fileno(), self._ready)

    def after_a_while(self, work: Callable[[socket.socket, int], None], sock: socket.socket, arg: int) -> None:
        """``work(sock, arg)`` SETTLE to 2 * SETTLE seconds from now if ``sock`` is still open then (errors
        ignored)."""
        self.settling.append((work, sock, arg))
        if self.settle_timer is None:
            self.settle_timer = self.loop.call_later(SETTLE, self._settle)

    def _settle(self) -> None:
        due, self.aging, self.settling = self.aging, self.settling, []
        for work, sock, arg in due:
            if sock.fileno() >= 0:
                try:
                    work(sock, arg)
                except OSError:
                    pass  # closed by the peer meanwhile
        self.settle_timer = self.loop.call_later(SETTLE, self._settle) if self.aging else None

    def deadline(self, owner: Expiring, when: float) -> None:
        """Call ``owner.expired()`` once the loop's clock passes ``when`` (within TICK)."""
        self.deadlines[owner] = when
        if not self.ticking:
            self.ticking = True
            self.loop.call_later(TICK, self._tick)

    def cancel(self, owner: Expiring) -> None:
        self.deadlines.pop(owner, None)

    def _tick(self) -> None:
        now = self.loop.time()
        due = [o for o, when in self.deadlines.items() if when <= now]
        for owner in due:
            if self.deadlines.pop(owner, None) is not None:
                owner.expired()
        if self.deadlines:
            self.loop.call_later(TICK, self._tick)
        else:
            self.ticking = False

    def watch(self, fd: int, mask: int, handler: Callable[[int], None]) -> None:
        """Call ``handler(events)`` while ``fd`` has any of ``mask`` (replaces an earlier watch of ``fd``)."""
        self.handlers[fd] = handler
        try:
            self.epoll.register(fd, mask)
        except FileExistsError:
            self.epoll.modify(fd, mask)

    def change(self, fd: int, mask: int) -> None:
        self.epoll.modify(fd, mask)

    def forget(self, fd: int) -> None:
        """``fd`` is about to be closed (which takes it out of the set) or handed to someone else."""
        if self.handlers.pop(fd, None) is not None:
            try:
                self.epoll.unregister(fd)
            except (FileNotFoundError, OSError):
                pass

    def drop(self, fd: int) -> None:
        """``fd`` is about to be closed: only the handler goes, the kernel drops the registration."""
        self.handlers.pop(fd, None)

    def _ready(self) -> None:
        handlers = self.handlers
        for fd, events in self.epoll.poll(0, _BATCH):
            handler = handlers.get(fd)
            if handler is not None:
                handler(events)

    def close(self) -> None:
        if self.settle_timer is not None:
            self.settle_timer.cancel()
            self.settle_timer = None
        self.settling.clear()
        self.aging.clear()
        self.loop.remove_reader(self.epoll.fileno())
        self.epoll.close()
        self.handlers.clear()


_POLLERS: dict[int, Poller] = {}


def poller_for(loop: asyncio.AbstractEventLoop) -> Poller:
    """The poller of this event loop (one per worker process)."""
    poller = _POLLERS.get(id(loop))
    if poller is None or poller.loop is not loop:
        poller = _POLLERS[id(loop)] = Poller(loop)
    return poller
