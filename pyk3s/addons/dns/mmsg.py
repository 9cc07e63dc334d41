"""recvmmsg/sendmmsg on preallocated buffers, through ctypes (Linux only).

Under load a UDP server spends much of its time entering and leaving the kernel: one recvfrom and one
sendto per query, plus the recvfrom that ends each drain with EAGAIN. With these calls a readable event
costs one recvmmsg for up to `slots` queries and one sendmmsg for their replies.

Layout: slot i has a receive buffer and a sockaddr buffer the kernel fills, and a send message to that
same sockaddr made of two iovecs: the query's 2-byte ID (still in the receive buffer) and the slot's
send buffer, so a precomputed reply body is one copy away from going out. The caller touches only the
memoryviews below; `Batch.open` returns None where the calls are missing (not Linux, no libc).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import sys

__all__ = ["Batch"]

_MSG_DONTWAIT = 0x40
_NAME_SIZE = 128                # sizeof(struct sockaddr_storage)


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


_MSZ = ctypes.sizeof(_Mmsghdr)
_ISZ = ctypes.sizeof(_Iovec)
_SSZ = ctypes.sizeof(ctypes.c_size_t)
_U16 = struct.Struct("=H")
_INET = struct.Struct("!H4s")               # port, address (after the family)
_INET6 = struct.Struct("!HI16s")            # port, flow info, address
_SCOPE = struct.Struct("=I")
_funcs: tuple | None | bool = False         # False: not looked up yet


def _libc() -> tuple | None:
    global _funcs
    if _funcs is not False:
        return _funcs  # type: ignore[return-value]
    _funcs = None
    if not sys.platform.startswith("linux"):
        return None
    try:
        # PyDLL keeps the GIL across the call: both calls are non-blocking, so releasing and re-taking
        # it would be pure cost
        libc = ctypes.PyDLL(None, use_errno=True)
        recv, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    recv.restype = ctypes.c_int
    send.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    send.restype = ctypes.c_int
    _funcs = (recv, send)
    return _funcs


class Batch:
    """Per slot i, for the caller's loop: `slot[i]` is (offset in rbuf, offset in sbuf, index of the
    datagram's length in `lengths`, index of the reply body's length in `body_lengths`). After `recv`
    returns n, slots 0..n-1 hold datagrams; to reply from slot i, write the body (the reply without its
    ID) at sbuf[offset:] and its length at body_lengths[index], then `send` a run of slots."""

    __slots__ = ("fd", "slots", "recv_size", "send_size", "rbuf", "sbuf", "lengths", "body_lengths", "slot",
                 "_names", "_keep", "_recv", "_send", "_rhdr_ptr", "_shdr_ptr")

    def __init__(self, sock: socket.socket, funcs: tuple, slots: int, recv_size: int, send_size: int) -> None:
        self.fd = sock.fileno()
        self.slots, self.recv_size, self.send_size = slots, recv_size, send_size
        self._recv, self._send = funcs
        rraw = bytearray(slots * recv_size)
        sraw = bytearray(slots * send_size)
        nraw = bytearray(slots * _NAME_SIZE)
        rptr = ctypes.addressof((ctypes.c_char * len(rraw)).from_buffer(rraw))
        sptr = ctypes.addressof((ctypes.c_char * len(sraw)).from_buffer(sraw))
        nptr = ctypes.addressof((ctypes.c_char * len(nraw)).from_buffer(nraw))
        # a socket of one family only ever receives that family's addresses (IPv4 peers of an IPv6
        # socket arrive v4-mapped), so every sender's address has the same length
        namelen = 28 if sock.family == socket.AF_INET6 else 16
        rhdr = (_Mmsghdr * slots)()
        shdr = (_Mmsghdr * slots)()
        riov = (_Iovec * slots)()
        siov = (_Iovec * (2 * slots))()
        riov_ptr, siov_ptr = ctypes.addressof(riov), ctypes.addressof(siov)
        for i in range(slots):
            riov[i].base, riov[i].len = rptr + i * recv_size, recv_size
            h = rhdr[i].hdr
            h.name, h.namelen, h.iov, h.iovlen = nptr + i * _NAME_SIZE, _NAME_SIZE, riov_ptr + i * _ISZ, 1
            siov[2 * i].base, siov[2 * i].len = rptr + i * recv_size, 2
            siov[2 * i + 1].base, siov[2 * i + 1].len = sptr + i * send_size, 0
            h = shdr[i].hdr
            h.name, h.namelen, h.iov, h.iovlen = nptr + i * _NAME_SIZE, namelen, siov_ptr + 2 * i * _ISZ, 2
        self._keep = (rraw, sraw, nraw, rhdr, shdr, riov, siov)
        self._rhdr_ptr, self._shdr_ptr = ctypes.addressof(rhdr), ctypes.addressof(shdr)
        self.rbuf = memoryview(rraw)
        self.sbuf = memoryview(sraw)
        self._names = memoryview(nraw)
        self.lengths = memoryview(rhdr).cast("B").cast("I")
        self.body_lengths = memoryview(siov).cast("B").cast("N")  # type: ignore[call-overload]  # size_t
        len_at = _Mmsghdr.len.offset
        body_at = _ISZ + _Iovec.len.offset
        self.slot = [(i * recv_size, i * send_size, (i * _MSZ + len_at) // 4, (2 * i * _ISZ + body_at) // _SSZ)
                     for i in range(slots)]

    @classmethod
    def open(cls, sock: socket.socket, slots: int = 64, recv_size: int = 4096,
             send_size: int = 4096) -> Batch | None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_DGRAM:
            return None
        funcs = _libc()
        if funcs is None:
            return None
        return cls(sock, funcs, slots, recv_size, send_size)

    def recv(self) -> int:
        """How many datagrams are now in slots 0.. (0: none waiting). OSError for errors but EAGAIN/EINTR."""
        n = self._recv(self.fd, self._rhdr_ptr, self.slots, _MSG_DONTWAIT, None)
        if n >= 0:
            return n
        e = ctypes.get_errno()
        if e in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
            return 0
        raise OSError(e, os.strerror(e))

    def send(self, start: int, count: int) -> None:
        """Send the replies staged in slots start..start+count-1. Like sendto on a full send buffer or
        an unreachable peer, a reply the kernel refuses is dropped."""
        ptr = self._shdr_ptr + start * _MSZ
        while count > 0:
            n = self._send(self.fd, ptr, count, _MSG_DONTWAIT)
            if n < 0:
                e = ctypes.get_errno()
                if e == errno.EINTR:
                    continue
                if e in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS):
                    return          # the rest would fail the same way
                n = 1               # this one message is bad (its address): skip it
            ptr += n * _MSZ
            count -= n

    def address(self, i: int) -> tuple:
        """Slot i's sender, as socket.recvfrom gives it."""
        mv, o = self._names, i * _NAME_SIZE
        if _U16.unpack_from(mv, o)[0] == socket.AF_INET6:
            port, flow, addr = _INET6.unpack_from(mv, o + 2)
            return socket.inet_ntop(socket.AF_INET6, addr), port, flow, _SCOPE.unpack_from(mv, o + 24)[0]
        port, addr = _INET.unpack_from(mv, o + 2)
        return socket.inet_ntop(socket.AF_INET, addr), port
