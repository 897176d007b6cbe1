"""The real parts the tests drive (brokers, browsers, interpreters, codecs), and what to do when one is missing.

A test declares what it needs with ``@pytest.mark.needs("mosquitto", ...)`` (handled in
``tests/conftest.py``) or calls :func:`require` inside a fixture. When a part is missing:

- in **strict** mode the test *fails* with a message naming the part and how to install it;
- otherwise it is skipped, and the run's summary lists the missing parts.

Strict is the default under ``CI=true``, when the tests run as root (``./run test`` can install every
part then), and whenever ``./run test`` runs without ``--allow-missing`` (it sets
``HSC_REQUIRE_PARTS=1``). ``HSC_ALLOW_MISSING=1`` (what ``--allow-missing`` sets) relaxes it, except
under CI or as root, where nothing may skip.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import pytest


def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def _chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _micropython() -> str | None:
    from hw.virtual_headset.micropython import MicroPythonUnavailable, find_micropython

    try:
        node, mjs = find_micropython()
    except MicroPythonUnavailable:
        return None
    return f"{node} + {mjs}"


def _libsndfile() -> str | None:
    try:
        import soundfile
    except OSError:  # soundfile raises OSError when it cannot load libsndfile
        return None
    return str(soundfile.__libsndfile_version__)


def _portaudio() -> str | None:
    try:
        import sounddevice
    except OSError:  # sounddevice raises OSError when it cannot load libportaudio
        return None
    return str(sounddevice.get_portaudio_version()[1])


@dataclass(frozen=True)
class Part:
    """One real part: how to find it and how to install it."""

    name: str
    find: Callable[[], str | None]
    install: str


PARTS: dict[str, Part] = {p.name: p for p in (
    Part("mosquitto", _mosquitto, "apt-get install mosquitto mosquitto-clients"),
    Part("chromium", _chromium, "apt-get install chromium"),
    Part("micropython", _micropython,
         "apt-get install nodejs npm, then ./run setup (npm @micropython/micropython-webassembly-pyscript)"),
    Part("espeak-ng", lambda: shutil.which("espeak-ng"), "apt-get install espeak-ng"),
    Part("libsndfile", _libsndfile, "apt-get install libsndfile1"),
    Part("promtool", lambda: shutil.which("promtool"),
         "apt-get install prometheus (its promtool checks the example alert rules and the /metrics text)"),
    Part("portaudio", _portaudio, "apt-get install libportaudio2 (ALSA's file plugin then stands in for a mic)"),
    Part("baresip", lambda: shutil.which("baresip"), "apt-get install baresip-core"),
    Part("nats-server", lambda: shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None),
         "apt-get install nats-server (the tests run a 3-node MQTT cluster on the loopback)"),
    Part("postgresql", lambda: max(glob.glob("/usr/lib/postgresql/*/bin/initdb"), default=None, key=lambda path: int(path.split("/")[4])) or shutil.which("initdb"), "apt-get install postgresql (the tests run its initdb and pg_ctl in a temp dir)"),
)}

_found: dict[str, str | None] = {}


def find(name: str) -> str | None:
    """Where part ``name`` is (a path or version), or None when it is missing (cached per run)."""
    if name not in PARTS:
        raise KeyError(f"unknown real part {name!r}; known: {', '.join(sorted(PARTS))}")
    if name not in _found:
        _found[name] = PARTS[name].find()
    return _found[name]


def strict() -> bool:
    """True when a missing part must fail the test instead of skipping it."""
    if os.environ.get("CI", "").lower() == "true" or os.geteuid() == 0:
        return True
    if os.environ.get("HSC_ALLOW_MISSING") == "1":
        return False
    return os.environ.get("HSC_REQUIRE_PARTS") == "1"


MISSING_PREFIX = "missing real part: "


def missing_message(name: str) -> str:
    return f"{MISSING_PREFIX}{name} (install: {PARTS[name].install})"


def require(*names: str) -> None:
    """Fail (strict) or skip the current test unless every named part is present."""
    for name in names:
        if find(name) is None:
            if strict():
                pytest.fail(missing_message(name), pytrace=False)
            pytest.skip(missing_message(name))
