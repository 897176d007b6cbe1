"""Type-check the headset firmware (hw/firmware) against the MicroPython rp2 stubs.

Runs mypy with MicroPython's stdlib stubs as the typeshed (micropython-stdlib-stubs) and the
rp2 port's module stubs (micropython-rp2-rpi-pico-stubs: machine, time, neopixel...) on the search
path, so that `time.ticks_ms` exists and CPython-only APIs do not. Exit status: mypy's (non-zero
on any type error), 2 when the stubs are not installed.

    python -m hw.firmware_typecheck [FILES...]
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parent / "firmware"
PORT_STUBS = "micropython-rp2-rpi-pico-stubs"
STDLIB_STUBS = "micropython-stdlib-stubs"


def stub_paths() -> tuple[Path, list[Path]]:
    """(typeshed dir holding stdlib/, top-level module stubs of the rp2 port)."""
    entries: list[Path] = []
    site = Path()
    for name in (PORT_STUBS, STDLIB_STUBS):
        dist = importlib.metadata.distribution(name)
        site = Path(str(dist.locate_file("")))
        tops = sorted({Path(str(f)).parts[0] for f in dist.files or []})
        for top in tops:
            path = site / top
            if top == "stdlib" or top.endswith(".dist-info") or top in {e.name for e in entries}:
                continue
            if top.endswith(".pyi") or (path.is_dir() and any(path.rglob("*.pyi"))):
                entries.append(path)
    if not (site / "stdlib" / "VERSIONS").exists():
        raise FileNotFoundError("micropython-stdlib-stubs (stdlib/VERSIONS) not found in " + str(site))
    return site, entries


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        typeshed, entries = stub_paths()
    except (importlib.metadata.PackageNotFoundError, FileNotFoundError) as exc:
        print(f"firmware_typecheck: MicroPython stubs missing ({exc}); pip install {PORT_STUBS}", file=sys.stderr)
        return 2
    files = [a for a in args if a != "-q"] or sorted(p.name for p in FIRMWARE.glob("*.py") if p.name != "__init__.py")
    with tempfile.TemporaryDirectory(prefix="mpy-stubs-") as tmp:
        conf = Path(tmp) / "mypy.ini"
        stub_modules = ",".join(sorted({e.name.removesuffix(".pyi") + (".*" if e.is_dir() else "") for e in entries}))
        # Errors inside the stubs themselves are the stubs' business, not the firmware's.
        conf.write_text(f"[mypy]\n\n[mypy-{stub_modules}]\nignore_errors = true\n")
        stubs = Path(tmp) / "stubs"
        stubs.mkdir()
        for entry in entries:
            os.symlink(entry, stubs / entry.name)
        cmd = [
            sys.executable, "-m", "mypy",
            "--config-file", str(conf),
            "--explicit-package-bases",
            "--custom-typeshed-dir", str(typeshed),
            "--no-site-packages",
            "--python-version", "3.11",
            "--check-untyped-defs",
            "--warn-unused-ignores",
            "--no-error-summary" if "-q" in args else "--pretty",
            *files,
        ]
        env = dict(os.environ, MYPYPATH=os.pathsep.join([str(stubs), str(FIRMWARE)]))
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(cmd, cwd=FIRMWARE, env=env)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
