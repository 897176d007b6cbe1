"""One board over mpremote's transport (raw REPL / raw-paste), and then over the headset link.

Every board operation is built on mpremote's ``SerialTransport`` (exec/eval and its fs_* helpers);
errors from a board that vanished or stopped answering become ``BoardError``.
"""

from __future__ import annotations

import ast
import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
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

# What mpremote users ask a board (``import sys; sys.implementation`` and ``os.uname()``), plus the
# headset firmware version written in the board's hs_app.py, in one exec. os.uname() is missing on
# some ports: then sys.implementation._machine names the board.
IDENTITY_CODE = """
import sys, os
_i = sys.implementation
_u = os.uname() if hasattr(os, 'uname') else None
def _fw():
    try:
        with open('hs_app.py') as f:
            for ln in f:
                if ln.startswith('FW_VERSION = "'):
                    return ln.split('"')[1]
    except OSError:
        pass
    return ''
_files = os.listdir()
print(repr({'name': _i.name, 'version': tuple(_i.version[:3]),
            'machine': _u.machine if _u else getattr(_i, '_machine', ''),
            'release': _u.release if _u else '', 'fw': _fw(), 'main': 'main.py' in _files}))
"""
# Every file under the working folder (recursively): [(path, size in bytes), ...]
WALK_CODE = """
import os
def _walk(d, out):
    for e in (os.ilistdir(d) if d else os.ilistdir()):
        p = d + '/' + e[0] if d else e[0]
        if e[1] & 0x4000:
            _walk(p, out)
        else:
            out.append((p, e[3] if len(e) > 3 else -1))
    return out
print(repr(_walk('', [])))
"""


@dataclass(frozen=True)
class BoardIdentity:
    """What a board says about itself over the raw REPL."""

    micropython: str  # "1.27.0"
    implementation: str  # "micropython"
    machine: str  # "Raspberry Pi Pico with RP2040"
    firmware: str  # FW_VERSION in the board's hs_app.py; "" when there is none (a blank board)
    has_main: bool  # main.py present: a soft reset starts it


class BoardSession:
    """A connection to one MicroPython board at ``port``."""

    def __init__(self, port: str, timeout_s: float = 10.0):
        """``timeout_s``: how long to wait for the raw REPL when connecting (s)."""
        self.port = port
        self.timeout_s = timeout_s
        if port.startswith("/") and not os.path.exists(port):
            raise BoardError(f"{port}: cannot open the port: no such port (is the board plugged in?)")
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

    def identity(self) -> BoardIdentity:
        """MicroPython version and machine (sys.implementation, os.uname()) and the headset firmware
        version on the board's flash, read over the raw REPL (which must be entered)."""
        d = self.eval_code(IDENTITY_CODE, "reading the MicroPython version")
        try:
            return BoardIdentity(".".join(str(int(x)) for x in d["version"]), str(d["name"]), str(d["machine"]),
                                 str(d["fw"]), bool(d["main"]))
        except (KeyError, TypeError, ValueError):
            raise BoardError(f"{self.port}: unexpected answer while reading the MicroPython version: {d!r:.80}") from None

    def eval_code(self, code: str, what: str) -> Any:
        """Run ``code``, which prints one repr(); its value."""
        out = self.exec(code, what)
        try:
            return ast.literal_eval(out.decode().strip())
        except (ValueError, SyntaxError, UnicodeDecodeError):
            raise BoardError(f"{self.port}: unexpected answer during {what}: {out[:80]!r}") from None

    def walk(self) -> list[tuple[str, int]]:
        """Every file on the board (paths relative to its working folder, "/") with its size in bytes."""
        files = self.eval_code(WALK_CODE, "listing the board's files")
        return [(str(p), int(n)) for p, n in files]

    def leave(self, restart: bool) -> None:
        """Leave the raw REPL: with ``restart``, soft-reset so that main.py (the firmware) runs again;
        else back to the friendly REPL with no reset (a blank board stays as it was)."""
        if restart:
            self.soft_reset()
            return
        try:
            self.t.exit_raw_repl()
            self.in_raw = False
        except (serial.SerialException, OSError) as exc:
            raise BoardError(f"{self.port}: board vanished while leaving the raw REPL ({exc})") from None

    def unique_id(self) -> str:
        return str(self.eval("__import__('binascii').hexlify(__import__('machine').unique_id()).decode()",
                             "reading the board's unique id"))

    def read_file(self, name: str, progress: Callable[[int, int], None] | None = None) -> bytes | None:
        """The content of a file on the board, None when it does not exist; ``progress(done, total)``
        in bytes as it comes."""
        try:
            return bytes(self.t.fs_readfile(name, chunk_size=WRITE_CHUNK, progress_callback=progress))
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
