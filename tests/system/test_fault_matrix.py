"""The fault matrix (issue 13): real mosquitto, ``headset-host run`` and 1..2 ``headset-agent run`` desks on
a 20x clock, one fault each, injected with signals; the outcome judged against the desks' own logs of
what is durable (:mod:`tests.system.fault_outcome`, shared with ``bench/chaos.py``).

For every fault:
- **0 lost**: every event and minute rollup a desk logged as spooled (boot, seq) is in the host's history
  DB (for a broker without persistence: outside the fault's exposure window, see ``compare``);
- **0 duplicated** rows in the history;
- **minute rollups contiguous per boot**, a gap excused only by the desk's own ``minute rollup not
  spooled`` (a full disk) or by an exposure window;
- **alerts consistent** once everything is back: no ``desk-offline`` left active, and the broker's retained
  alerts are exactly the host's firing ones (after a broker restart without persistence too);
- **the pipeline recovers**: a new message of the desk reaches the host's history after the fault ends;
- **nothing hangs or crashes**: every process exits 0 on SIGTERM within 20 s, and no desk or host logged a
  traceback.

Plus what each fault is about (asserted in the test): the boot increments after a kill -9, ``desk-offline``
fires while a killed desk is away and resolves when it is back, the corrupt spool is kept aside and named
in the log, the full disk is named in the log, the stepped clock's minutes are an hour back / ahead.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.fault_outcome import FAULTS, FaultRecord, Rig, history, prepare_disk

pytestmark = [pytest.mark.slow, pytest.mark.solo, pytest.mark.needs("mosquitto")]

HOLD_S = 2.0
"""Wall seconds a fault is held at least (a broker or host down, a desk away); SIGSTOP holds until every
client gave the broker up (its keepalive timed out), a killed desk stays away until its ``desk-offline``
fired, the full disk until a minute rollup failed to spool (``Rig.hold_until_evidence``)."""


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[object]:
    rigs: list[Rig] = []

    def make(fault: str) -> Rig:
        spec = FAULTS[fault]
        rig = Rig(tmp_path, spec.desks, spec.persistence)
        rig.hold_until_evidence = True  # a fault ends once it did its work (at least HOLD_S), see fault_outcome._hold
        rigs.append(rig)
        if spec.needs_disk and not prepare_disk(rig):
            pytest.skip("cannot mount a tmpfs here: the full-disk fault needs root")
        return rig

    yield make
    for rig in rigs:
        rig.kill_all()


def _check_fault_specifics(fault: str, rig: Rig, rec: FaultRecord) -> None:
    h = history(rig.host.db)
    if fault == "desk-kill9":
        desk = rig.desk(rec.desk or "")
        boots = desk.logged().boots
        assert boots == [rec.notes["boot_before"], rec.notes["boot_before"] + 1], boots
        mine = [t for d, r, t in h.alert_log if d == desk.name and r == "desk-offline"]
        # away longer than for: (30 s of host time): fired; back online: resolved, and nothing after
        assert "firing" in mine and mine[-1] == "resolved", mine
        assert mine.index("firing") < len(mine) - 1
        others = [t for d, r, t in h.alert_log if d != desk.name and r == "desk-offline"]
        assert others == [], others  # the desk that stayed up raised nothing
    elif fault == "host-kill9":
        assert rig.host.log.read_text().count("headset-host: following") == 2
    elif fault.startswith("broker-kill9") or fault == "broker-sigstop":
        for d in rig.desks:
            assert len(d.logged().boots) == 1  # the desks rode it out in the same boot
        if fault == "broker-sigstop":
            assert rec.notes["every_client_gave_up"], "a client did not give the stopped broker up"
        if fault == "broker-kill9-nopersist":
            assert rec.notes["retained_before"], "no alert was retained before the kill: nothing to restore"
    elif fault == "disk-full":
        dl = rig.desks[0].logged()
        assert rec.notes["not_spooled"] > 0 and dl.not_spooled_events + len(dl.not_spooled_minutes) > 0
        assert len(dl.boots) == 1
    elif fault == "corrupt-spool":
        desk = rig.desk(rec.desk or "")
        assert rec.notes["stop_rc"] == 0
        aside = list(desk.state_dir.glob("spool.db.corrupt-*"))
        assert len(aside) == 1, aside
        dl = desk.logged()
        assert len(dl.boots) == 2 and dl.boots[1] == dl.boots[0] + 1, dl.boots
        assert any("moved it aside" in n and aside[0].name in n for n in dl.corrupt_notes), dl.corrupt_notes
    elif fault == "clock-step":
        desk = rig.desk(rec.desk or "")
        assert rec.notes["stop_rc"] == [0, 0]
        by_boot: dict[int, list[int]] = {}
        for b, _, m in h.minutes[desk.name]:
            by_boot.setdefault(b, []).append(m)
        first = min(by_boot)  # a new state folder's first boot is the wall clock (device/boot_counter.py)
        assert sorted(by_boot) == [first, first + 1, first + 2]
        by_boot = {b - first + 1: m for b, m in by_boot.items()}  # boots 1, 2, 3 of this desk
        hour = 3_600_000
        # boot 2 runs an hour behind boot 1, boot 3 an hour ahead of true time (its minutes follow boot 1's
        # by an hour plus the few minutes in between)
        assert -hour - 10 * 60_000 < min(by_boot[2]) - max(by_boot[1]) < -hour + 10 * 60_000
        assert hour < min(by_boot[3]) - max(by_boot[1]) < hour + 10 * 60_000


def _no_stop_hung_during_the_fault(rig: Rig, rec: FaultRecord) -> None:
    """A desk the fault stopped with SIGTERM exited within 20 s; when not, its log (the thread stacks that
    SIGUSR1 wrote last) is in the failure."""
    rcs = rec.notes.get("stop_rc")
    rcs = rcs if isinstance(rcs, list) else [rcs]
    if "hung" in rcs:
        desk = rig.desk(rec.desk or "")
        text = desk.log.read_text(errors="replace")
        at = text.find("Thread 0x")  # faulthandler's dump; the log goes on with the next boot
        part = text[max(0, at - 4000):at + 8000] if at >= 0 else text[-12000:]
        pytest.fail(f"{desk.name} did not exit within 20 s of SIGTERM during the fault (stop codes {rcs})\n"
                    f"--- {desk.name}'s log around the thread stacks SIGUSR1 wrote ---\n{part}")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault(fault: str, rig_factory: object) -> None:
    rig: Rig = rig_factory(fault)  # type: ignore[operator]
    rng = random.Random(13)
    rig.start()
    rig.warm_up()
    rec = FAULTS[fault].inject(rig, rng, HOLD_S)
    _no_stop_hung_during_the_fault(rig, rec)
    recovery_s = rig.recovery_s(rec, deadline_s=40)
    rig.settle(more_minutes=1)
    problems = rig.alerts_consistent(deadline_s=10)
    _check_fault_specifics(fault, rig, rec)
    rcs = rig.stop(deadline_s=20)
    out = rig.outcome()
    print(f"\n{fault}: recovery {recovery_s:.2f} s; {out.describe()}")

    hung = "".join(f"\n--- {d.name}'s log, the end (thread stacks from SIGUSR1 last) ---\n{d.log.read_text()[-6000:]}"
                   for d in rig.desks if rcs.get(d.name) == "hung")
    assert rcs == {**{d.name: 0 for d in rig.desks}, "host": 0, "broker": 0}, f"exit codes (hung: killed) {rcs}{hung}"
    assert problems == []
    assert out.lost == 0, out.describe()
    assert out.duplicated == 0, out.describe()
    assert out.gaps == 0, out.describe()
    assert rig.host.tracebacks() == 0, rig.host.log.read_text()[-3000:]
    for d in out.desks.values():
        assert d.tracebacks == [], d.tracebacks[0]
        assert d.events > 0 and d.minutes >= 2, out.describe()
    if fault != "broker-kill9-nopersist":
        assert out.exposed_lost == 0
