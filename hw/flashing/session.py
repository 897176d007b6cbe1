"""One board over mpremote's transport (raw REPL / raw-paste), and then over the headset link.

Every board operation is built on mpremote's ``SerialTransport`` (exec/eval and its fs_* helpers);
errors from a board that vanished or stopped answering become ``BoardError``.
"""

from __future__ import annotations

import ast
import errno
import time
from collections.abc import Callable
from typing import Any

import serial
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from hw.errors import BoardError, FlashError
from hw.firmware import headset_link as hl
from hw.flashing.manifest import sha256

MIN_MICROPYTHON = (1, 20, 0)
RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
EXCERPT_CHARS = 24  # of a non-REPL port's output, in its error message
WRITE_CHUNK = 1024  # bytes per exec while writing a file
TMP_SUFFIX = ".tmp"


class BoardSession:
    """A connection to one MicroPython board at ``port``."""

    def __init__(self, port: str, timeout_s: float = 10.0):
        """``timeout_s``: how long to wait for the raw REPL when connecting (s)."""
        self.port = port
        self.timeout_s = timeout_s
        try:
            self.t = SerialTransport(port, baudrate=115200)
        except (TransportError, serial.SerialException, OSError) as exc:
            raise BoardError(f"{port}: cannot open the port ({exc})") from None
        self.in_raw = False

    def close(self) -> None:
        try:
            self.t.close()
        except (OSError, serial.SerialException):
            pass

    def __enter__(self) -> BoardSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw REPL
    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except TransportExecError as exc:
            last = (exc.error_output.strip().splitlines() or ["(no error text)"])[-1]
            raise BoardError(f"{self.port}: {what} failed on the board: {last}") from None
        except (TransportError, serial.SerialException, OSError, ValueError) as exc:
            raise BoardError(f"{self.port}: board vanished or stopped answering during {what} ({exc})") from None

    def enter_raw(self) -> None:
        """Interrupt whatever runs (the firmware) and enter the raw REPL.

        mpremote's ``enter_raw_repl(soft_reset=False)``, without its dump of whatever a port that is
        no MicroPython board sent (to stdout, kilobytes of it): that becomes one :class:`BoardError`
        with the byte count and a short printable excerpt. Waits at most ``timeout_s``.
        """
        data: bytes = self._guard("entering the raw REPL", self._raw_handshake)
        if not data.endswith(RAW_REPL_BANNER):
            raise BoardError(not_a_repl_message(self.port, data, self.timeout_s))
        self.t.in_raw_repl = True
        self.in_raw = True

    def _raw_handshake(self) -> bytes:
        """Ctrl-C, drop what was pending, Ctrl-A; everything the port sent until the raw REPL banner."""
        ser = self.t.serial
        end = time.monotonic() + self.timeout_s
        ser.write(b"\r\x03")  # Ctrl-C: interrupt the firmware
        pending = b""
        while (n := ser.in_waiting) and time.monotonic() < end:  # a port that never stops is bounded
            pending += ser.read(n)
        ser.write(b"\r\x01")  # Ctrl-A: the raw REPL
        rest = max(0.1, end - time.monotonic())
        got: bytes = self.t.read_until(1, RAW_REPL_BANNER, timeout=rest, timeout_overall=rest)
        return got if got.endswith(RAW_REPL_BANNER) else pending + got

    def exec(self, code: str, what: str) -> bytes:
        out: bytes = self._guard(what, lambda: self.t.exec(code))
        return out

    def eval(self, expr: str, what: str) -> Any:
        out = self.exec(f"print(repr({expr}))", what)
        try:
            return ast.literal_eval(out.decode().strip())
        except (ValueError, SyntaxError):
            raise BoardError(f"{self.port}: unexpected answer during {what}: {out[:80]!r}") from None

    def micropython_version(self) -> tuple[int, ...]:
        v = self.eval("tuple(__import__('sys').implementation.version[:3])", "reading the MicroPython version")
        return tuple(int(x) for x in v)

    def check_version(self) -> str:
        v = self.micropython_version()
        text = ".".join(str(x) for x in v)
        if v < MIN_MICROPYTHON:
            raise FlashError(
                f"{self.port}: MicroPython {text} is older than 1.20; install a current one first: "
                "pip install mpflash && mpflash flash --board RPI_PICO")
        return text

    def unique_id(self) -> str:
        return str(self.eval("__import__('binascii').hexlify(__import__('machine').unique_id()).decode()",
                             "reading the board's unique id"))

    def read_file(self, name: str) -> bytes | None:
        """The content of a file on the board, None when it does not exist."""
        try:
            return bytes(self.t.fs_readfile(name))
        except OSError as exc:
            if getattr(exc, "errno", None) == errno.ENOENT:
                return None
            raise BoardError(f"{self.port}: reading {name} failed ({exc})") from None
        except (TransportError, serial.SerialException) as exc:
            raise BoardError(f"{self.port}: board vanished or stopped answering while reading {name} ({exc})") from None

    def file_sha(self, name: str) -> str | None:
        """SHA-256 (hex) of a file on the board, None when it does not exist."""
        try:
            digest = self.t.fs_hashfile(name, "sha256")
        except OSError as exc:
            if getattr(exc, "errno", None) == errno.ENOENT:
                return None
            raise BoardError(f"{self.port}: hashing {name} failed ({exc})") from None
        except (TransportError, serial.SerialException) as exc:
            raise BoardError(f"{self.port}: board vanished or stopped answering while hashing {name} ({exc})") from None
        return bytes(digest).hex()

    def write_atomic(self, name: str, data: bytes) -> None:
        """Write to name.tmp, check its SHA-256 on the board, then rename over name."""
        tmp = name + TMP_SUFFIX
        self._guard(f"writing {name}", lambda: self.t.fs_writefile(tmp, data, chunk_size=WRITE_CHUNK))
        got = self.file_sha(tmp)
        if got != sha256(data):
            self.exec(f"import os\nos.remove({tmp!r})", f"removing the bad {tmp}")
            raise BoardError(f"{self.port}: verification failed for {name}: the board holds sha256 {got}, "
                             f"expected {sha256(data)}; the old file was kept")
        self.exec(f"import os\nos.rename({tmp!r}, {name!r})", f"renaming {tmp}")

    # -- after the flash: reset and the headset link
    def soft_reset(self) -> None:
        """Leave the raw REPL and soft-reset in friendly mode, which runs boot.py and main.py."""
        ser = self.t.serial
        try:
            self.t.exit_raw_repl()
            self.in_raw = False
            time.sleep(0.05)
            ser.reset_input_buffer()
            ser.write(b"\x04")
        except (serial.SerialException, OSError) as exc:
            raise BoardError(f"{self.port}: board vanished during the reset ({exc})") from None

    def read_messages(self, until: Callable[[dict[str, Any]], bool], timeout_s: float, what: str) -> dict[str, Any]:
        """Read headset-link lines (skipping REPL text) until one matches; BoardError on timeout."""
        ser = self.t.serial
        lines = hl.LineBuffer()
        seen: list[bytes] = []
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                data = ser.read(ser.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                raise BoardError(f"{self.port}: board vanished while waiting for {what} ({exc})") from None
            for line in lines.feed(data.replace(b"\r", b"")):
                try:
                    msg = hl.decode(line)
                except hl.LinkError:
                    seen.append(line)
                    continue
                if until(msg):
                    return msg
        tail = b" | ".join(seen[-3:]).decode(errors="replace")
        raise BoardError(f"{self.port}: no {what} within {timeout_s:g} s" + (f" (board said: {tail})" if tail else ""))

    def send(self, msg: dict[str, Any]) -> None:
        try:
            self.t.serial.write(hl.encode(msg))
        except (serial.SerialException, OSError) as exc:
            raise BoardError(f"{self.port}: board vanished ({exc})") from None


def not_a_repl_message(port: str, data: bytes, timeout_s: float) -> str:
    """One line for a port that did not give the raw REPL banner: no dump of what it sent."""
    if not data:
        return (f"{port} does not answer as a MicroPython raw REPL (no output within {timeout_s:g} s; "
                "is another program using the port?)")
    head = data[:EXCERPT_CHARS]
    text = sum(32 <= b < 127 or b in b"\r\n\t" for b in head) >= 0.75 * len(head)
    if text:  # e.g. another firmware's banner: a short excerpt tells what it is
        excerpt = "".join(chr(b) if 32 <= b < 127 else " " for b in head).strip()
        what = f"starting {excerpt!r}{'...' if len(data) > EXCERPT_CHARS else ''}"
    else:
        what = "not text: a wrong baud rate, or no MicroPython board?"
    return f"{port} does not answer as a MicroPython raw REPL (got {len(data)} bytes of other output, {what})"
