"""A desk publisher in its own process, for the kill -9 tests.

``python -m tests.device.outputs.desk_child URL SPOOL BOOT EVENTS [--wait-connected]``: starts a
:class:`DeskPublisher`, spools EVENTS cue events, prints ``spooled``, optionally waits for the broker and
prints ``connected``, then waits on stdin: a line ``stop`` stops cleanly; EOF or kill -9 ends it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from device.config.mqtt_settings import MqttSettings
from device.outputs.publisher import DeskPublisher
from device.outputs.spool import Spool
from mqtt_schema import Cue, EventKind, Versions

SITE, DESK = "s1", "d1"


def main() -> int:
    url, spool_path, boot, events = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    spool = Spool(spool_path)
    pub = DeskPublisher(site=SITE, desk=DESK, settings=MqttSettings(url=url), spool=spool, boot=boot,
                        now_ms=lambda: int(time.time() * 1000), versions=Versions(agent="0.1.0", schema="1.0"),
                        capabilities=["dual-mic"])
    pub.start()
    for i in range(events):
        pub.event(EventKind.CUE_ON, cue=Cue.PACE_FAST, value=float(i))
    print("spooled", flush=True)
    if "--wait-connected" in sys.argv:
        deadline = time.monotonic() + 20
        while not pub.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        print("connected" if pub.connected else "not-connected", flush=True)
    for line in sys.stdin:
        if line.strip() == "stop":
            pub.stop()
            print("stopped", flush=True)
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
