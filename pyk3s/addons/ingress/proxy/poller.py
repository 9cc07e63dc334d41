"""One epoll set for the sockets of routed TCP connections, watched by the event loop as a single reader.

The kernel relay changes what it waits for on a socket several times per connection; through the event
loop's ``add_reader``/``add_writer`` every change costs a handle and extra system calls. Here a change
is one ``epoll_ctl``, a closed socket leaves the set by itself, and one ``epoll_wait`` serves every ready
socket of a loop turn. Registration is level-triggered; callbacks get the event mask and must tolerate a
spurious call (a closed descriptor's number may be reused by the next connection within one batch).

Deadlines of relays (dial timeout, termination delay) are kept here too: one timer ticking every
``TICK`` seconds while any is pending checks them all, instead of a timer per connection.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import Protocol

__all__ = ["Poller", "poller_for", "IN", "OUT", "ERR", "HUP", "TICK", "Expiring"]

TICK = 0.02

IN = select.EPOLLIN
OUT = select.EPOLLOUT
HUP = select.EPOLLHUP
ERR = select.EPOLLERR | select.EPOLLHUP
_BATCH = 512


class Expiring(Protocol):
    def expired(self) -> None: ...


class Poller:
    __slots__ = ("loop", "epoll", "handlers", "deadlines", "ticking")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.epoll = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.deadlines: dict[Expiring, float] = {}
        self.ticking = False
        loop.add_reader(self.epoll.fileno(), self._ready)

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
