"""The commands as a site admin runs them: `run` in a real process (SIGTERM to stop), `silence`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mqtt_schema import EventKind
from tests.conftest import Mosquitto
from tests.host_agent.helpers import Desk, publisher, send, wait_until

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "host_agent.cli"]


def test_run_serves_ingests_and_stops_cleanly_on_sigterm(mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = tmp_path / "host.toml"
    cfg.write_text(f'[broker]\nurl = "{mosquitto.url}"\nclient_id = "cli-host"\n[host]\nsites = ["site0"]\n'
                   'db = "hist/host.db"\n[dashboard]\nport = 0\n')
    proc = subprocess.Popen([*CLI, "run", "--config", str(cfg), "--site", "site1", "--time-scale", "300"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert "following site1" in banner and str(tmp_path / "hist/host.db") in banner
        url = proc.stderr.readline().split()[2]
        pub = publisher(mosquitto.port)
        d = Desk("site1", "d01")
        send(pub, d, d.state())
        send(pub, d, d.event(EventKind.DOFFED))

        def snapshot() -> Any:
            with urllib.request.urlopen(url + "api/snapshot", timeout=5) as r:
                return json.loads(r.read())

        wait_until(lambda: len(snapshot()["desks"]) == 1, 10, "the desk on the dashboard")
        # At 300x, the 15 min allowed break passes in 3 s of wall time.
        wait_until(lambda: any(a["rule"] == "break-overrun" and a["state"] == "firing"
                               for a in snapshot()["alerts"]), 30, "break-overrun at 300x")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        tail = proc.stderr.read()
        assert "stopped after 2 messages (0 rejected), 1 alerts fired" in tail
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "hist/host.db").exists()


def test_errors_become_one_line_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from host_agent.cli import main

    cfg = tmp_path / "host.toml"
    cfg.write_text('[dashboard]\nport = "eighty"\n')
    assert main(["run", "--config", str(cfg)]) == 1
    assert "headset-host: " in capsys.readouterr().err
    db = str(tmp_path / "h.db")
    assert main(["silence", "--db", db, "--site", "site1", "--rule", "nope"]) == 2
    assert "unknown rule 'nope'" in capsys.readouterr().err
    assert main(["silence", "--db", db, "--site", "site1", "--for", "forever"]) == 2
    assert "bad duration 'forever'" in capsys.readouterr().err
    assert main(["report", "--db", str(tmp_path / "none.db"), "--site", "site1"]) == 1
    assert "cannot open the history database" in capsys.readouterr().err


def test_silence_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from host_agent.cli import main

    db = str(tmp_path / "h.db")
    assert main(["silence", "--db", db, "--site", "site1", "--desk", "d07", "--rule", "posture", "--for", "2h"]) == 0
    assert "silenced posture on site1/d07 for 2h" in capsys.readouterr().out
    assert main(["silence", "--db", db, "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("site1\td07\tposture\tuntil ") and "by cli" in out
