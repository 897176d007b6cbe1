"""A pty that stands in for a USB serial port: a stable symlink path, unplug and replug.

The slave end is kept open here (in raw mode) so that bytes the "board" writes before the desk
opens the port wait in the pty, as they wait in a USB CDC buffer, and so that the master never
sees a hang-up while no reader is attached. Unplug closes both ends and removes the link: an open
reader then gets EIO, as with a pulled USB cable.

The master runs in packet mode (TIOCPKT): when the desk opens the port, pyserial flushes its input
queue, and that flush reaches us as a TIOCPKT_FLUSHREAD packet: the "host connected" signal that
a USB device gets from DTR.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios
import tty
from pathlib import Path


class PtyPort:
    def __init__(self, link_path: str | Path):
        self.link_path = Path(link_path)
        self.master: int | None = None
        self.slave: int | None = None
        self.slave_name = ""
        self.connects = 0  # times a reader opened the port (input flushes seen)

    @property
    def is_open(self) -> bool:
        return self.master is not None

    def open(self) -> None:
        if self.master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        fcntl.ioctl(master, termios.TIOCPKT, struct.pack("i", 1))
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        self.slave_name = os.ttyname(slave)
        self.link_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link_path.with_name(self.link_path.name + ".new")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(self.slave_name, tmp)
        os.replace(tmp, self.link_path)

    def close(self) -> None:
        """Unplug: close both ends and remove the link (idempotent)."""
        if self.link_path.is_symlink() and os.readlink(self.link_path) == self.slave_name:
            self.link_path.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None

    def wait_readable(self, timeout_s: float) -> None:
        """Wait at most ``timeout_s`` for bytes from the desk (at once when unplugged). Safe without the
        owner's lock: a port closed meanwhile only ends the wait early."""
        fd = self.master
        if fd is None:
            return
        try:
            select.select([fd], [], [], timeout_s)
        except (OSError, ValueError):
            return

    def read(self, timeout_s: float) -> bytes:
        """Bytes the desk wrote, waiting at most timeout_s; b"" when none (or unplugged)."""
        fd = self.master
        if fd is None:
            return b""
        try:
            ready, _, _ = select.select([fd], [], [], timeout_s)
        except (OSError, ValueError):
            return b""
        if not ready:
            return b""
        try:
            packet = os.read(fd, 4097)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EIO, errno.EBADF):
                return b""
            raise
        if not packet:
            return b""
        if packet[0] == termios.TIOCPKT_DATA:
            return packet[1:]
        if packet[0] & termios.TIOCPKT_FLUSHREAD:
            self.connects += 1
        return b""

    def write(self, data: bytes) -> int:
        """Write what fits; a full pty buffer (no reader) drops the rest, as USB CDC does."""
        if self.master is None or not data:
            return 0
        sent = 0
        while sent < len(data):
            try:
                n = os.write(self.master, data[sent:])
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EIO:
                    break
                raise
            sent += n
        return sent

    def write_all(self, data: bytes, timeout_s: float = 5.0) -> None:
        """Write everything, waiting for the reader (REPL replies must not be dropped)."""
        view = memoryview(data)
        while view and self.master is not None:
            n = self.write(bytes(view))
            view = view[n:]
            if view:
                try:
                    select.select([], [self.master], [], min(timeout_s, 0.05))
                except (OSError, ValueError):
                    return
