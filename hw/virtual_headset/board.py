"""A whole virtual MicroPython board on a pty, good enough for mpremote and ``headset-flash``.

- Friendly REPL, raw REPL (Ctrl-A) and raw-paste mode (``\\x05A\\x01`` -> ``R\\x01``), soft reset
  (Ctrl-D) as the RP2040 port does them; the code received runs in real MicroPython (the
  WebAssembly port, one node process per board), so output and errors are MicroPython's own.
- ``os.uname()`` answers as the rp2 port does (``machine='Raspberry Pi Pico with RP2040'``; the
  WebAssembly port has none), so tools can ask a blank board what it is.
- The flash filesystem is a host directory (``fs_dir``): tests can look at it or damage it.
- At power-on and on a soft reset in friendly mode it runs boot.py and then main.py from that
  filesystem, with the fake HAL (hw/firmware/fakehal.py) replaying the trace in place of hal.py's
  hardware: the flashed firmware speaks the headset link on the same pty.
- Fault injection: ``vanish_after_bytes`` (the board disappears mid-transfer), ``corrupt_files``
  (file names whose content is damaged right after each write, as a failing flash would),
  ``safe_pin_held``, ``pretend_micropython`` (``sys.implementation.version`` says an older release).
"""

from __future__ import annotations

import base64
import struct
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from hw.virtual_headset.micropython import MicroPythonWorker
from hw.virtual_headset.pty_port import PtyPort
from hw.virtual_headset.trace import HeadsetTrace

BANNER = (b"MicroPython v1.27.0 on 2025-12-10; Raspberry Pi Pico with RP2040\r\n"
          b'Type "help()" for more information.\r\n>>> ')
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
PASTE_WINDOW = 256
FAKEHAL = Path(__file__).resolve().parent.parent / "firmware" / "fakehal.py"

# Board glue, run in MicroPython's globals: the fake HAL stands in for hal.py's hardware, then
# main.py runs as flashed; hs_app.run() is replaced by a step-driven version (the board's loop is
# the virtual board's tick, not a `while True`).
BOOT_FIRMWARE = """
import machine
_NOW = [0]
_fh = {"__name__": "fakehal"}
exec(compile(_FAKEHAL_SRC, "fakehal.py", "exec"), _fh)
_HAL = _fh["FakeHal"](json.loads(_SEGMENTS), lambda: _NOW[0], unique_id=machine.unique_id(),
                      mounting=_MOUNTING)
class _HalModule:
    @staticmethod
    def Hal():
        return _HAL
sys.modules["hal"] = _HalModule
_APP = [None]
_RESULT = "none"
try:
    import hs_app
    def _run_stepwise(hal):
        _APP[0] = hs_app.make_app(hal)
    hs_app.run = _run_stepwise
except ImportError:
    pass
_board_exec(open("main.py").read())
_RESULT = "running" if _APP[0] is not None else "stopped"

def _board_tick(now, rx):
    _NOW[0] = now
    if rx:
        _HAL.rx += binascii.a2b_base64(rx.encode())
    _APP[0].step()
    return binascii.b2a_base64(_HAL.take_tx()).decode().strip()
"""


