"""Not built yet (work in progress in issue 6)."""

from __future__ import annotations

import argparse

from hw.errors import FlashError

EXAMPLE = ""


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise FlashError("this command is not built yet")
