"""The cue policy on an injected clock: persistence in own-speech seconds, hold, hysteresis, min on-time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.dsp.measurement import Measurement
from device.errors import ConfigError
from device.outputs.cues import DEFAULT_PRIORITY, CueChange, CueConfig, CuePolicy
from mqtt_schema import Cue, Posture

STEP_S = 0.1
TARGET = -26.0
CFG = CueConfig()
LO, HI = TARGET - CFG.volume_band_db, TARGET + CFG.volume_band_db
IN_BAND = TARGET
LOUD = HI + 3.0


def meas(t: float, *, speech_s: float = STEP_S, level: float | None = IN_BAND, rate: float | None = 120.0,
         dist: float | None = 5.0) -> Measurement:
    return Measurement(t_s=t, speaking=speech_s > 0, speech_s=speech_s, level_dbov=level, rate_spm=rate,
                       distance_cm=dist, noise_dbov=-60.0, clipping=0.0)


@dataclass
class Driver:
    """Feeds a policy one 100 ms step at a time and records every change."""

    policy: CuePolicy = field(default_factory=lambda: CuePolicy(CueConfig(), TARGET))
    t: float = 0.0
    speech: float = 0.0
    changes: list[CueChange] = field(default_factory=list)

    def step(self, n: int = 1, *, posture: Posture = Posture.UPRIGHT, worn: bool | None = True,
             listening: bool = False, **values: float | None) -> list[CueChange]:
        out: list[CueChange] = []
        for _ in range(n):
            self.t += STEP_S
            speech_s = 0.0 if listening else STEP_S
            if worn is not False:
                self.speech += speech_s
            m = meas(self.t, speech_s=speech_s, **values)
            out += self.policy.update(self.t, m, posture, worn)
        self.changes += out
        return out

    def first_on(self, cue: Cue) -> CueChange:
        return next(c for c in self.changes if c.cue is cue and c.on)


def test_defaults_are_the_norms() -> None:
    c = CueConfig()
    assert (c.volume_band_db, c.volume_persist_s) == (6.0, 1.5)
    assert (c.pace_min_spm, c.pace_max_spm, c.pace_persist_s) == (90.0, 160.0, 10.0)
    assert (c.mic_min_cm, c.mic_max_cm, c.mic_persist_s) == (3.5, 7.5, 3.0)
    assert c.min_on_s == 5.0
    assert CuePolicy(c, TARGET).band() == (TARGET - 6.0, TARGET + 6.0)


@pytest.mark.parametrize(("cue", "values", "persist"), [
    (Cue.VOLUME_HIGH, {"level": HI + 2}, CFG.volume_persist_s),
    (Cue.VOLUME_LOW, {"level": LO - 2}, CFG.volume_persist_s),
    (Cue.PACE_FAST, {"rate": CFG.pace_max_spm + 20}, CFG.pace_persist_s),
    (Cue.PACE_SLOW, {"rate": CFG.pace_min_spm - 20}, CFG.pace_persist_s),
    (Cue.MIC_FAR, {"dist": CFG.mic_max_cm + 1}, CFG.mic_persist_s),
    (Cue.MIC_CLOSE, {"dist": CFG.mic_min_cm - 1}, CFG.mic_persist_s),
])
def test_each_cue_waits_for_its_persistence_in_own_speech_seconds(cue: Cue, values: dict[str, Any],
                                                                   persist: float) -> None:
    d = Driver()
    # alternate 0.5 s of speech outside the band with 2 s of listening: wall time runs 5x faster
    while not d.policy.is_on(cue):
        d.step(5, **values)
        if not d.policy.is_on(cue):
            d.step(20, listening=True, **values)
        assert d.speech <= persist + 1.0, "never turned on"
    on = d.first_on(cue)
    assert d.speech == pytest.approx(persist, abs=STEP_S / 2)
    assert on.at_s > persist * 2  # far more wall time than speech time went by
    assert on.value == pytest.approx(next(iter(values.values())))
    assert d.policy.active == (cue,)


def test_in_band_speech_restarts_the_count() -> None:
    d = Driver()
    for _ in range(10):
        d.step(10, level=LOUD)  # 1.0 s outside, less than 1.5 s
        d.step(1, level=IN_BAND)  # 0.1 s back inside
    assert not d.policy.is_on(Cue.VOLUME_HIGH)
    d.step(15, level=LOUD)
    assert d.policy.is_on(Cue.VOLUME_HIGH)


def test_unmeasured_values_are_no_evidence_either_way() -> None:
    d = Driver()
    d.step(10, level=LOUD)
    d.step(50, level=None)  # 5 s of speech without a level: the count holds
    assert not d.policy.is_on(Cue.VOLUME_HIGH)
    d.step(5, level=LOUD)
    assert d.policy.is_on(Cue.VOLUME_HIGH)
    d.step(200, level=None)
    assert d.policy.is_on(Cue.VOLUME_HIGH)  # nor does it clear


def test_cues_hold_still_while_listening() -> None:
    d = Driver()
    d.step(20, level=LOUD)
    assert d.policy.is_on(Cue.VOLUME_HIGH)
    d.step(600, listening=True, level=IN_BAND)  # a minute of the customer talking
    assert d.policy.is_on(Cue.VOLUME_HIGH)
    off = d.step(int(CFG.clear_s / STEP_S) + 1, level=IN_BAND)
    assert [(c.cue, c.on) for c in off] == [(Cue.VOLUME_HIGH, False)]


def test_hysteresis_keeps_a_cue_until_the_value_is_well_inside() -> None:
    d = Driver()
    d.step(20, level=LOUD)
    assert d.policy.is_on(Cue.VOLUME_HIGH)
    just_inside = HI - CFG.hysteresis_db / 2
    d.step(300, level=just_inside)  # 30 s inside the band, but not by the hysteresis margin
    assert d.policy.is_on(Cue.VOLUME_HIGH)
    well_inside = HI - CFG.hysteresis_db - 0.5
    t0 = d.t
    d.step(int(CFG.clear_s / STEP_S) + 1, level=well_inside)
    assert not d.policy.is_on(Cue.VOLUME_HIGH)
    off = [c for c in d.changes if not c.on]
    assert len(off) == 1 and off[0].at_s - t0 == pytest.approx(CFG.clear_s, abs=STEP_S * 1.5)


def test_minimum_on_time() -> None:
    d = Driver()
    d.step(15, level=LOUD)
    on = d.first_on(Cue.VOLUME_HIGH)
    d.step(200, level=IN_BAND)
    off = next(c for c in d.changes if c.cue is Cue.VOLUME_HIGH and not c.on)
    assert off.at_s - on.at_s == pytest.approx(CFG.min_on_s, abs=STEP_S * 1.5)


def test_opposite_cue_of_the_same_band_waits_for_the_first_to_clear() -> None:
    d = Driver()
    d.step(15, level=LO - 3)
    assert d.policy.active == (Cue.VOLUME_LOW,)
    d.step(20, level=LOUD)  # 2 s: past the persistence, but VOLUME_LOW is within its min on-time
    assert d.policy.active == (Cue.VOLUME_LOW,)
    changes = d.step(40, level=LOUD)
    assert [(c.cue, c.on) for c in changes] == [(Cue.VOLUME_LOW, False), (Cue.VOLUME_HIGH, True)]
    assert changes[0].at_s == changes[1].at_s  # the LED goes straight from one cue to the other


def test_priority_picks_the_top_cue() -> None:
    d = Driver()
    d.step(40, level=LO - 3, dist=CFG.mic_max_cm + 2)
    assert set(d.policy.active) == {Cue.VOLUME_LOW, Cue.MIC_FAR}
    assert d.policy.top is Cue.MIC_FAR and d.policy.active == tuple(
        c for c in DEFAULT_PRIORITY if c in {Cue.VOLUME_LOW, Cue.MIC_FAR})
    custom = CueConfig.from_table({"priority": ["volume_low"]})
    d.policy.reconfigure(custom)
    assert d.policy.active[0] is Cue.VOLUME_LOW
    assert custom.priority[1:] == tuple(c for c in DEFAULT_PRIORITY if c is not Cue.VOLUME_LOW)


def test_posture_cue_follows_the_tracker_with_min_on_time() -> None:
    d = Driver()
    d.step(10, posture=Posture.UPRIGHT)
    on = d.step(1, posture=Posture.SLOUCHED)
    assert [(c.cue, c.on, c.value) for c in on] == [(Cue.POSTURE, True, None)]
    d.step(10, posture=Posture.UPRIGHT)  # sat up after 1 s: the cue still stays for min_on_s
    assert d.policy.is_on(Cue.POSTURE)
    d.step(50, posture=Posture.UPRIGHT)
    off = [c for c in d.changes if c.cue is Cue.POSTURE and not c.on]
    assert len(off) == 1 and off[0].at_s - on[0].at_s == pytest.approx(CFG.min_on_s, abs=STEP_S * 1.5)


def test_headset_off_holds_speech_cues_and_drops_posture() -> None:
    d = Driver()
    d.step(20, level=LOUD, posture=Posture.SLOUCHED)
    assert set(d.policy.active) == {Cue.VOLUME_HIGH, Cue.POSTURE}
    d.step(100, worn=False, level=IN_BAND, posture=Posture.SLOUCHED)  # off: speech must not clear it
    assert d.policy.active == (Cue.VOLUME_HIGH,)
    d.step(100, worn=False, level=LO - 10, posture=Posture.UNKNOWN)  # nor build another cue
    assert d.policy.active == (Cue.VOLUME_HIGH,)
    d.step(int(CFG.clear_s / STEP_S) + 1, worn=True, level=IN_BAND)
    assert not d.policy.active


def test_no_flicker_on_a_noisy_stream() -> None:
    d = run_noisy()
    offs = {c.cue for c in d.changes if not c.on}
    assert len(offs) >= 4, f"the stream should switch several cues on and off, got offs for {offs}"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.floats(-45.0, -5.0), st.floats(60.0, 200.0), st.floats(1.0, 11.0),
    st.booleans(), st.sampled_from(list(Posture)), st.sampled_from([True, True, True, False, None]),
    st.integers(1, 30),
), min_size=1, max_size=60))
def test_no_flicker_property(segments: list[tuple[float, float, float, bool, Posture, bool | None, int]]) -> None:
    run_noisy(segments)


def run_noisy(segments: list[tuple[float, float, float, bool, Posture, bool | None, int]] | None = None) -> Driver:
    """Every on lasts at least min_on_s, changes alternate, and opposite cues are never on together."""
    import random

    if segments is None:
        rnd = random.Random(4)
        segments = [(rnd.gauss(TARGET, 9), rnd.gauss(125, 45), rnd.gauss(5.5, 2.5), rnd.random() < 0.3,
                     rnd.choice(list(Posture)), rnd.choice([True, True, False, None]), rnd.randint(1, 40))
                    for _ in range(400)]
    d = Driver()
    for level, rate, dist, listening, posture, worn, n in segments:
        for _ in range(n):
            jitter = (d.t * 7.3) % 1.0 - 0.5  # the measures jitter around their segment's value
            d.step(1, level=level + 3 * jitter, rate=rate + 20 * jitter, dist=dist + jitter, listening=listening,
                   posture=posture, worn=worn)
            for a, b in ((Cue.VOLUME_LOW, Cue.VOLUME_HIGH), (Cue.PACE_SLOW, Cue.PACE_FAST),
                         (Cue.MIC_CLOSE, Cue.MIC_FAR)):
                assert not (d.policy.is_on(a) and d.policy.is_on(b))
    for cue in Cue:
        history = [c for c in d.changes if c.cue is cue]
        assert all(c.on == (i % 2 == 0) for i, c in enumerate(history)), f"{cue} changes do not alternate"
        for on, off in zip(history[::2], history[1::2], strict=False):
            assert off.at_s - on.at_s >= CFG.min_on_s - 1e-6, f"{cue} flickered: on {on.at_s}, off {off.at_s}"
    return d


def test_clock_must_not_go_backwards() -> None:
    p = CuePolicy(CueConfig())
    p.update(10.0, None, Posture.UNKNOWN, None)
    with pytest.raises(ValueError, match="backwards"):
        p.update(9.0, None, Posture.UNKNOWN, None)


@pytest.mark.parametrize(("table", "message"), [
    ({"pace_min_spm": 170}, r"cues\.pace_min_spm: must be a number < pace_max_spm"),
    ({"mic_min_cm": 8.0}, r"cues\.mic_min_cm: must be a number < mic_max_cm"),
    ({"volume_persist_s": "1.5"}, r"cues\.volume_persist_s: must be a number"),
    ({"min_on_s": -1}, r"cues\.min_on_s: must not be negative"),
    ({"clear_s": float("nan")}, r"cues\.clear_s: must be a number"),
    ({"hysteresis_db": 6.0}, r"cues\.hysteresis_db: must be < volume_band_db"),
    ({"hysteresis_cm": 3.0}, r"cues\.hysteresis_cm: must be < half the mic band"),
    ({"volume_persist": 1.0}, r"cues\.volume_persist: unknown key"),
    ({"priority": ["posture", "slouch"]}, r"cues\.priority: unknown cue 'slouch'"),
    ({"priority": ["posture", "posture"]}, r"cues\.priority: cue 'posture' is listed twice"),
    ({"priority": "posture"}, r"cues\.priority: must be a list"),
])
def test_config_errors_name_the_field(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CueConfig.from_table(table)


def test_config_error_uses_the_callers_prefix_and_valid_tables_apply() -> None:
    with pytest.raises(ConfigError, match=r"^site\.cues\.pace_max_spm: unknown|^site\.cues\.pace_min_spm"):
        CueConfig.from_table({"pace_min_spm": 200}, where="site.cues")
    c = CueConfig.from_table({"pace_min_spm": 100, "pace_max_spm": 140, "mic_persist_s": 2})
    assert (c.pace_min_spm, c.pace_max_spm, c.mic_persist_s) == (100.0, 140.0, 2.0)
    with pytest.raises(ConfigError, match="target level"):
        CuePolicy(c, target_level_dbov=5.0)