def _cooked(data: bytes) -> bytes:
    """MicroPython's terminal output turns "\\n" into "\\r\\n"."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class VirtualBoard:
    """A MicroPython RP2040 board on a pty at ``link_path`` with its flash in ``fs_dir``."""

    def __init__(
        self,
        link_path: str | Path,
        fs_dir: str | Path,
        trace: HeadsetTrace | None = None,
        unique_id: str = "e6614103e7452d2f",
        mounting: str = "+x+y+z",
        time_scale: float = 1.0,
        clock: Callable[[], float] | None = None,
        vanish_after_bytes: int | None = None,
        corrupt_files: Iterable[str] = (),
        safe_pin_held: bool = False,
        pretend_micropython: tuple[int, int, int] | None = None,
    ):
        self.port = PtyPort(link_path)
        self.fs_dir = Path(fs_dir)
        self.fs_dir.mkdir(parents=True, exist_ok=True)
        self.trace = trace or HeadsetTrace.scenario("upright")
        self.uid = unique_id
        self.mounting = mounting
        self.time_scale = time_scale
        self.clock = clock or time.monotonic
        self.vanish_after_bytes = vanish_after_bytes
        self._corrupt_since = 0
        self._corrupt_files: set[str] = set()
        self.corrupt_files = set(corrupt_files)
        self.safe_pin_held = safe_pin_held
        self.pretend_micropython = pretend_micropython
        self.worker: MicroPythonWorker | None = None
        self.mode = "off"  # off | friendly | raw | paste | running
        self.received = 0
        self.boots = 0
        self.firmware_errors: list[str] = []
        self._line = b""
        self._pending = b""
        self._paste_since_ack = 0
        self._corrupted: set[tuple[str, int, int]] = set()
        self._boot_t0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def link_path(self) -> Path:
        return self.port.link_path

    @property
    def corrupt_files(self) -> set[str]:
        """Names (and their .tmp) whose content gets damaged when written from now on."""
        return self._corrupt_files

    @corrupt_files.setter
    def corrupt_files(self, names: set[str]) -> None:
        self._corrupt_since = time.time_ns()
        self._corrupt_files = set(names)

    # -- life cycle
    def start(self) -> None:
        self.port.open()
        self.worker = MicroPythonWorker(self.fs_dir)
        self._power_on(friendly=True, banner_first=False)
        self._thread = threading.Thread(target=self._run, name=f"virtual-board {self.link_path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.port.close()
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        self.mode = "off"

    def unplug(self) -> None:
        """The board vanishes: the port and its link go away; the thread idles."""
        with self._lock:
            self.port.close()
            self.mode = "off"

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- output helpers
    def _send(self, data: bytes) -> None:
        self.port.write_all(data)

    def board_ms(self) -> int:
        return int((self.clock() - self._boot_t0) * self.time_scale * 1000)

    # -- resets
    def _power_on(self, friendly: bool, banner_first: bool = True) -> None:
        """A (soft) reset: fresh interpreter, boot.py; in friendly mode main.py (the firmware)."""
        assert self.worker is not None
        self.worker.init(self.uid, safe=self.safe_pin_held, mp_version=self.pretend_micropython)
        self._boot_t0 = self.clock()
        self.boots += 1
        self._line = b""
        if (self.fs_dir / "boot.py").is_file():
            out, err, _ = self.worker.exec(open(self.fs_dir / "boot.py", encoding="utf-8", errors="replace").read())
            self._send(_cooked(out) + err.encode())
        if friendly and (self.fs_dir / "main.py").is_file():
            reply = self.worker.request(op="glue", code=BOOT_FIRMWARE, vars={
                "_FAKEHAL_SRC": FAKEHAL.read_text(encoding="utf-8"),
                "_SEGMENTS": __import__("json").dumps(self.trace.as_lists()),
                "_MOUNTING": self.mounting})
            self._send(_cooked(reply["out"]))
            if reply["err"] or reply.get("result") != "running":
                err = self.worker.request(op="glue", code="_RESULT = _board_take_err()")["result"] or reply["err"]
                if err:
                    self.firmware_errors.append(str(err))
                    self._send(str(err).encode())
            if reply.get("result") == "running" and not reply["err"]:
                self.mode = "running"
                return
        self.mode = "friendly" if friendly else "raw"
        if friendly:
            self._send(BANNER)
        else:
            self._send(RAW_BANNER)

    def _soft_reset(self, friendly: bool) -> None:
        self._send(b"MPY: soft reboot\r\n")
        self._power_on(friendly)

    # -- the loop
    def _run(self) -> None:
        seen_connects = 0
        while not self._stop.is_set():
            self.port.wait_readable(0.004)  # outside the lock, which unplug() takes (see VirtualHeadset._run)
            with self._lock:
                if not self.port.is_open:
                    idle = True
                else:
                    idle = False
                    data = self.port.read(0.0)
                    try:
                        if self.port.connects != seen_connects:
                            seen_connects = self.port.connects
                            if self.mode == "running" and self.worker is not None:  # desk opened the port (DTR)
                                self.worker.request(op="glue", code="_HAL.host_connects += 1")
                        if data:
                            self._receive(data)
                        if self.mode == "running" and self.port.is_open:
                            self._tick(b"")
                    except RuntimeError as exc:  # the worker died: the board is dead
                        self.firmware_errors.append(str(exc))
                        self.port.close()
                        self.mode = "off"
            if idle:
                self._stop.wait(0.01)

    def _receive(self, data: bytes) -> None:
        assert self.worker is not None
        if self.vanish_after_bytes is not None and self.received + len(data) >= self.vanish_after_bytes:
            self.received += len(data)
            self.port.close()
            self.mode = "off"
            return
        self.received += len(data)
        buf = self._pending + data
        self._pending = b""
        i = 0
        while i < len(buf) and self.port.is_open:
            if self.mode == "running":
                j = buf.find(b"\x03", i)
                if j < 0:
                    self._tick(buf[i:])
                    return
                self._tick(buf[i:j])
                self._interrupt()
                i = j + 1
                continue
            if self.mode == "paste":
                i = self._paste(buf, i)
                continue
            c = buf[i:i + 1]
            if self.mode == "raw" and c == b"\x05" and not self._line:
                if len(buf) - i < 3:
                    self._pending = buf[i:]
                    return
                if buf[i + 1:i + 3] == b"A\x01":
                    self._send(b"R\x01" + struct.pack("<H", PASTE_WINDOW))
                    self.mode = "paste"
                    self._paste_since_ack = 0
                    i += 3
                    continue
            i += 1
            if self.mode == "raw":
                self._raw_char(c)
            elif self.mode == "friendly":
                self._friendly_char(c)

    def _raw_char(self, c: bytes) -> None:
        if c == b"\x01":
            self._line = b""
            self._send(RAW_BANNER)
        elif c == b"\x02":
            self._line = b""
            self.mode = "friendly"
            self._send(b"\r\n" + BANNER)
        elif c == b"\x03":
            self._line = b""
        elif c == b"\x04":
            if not self._line:
                self._send(b"\r\n")
                self._soft_reset(friendly=False)
            else:
                code, self._line = self._line, b""
                self._send(b"OK")
                self._execute(code, raw=True)
        else:
            self._line += c

    def _paste(self, buf: bytes, i: int) -> int:
        j = buf.find(b"\x04", i)
        chunk = buf[i:] if j < 0 else buf[i:j]
        self._line += chunk
        self._paste_since_ack += len(chunk)
        while self._paste_since_ack >= PASTE_WINDOW:
            self._paste_since_ack -= PASTE_WINDOW
            self._send(b"\x01")
        if j < 0:
            return len(buf)
        code, self._line = self._line, b""
        self.mode = "raw"
        self._send(b"\x04")
        self._execute(code, raw=True)
        return j + 1

    def _friendly_char(self, c: bytes) -> None:
        if c == b"\x01":
            self._line = b""
            self.mode = "raw"
            self._send(b"\r\n" + RAW_BANNER)
        elif c == b"\x03":
            self._line = b""
            self._send(b"\r\n>>> ")
        elif c == b"\x04":
            if not self._line:
                self._send(b"\r\n")
                self._soft_reset(friendly=True)
        elif c in (b"\r", b"\n"):
            code, self._line = self._line, b""
            self._send(b"\r\n")
            if code.strip():
                self._execute(code, raw=False)
            if self.mode == "friendly":
                self._send(b">>> ")
        elif c in (b"\x7f", b"\x08"):
            if self._line:
                self._line = self._line[:-1]
                self._send(b"\x08 \x08")
        elif c >= b" ":
            self._line += c
            self._send(c)

    def _execute(self, code: bytes, raw: bool) -> None:
        assert self.worker is not None
        text = code.decode("utf-8", errors="replace")
        if not raw:
            text = f"_r = ({text})\nif _r is not None: print(repr(_r))" if _is_expression(text) else text
        out, err, reset = self.worker.exec(text)
        self._damage_files()
        if raw:
            self._send(_cooked(out) + b"\x04" + err.encode() + b"\x04>")
        else:
            self._send(_cooked(out) + err.encode())
        if reset:  # machine.reset(): on hardware USB re-enumerates; here the board reboots in place
            self._power_on(friendly=True)

    def _interrupt(self) -> None:
        """Ctrl-C while the firmware runs: KeyboardInterrupt, then the friendly REPL."""
        self.mode = "friendly"
        self._send(b'Traceback (most recent call last):\r\n  File "main.py", line 10, in <module>\r\n'
                   b"KeyboardInterrupt: \r\n" + BANNER)

    def _tick(self, rx: bytes) -> None:
        assert self.worker is not None
        reply = self.worker.request(op="tick", now=self.board_ms(), rx=base64.b64encode(rx).decode())
        if reply["err"]:
            self.firmware_errors.append(reply["err"])
            self.mode = "friendly"
            self._send(_cooked(reply["out"]) + _cooked(reply["err"].encode()) + BANNER)
            return
        self._send(reply["out"] + reply["tx"])

    def _damage_files(self) -> None:
        for name in self.corrupt_files:
            for p in (self.fs_dir / name, self.fs_dir / (name + ".tmp")):
                if not p.is_file():
                    continue
                st = p.stat()
                key = (p.name, st.st_mtime_ns, st.st_size)
                if st.st_size and st.st_mtime_ns >= self._corrupt_since and key not in self._corrupted:
                    data = bytearray(p.read_bytes())
                    data[len(data) // 2] ^= 0x20
                    p.write_bytes(bytes(data))
                    st = p.stat()
                    self._corrupted.add((p.name, st.st_mtime_ns, st.st_size))


def _is_expression(text: str) -> bool:
    try:
        compile(text, "<stdin>", "eval")
    except SyntaxError:
        return False
    return True
