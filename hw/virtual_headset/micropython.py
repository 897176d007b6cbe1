"""Real MicroPython for the virtual board and the tests: the WebAssembly port under Node.js.

``find_micropython()`` locates node and ``@micropython/micropython-webassembly-pyscript`` (installed
by ``./run setup`` into .cache/node, or named by $HSC_MICROPYTHON_MJS). ``MicroPythonWorker`` is a
long-lived node process running mpworker.mjs, spoken to with one JSON line per request.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PACKAGE = "@micropython/micropython-webassembly-pyscript"


class MicroPythonUnavailable(RuntimeError):
    """node or the MicroPython WebAssembly package is not installed."""


def find_micropython() -> tuple[str, Path]:
    """(node executable, path of micropython.mjs); raise MicroPythonUnavailable."""
    node = shutil.which("node")
    if node is None:
        raise MicroPythonUnavailable("node is not installed")
    env = os.environ.get("HSC_MICROPYTHON_MJS")
    candidates = [Path(env)] if env else []
    candidates.append(REPO / ".cache" / "node" / "node_modules" / PACKAGE / "micropython.mjs")
    for c in candidates:
        if c.is_file():
            return node, c
    raise MicroPythonUnavailable(f"{PACKAGE} not found (run ./run setup)")


class MicroPythonWorker:
    """One MicroPython interpreter in a node process; the board's filesystem is ``board_dir``."""

    def __init__(self, board_dir: Path):
        self._node, self._mjs = find_micropython()
        self.board_dir = board_dir
        self.restarts = 0
        """Times :meth:`init` started a fresh node process because loading an interpreter failed."""
        self.proc = self._start()
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self._node, str(HERE / "mpworker.mjs"), self._mjs.as_uri(), str(self.board_dir),
             str(HERE / "board_prelude.upy")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)

    def request(self, **req: Any) -> dict[str, Any]:
        with self._lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            try:
                self.proc.stdin.write(json.dumps(req) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                raise RuntimeError("MicroPython worker is gone") from None
            line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"MicroPython worker died: {err[-2000:]}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"MicroPython worker: {reply['error']}")
        for key in ("out", "tx"):
            if isinstance(reply.get(key), str):
                reply[key] = base64.b64decode(reply[key])
        return reply

    def init(self, uid_hex: str, safe: bool = False, mp_version: tuple[int, int, int] | None = None) -> None:
        """Power on / soft reset: a fresh interpreter with the board's filesystem mounted.
        mp_version: make sys.implementation.version say this (an old board, for tests).

        Loading a new interpreter into a node process that has run others can fail inside the
        WebAssembly glue (seen once in CI: ``RuntimeError: memory access out of bounds`` from
        ``globals.set`` at a soft reset). A real board's reset starts from nothing, so the worker
        then starts a fresh node process and loads once more; the board's files live in
        ``board_dir`` and are kept. A second failure is raised."""
        args = {"uid": uid_hex, "safe": safe, "mp_version": list(mp_version) if mp_version else None}
        try:
            self.request(op="init", **args)
        except RuntimeError:
            self.close()
            self.proc = self._start()
            self.restarts += 1
            self.request(op="init", **args)

    def exec(self, code: str) -> tuple[bytes, str, bool]:
        """Run REPL code; (stdout bytes, traceback text or "", machine.reset() called)."""
        r = self.request(op="exec", code=code)
        return r["out"], r["err"], bool(r["reset"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(2)
            except (OSError, subprocess.TimeoutExpired, AssertionError):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
