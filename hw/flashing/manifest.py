"""The firmware files that go onto a headset board, with their SHA-256 hashes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from hw.errors import FlashError

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
# Written in this order; main.py last, so a board interrupted mid-flash keeps its old main.py.
FIRMWARE_FILES = (
    "headset_link.py", "hs_config.py", "hs_filter.py", "hs_wear.py", "hs_mpu6050.py",
    "hs_app.py", "hal.py", "hs_boot.py", "boot.py", "main.py",
)
CONFIG_NAME = "hs_config.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    files: tuple[tuple[str, bytes], ...]  # (name on the board, content), in write order
    version: str

    @property
    def fw_hash(self) -> str:
        """One SHA-256 over every file's name and hash: the firmware's identity in the inventory."""
        text = "".join(f"{name} {sha256(data)}\n" for name, data in self.files)
        return sha256(text.encode())

    @classmethod
    def load(cls, folder: Path = FIRMWARE_DIR) -> Manifest:
        files = []
        for name in FIRMWARE_FILES:
            path = folder / name
            try:
                files.append((name, path.read_bytes()))
            except OSError as exc:
                raise FlashError(f"firmware file {path} cannot be read: {exc.strerror or exc}") from None
        app = dict(files)["hs_app.py"].decode("utf-8", errors="replace")
        m = re.search(r'^FW_VERSION = "([^"]+)"', app, re.M)
        if not m:
            raise FlashError(f"no FW_VERSION in {folder / 'hs_app.py'}")
        return cls(tuple(files), m.group(1))
