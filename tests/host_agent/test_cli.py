"""The commands as a site admin runs them: `run` in a real process (SIGTERM to stop), `silence`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mqtt_schema import DeskStatus, EventKind
from tests.conftest import Mosquitto
from tests.host_agent.helpers import Desk, publisher, send
from tests.waiting import wait_for

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

        wait_for(lambda: len(snapshot()["desks"]) == 1, 10, "the desk on the dashboard")
        # At 300x, the 15 min allowed break passes in 3 s of wall time.
        wait_for(lambda: any(a["rule"] == "break-overrun" and a["state"] == "firing"
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
    """The old form (no action) still adds, and ``--list`` still lists; see test_silences.py for the rest."""
    from host_agent.cli import main
    from host_agent.storage import DeskRecord, SqliteStore

    db = str(tmp_path / "h.db")
    store = SqliteStore(db)
    store.save_desk(DeskRecord("site1", "d07", "online", 0, True, None), 0)  # a desk the host has seen
    store.commit()
    store.close()
    assert main(["silence", "--db", db, "--site", "site1", "--desk", "d07", "--rule", "posture", "--for", "2h"]) == 0
    assert "silenced posture on site1/d07 for 2h: silence 1" in capsys.readouterr().out
    assert main(["silence", "--db", db, "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "site", "desk", "rule", "until", "left", "by"]
    assert out[1].split()[:4] == ["1", "site1", "d07", "posture"] and out[1].endswith("cli")


def test_bad_paths_give_one_line_naming_the_path_and_lose_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from host_agent.cli import main
    from host_agent.storage import DeskRecord, SqliteStore

    db = tmp_path / "h.db"
    store = SqliteStore(db)
    store.save_desk(DeskRecord("site1", "d01", "online", 0, True, None), 0)  # a known site, no minutes yet
    store.commit()
    store.close()
    before = db.read_bytes()
    missing = tmp_path / "missing-dir" / "x.html"
    assert main(["report", "--db", str(db), "--site", "site1", "--date", "2026-11-22", "--format", "html",
                 "-o", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == f"headset-host: cannot write the report to {missing}: the folder {missing.parent} does not exist\n"
    assert main(["report", "--db", str(db), "--site", "site1", "--date", "2026-11-22", "-o", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"headset-host: cannot write the report to {tmp_path}: it is a folder\n"
    assert db.read_bytes() == before  # the history is untouched
    assert not missing.parent.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))

    a_file = tmp_path / "not-a-folder"
    a_file.write_text("keep me\n")
    cfg = tmp_path / "host.toml"
    # under a regular file (impossible), and under /proc (not writable, even for root)
    for bad, why in ((a_file / "host.db", "is not a folder"), (a_file / "sub" / "host.db", "Not a directory"),
                     (Path("/proc/hsc-no/host.db"), "")):
        cfg.write_text(f'[broker]\nurl = "mqtt://127.0.0.1:1"\n[host]\ndb = "{bad}"\n[dashboard]\nenabled = false\n')
        assert main(["run", "--config", str(cfg)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("headset-host: cannot create the folder ") and f"history database {bad}: " in err
        assert why in err and "Traceback" not in err and err.count("\n") == 1
    assert a_file.read_text() == "keep me\n"


def test_run_verbose_logs_alert_transitions_and_a_clean_offline_raises_nothing(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = tmp_path / "host.toml"
    cfg.write_text(f'[broker]\nurl = "{mosquitto.url}"\nclient_id = "cli-host-v"\n[host]\nsites = ["site1"]\n'
                   f'db = "{tmp_path / "host.db"}"\n[dashboard]\nenabled = false\n')
    proc = subprocess.Popen([*CLI, "run", "-v", "--config", str(cfg), "--time-scale", "100"], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: any("following site1" in line for line in lines), 20, "the host to start")
        pub = publisher(mosquitto.port)
        crashed, ended = Desk("site1", "d01"), Desk("site1", "d02")
        for d in (crashed, ended):
            send(pub, d, d.state())
        send(pub, crashed, crashed.state(DeskStatus.LOST))  # its last will
        send(pub, ended, ended.state(DeskStatus.OFFLINE))  # end of shift: the agent said goodbye

        def logged(what: str, n: int = 1) -> bool:
            return sum(what in line for line in list(lines)) >= n

        # 30 s of host time are 0.3 s at 100x. The lost desk fires, comes back (resolved), is lost and
        # fires again: by then the clean one has been offline for over 60 s of host time.
        wait_for(lambda: logged("alert firing: site1/d01 desk-offline severity=critical"), 20, "desk-offline fired")
        send(pub, crashed, crashed.state())
        wait_for(lambda: logged("alert resolved: site1/d01 desk-offline"), 20, "desk-offline resolved")
        send(pub, crashed, crashed.state(DeskStatus.LOST))
        wait_for(lambda: logged("alert firing: site1/d01 desk-offline", 2), 20, "desk-offline fired again")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    text = "".join(lines)
    assert "alert pending: site1/d01 desk-offline severity=critical" in text
    assert "site1/d02 desk-offline" not in text
    assert "2 alerts fired" in text


@pytest.mark.parametrize(("flags", "message"), [
    (["--time-scale", "inf"], "--time-scale must be a number from 1e-09 to 1000, not inf"),
    (["--time-scale", "1e308"], "--time-scale must be a number from 1e-09 to 1000, not 1e+308"),
    (["--time-scale", "2", "--time-origin-ms", "99999999999999999999"], "--time-origin-ms must be from 0 to "),
    (["--time-scale", "2", "--time-origin-ms", "-99999999999999999999"], "--time-origin-ms must be from 0 to "),
])
def test_a_time_scale_or_origin_out_of_range_is_a_usage_error(
        tmp_path: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from host_agent.cli import main

    cfg = tmp_path / "host.toml"
    cfg.write_text(f'[broker]\nurl = "mqtt://127.0.0.1:1"\n[host]\ndb = "{tmp_path / "h.db"}"\n'
                   '[dashboard]\nenabled = false\n')
    for argv in (["run", "--config", str(cfg)], ["silence", "list", "--db", str(tmp_path / "h.db")]):
        assert main([*argv, *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"headset-host: {message}") and err.count("\n") == 1
    assert not (tmp_path / "h.db").exists()


def test_run_with_a_ca_cert_that_is_no_certificate_names_the_file(tmp_path: Path) -> None:
    """A real PEM file, but a key: one line naming the config field and the file (it was only SSL's text)."""
    from tests.conftest import make_test_ca

    pki = make_test_ca(tmp_path / "pki")
    cfg = tmp_path / "host.toml"
    cfg.write_text(f'[broker]\nurl = "mqtts://127.0.0.1:1"\nca_cert = "{pki.ca_key}"\n[host]\nsites = ["site1"]\n'
                   'db = "host.db"\n[dashboard]\nport = 0\n')
    proc = subprocess.run([*CLI, "run", "--config", str(cfg)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"headset-host: cannot set up TLS with broker.ca_cert {pki.ca_key}: "), line
    assert "None" not in line
