"""The gdb remote serial protocol's framing, over one connected socket.

A packet is `$data#cc`: cc is the sum of the data bytes modulo 256, in two
hex digits.  In the data, `#`, `$`, `}` and `*` are escaped as `}` followed
by the byte XOR 0x20 (gdb escapes binary data that way; it never sends
run-length encoding, and this side never produces it).  Each packet is
acknowledged with `+` (or `-`: send it again) until gdb turns
acknowledgements off with QStartNoAckMode, which this stub does not offer.

Outside packets, gdb sends a bare 0x03 byte to interrupt a running
target (its Ctrl-C); `Connection.interrupted()` looks for it without
blocking, so a run in slices can stop between two of them.
"""

from __future__ import annotations

import contextlib
import select
import socket

from ..errors import SetupError

INTERRUPT = 0x03
_ESCAPED = frozenset(b"#$}*")


class ConnectionClosed(SetupError):
    """gdb went away (the socket closed, or it broke the protocol)."""


def checksum(data: bytes) -> bytes:
    return b"%02x" % (sum(data) & 0xFF)


def escape(data: bytes) -> bytes:
    """Binary data as it may appear inside a packet (qXfer replies)."""
    out = bytearray()
    for b in data:
        if b in _ESCAPED:
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            b = next(it, 0x20) ^ 0x20
        out.append(b)
    return bytes(out)


def frame(data: bytes) -> bytes:
    return b"$" + data + b"#" + checksum(data)


class Connection:
    """One gdb on one socket: packets in and out, acknowledgements, and
    the interrupt byte (remembered when it arrives between packets)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()
        self._interrupt = False
        self._last_sent = b""
        self.closed = False

    # --- bytes ---------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            raise ConnectionClosed("gdb closed the connection") from None

    def _fill(self, timeout: float | None) -> bool:
        """Reads what has arrived (waiting up to timeout; None: until
        something does).  False when nothing came in time."""
        if timeout is not None:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return False
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise ConnectionClosed("gdb closed the connection")
        self._buf += chunk
        return True

    def _drop_noise(self) -> None:
        """Consumes acknowledgements and interrupts ahead of the next packet
        (a `-` asks for the last packet again)."""
        while self._buf and self._buf[0] != ord("$"):
            b = self._buf.pop(0)
            if b == INTERRUPT:
                self._interrupt = True
            elif b == ord("-") and self._last_sent:
                self._write(self._last_sent)

    # --- packets -------------------------------------------------------------------------------

    def receive(self) -> bytes:
        """The next packet's data (unescaped), acknowledged; blocks."""
        while True:
            self._drop_noise()
            end = self._buf.find(b"#")
            if self._buf and end >= 0 and len(self._buf) >= end + 3:
                body = bytes(self._buf[1:end])
                sent_sum = bytes(self._buf[end + 1:end + 3]).lower()
                del self._buf[:end + 3]
                if checksum(body) != sent_sum:
                    self._write(b"-")
                    continue
                self._write(b"+")
                return unescape(body)
            self._fill(None)

    def send(self, data: bytes | str) -> None:
        """Sends one packet.  Its `+` is consumed with the next read, and a
        `-` there sends it again (_drop_noise)."""
        raw = data.encode() if isinstance(data, str) else data
        self._last_sent = frame(raw)
        self._write(self._last_sent)

    def interrupted(self) -> bool:
        """Whether gdb sent its interrupt byte (0x03) since the last call:
        looks at what has arrived without waiting."""
        try:
            while self._fill(0):
                pass
            self._drop_noise()
        except ConnectionClosed:
            self._interrupt = True      # nobody to report to: stop, and let the caller see
        hit, self._interrupt = self._interrupt, False
        return hit

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()


__all__ = ["Connection", "ConnectionClosed", "INTERRUPT", "checksum", "escape", "frame",
           "unescape"]
