"""A spool writer for the kill -9 test: appends rows forever and prints each id once append returned.

``python -m tests.device.outputs.spool_writer SPOOL_PATH``; each stdout line is ``id payload``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from device.outputs.spool import Spool


def main() -> None:
    spool = Spool(Path(sys.argv[1]))
    n = 0
    while True:
        payload = f"row-{n}".encode()
        row_id = spool.append("hsc/v1/s1/d1/event", payload, 1)
        sys.stdout.write(f"{row_id} {payload.decode()}\n")
        sys.stdout.flush()
        n += 1


if __name__ == "__main__":
    main()
