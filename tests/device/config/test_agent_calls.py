"""``[calls]`` and ``[intonation]``: defaults, values, errors naming the field and the line, remote changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.calls import RingCadence
from device.config.agent import apply_remote, load_config
from device.errors import ConfigError

HEAD = '[desk]\nsite = "site1"\ndesk = "desk-07"\n'


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(HEAD + body, encoding="utf-8")
    return p


def test_defaults_are_no_source_the_norms_and_intonation_on() -> None:
    cfg = load_config(None, {"desk.site": "s", "desk.desk": "d"})
    assert cfg.calls.source == "none" and cfg.calls.cadence == RingCadence(1.0, 4.0)
    assert (cfg.calls.norms.max_rings, cfg.calls.norms.greet_within_s) == (3, 2.0)
    assert (cfg.calls.norms.silent_far_s, cfg.calls.norms.silent_prompts, cfg.calls.norms.silent_wait_s) == (0.5, 2, 2.0)
    assert cfg.intonation.enabled and cfg.intonation.params.monotone_below_st == 2.5
    assert cfg.effective()["calls"]["source"] == "none" and cfg.effective()["intonation"]["window_s"] == 10.0


@pytest.mark.parametrize("source", ["none", "gpio", "mqtt", "baresip", "baresip:10.0.0.5:4444", "baresip:[::1]:4444"])
def test_every_call_source_is_accepted(tmp_path: Path, source: str) -> None:
    cfg = load_config(write(tmp_path, f'[calls]\nsource = "{source}"\nring_on_s = 0.4\nring_off_s = 2\n'
                                      'max_rings = 4\ngreet_within_s = 3\n'))
    assert cfg.calls.source == source and cfg.calls.cadence == RingCadence(0.4, 2.0)
    assert (cfg.calls.norms.max_rings, cfg.calls.norms.greet_within_s) == (4, 3.0)


@pytest.mark.parametrize(("body", "line", "message"), [
    ('[calls]\nsource = "sip"\n', 5, "calls.source: 'sip' is not a call source"),
    ('[calls]\nsource = "baresip:host"\n', 5, "calls.source:"),
    ('[calls]\nsource = 3\n', 5, "calls.source: must be a string"),
    ('[calls]\nmax_rings = 0\n', 5, "calls.max_rings: must be an integer in 1..20"),
    ('[calls]\nmax_rings = 2.5\n', 5, "calls.max_rings: must be an integer"),
    ('[calls]\ngreet_within_s = "2"\n', 5, "calls.greet_within_s: must be a number"),
    ('[calls]\nring_on_s = 1\nring_off_s = 0\n', 6, "calls.ring_off_s: must be a number in 0.1..30 s"),
    ('[calls]\nmax_ring = 3\n', 5, "calls.max_ring: unknown key (did you mean 'max_rings'?)"),
    ('[calls]\nsilent_prompts = 0\n', 5, "calls.silent_prompts: must be an integer in 1..10"),
    ('[calls]\nsilent_wait_s = 0.2\n', 5, "calls.silent_wait_s: must be a number in 0.5..30 s"),
    ('[calls]\nsilent_far_s = "1"\n', 5, "calls.silent_far_s: must be a number"),
    ('[intonation]\nenabled = "yes"\n', 5, "intonation.enabled: must be true or false"),
    ('[intonation]\nwindow_s = 1\n', 5, "intonation.window_s: must be a number in 2..600"),
    ('[intonation]\nmonotone_st = 4\nclear_st = 3\n', 6, "intonation.clear_st: must not be below"),
    ('[intonation]\nmonotone_for_s = -1\n', 5, "intonation.monotone_for_s: must be a number"),
    ('[intonation]\nmonotone = 2\n', 5, "intonation.monotone: unknown key"),
])
def test_errors_name_the_field_and_the_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, body))
    assert f"agent.toml line {line}: {message}" in str(err.value)


def test_the_silent_call_norm_is_configurable_and_judges_the_call(tmp_path: Path) -> None:
    from device.calls.measures import prompt_pattern

    cfg = load_config(write(tmp_path, '[calls]\nsilent_far_s = 1.0\nsilent_prompts = 3\nsilent_wait_s = 2.5\n'))
    norms = cfg.calls.norms
    assert (norms.silent_far_s, norms.silent_prompts, norms.silent_wait_s) == (1.0, 3, 2.5)
    assert cfg.effective()["calls"]["silent_prompts"] == 3
    # two prompts of 1.5 s, each followed by 2.2 s of waiting, then the hang-up (ms)
    own = [(0, 1500), (3700, 5200)]
    assert prompt_pattern(own, 7400, load_config(None, {"desk.site": "s", "desk.desk": "d"}).calls.norms) == (
        2, 2.2, True)  # the default norm: 2 prompts, 2 s waits (less the VAD's 0.3 s hang-over)
    assert prompt_pattern(own, 7400, norms) == (2, 2.2, False)  # this desk's norm: 3 prompts of 2.5 s waits


def test_a_raised_monotone_threshold_moves_the_clear_threshold_with_it(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[intonation]\nmonotone_st = 4\n'))
    assert (cfg.intonation.monotone_st, cfg.intonation.clear_st) == (4.0, 4.0)


def test_flags_set_the_source_too() -> None:
    with pytest.raises(ConfigError, match=r"calls.source \(sets|calls.source: 'x'"):
        load_config(None, {"desk.site": "s", "desk.desk": "d", "calls.source": "x"})


def test_remote_config_may_change_the_norms_and_intonation_but_not_the_source(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[calls]\nsource = "gpio"\n'))
    new = apply_remote(cfg, {"calls": {"max_rings": 4, "greet_within_s": 3, "silent_prompts": 3, "silent_wait_s": 3},
                             "intonation": {"monotone_st": 2.0}})
    assert new.calls.source == "gpio" and new.calls.max_rings == 4 and new.intonation.monotone_st == 2.0
    assert (new.calls.norms.silent_prompts, new.calls.norms.silent_wait_s) == (3, 3.0)
    assert new.config_hash != cfg.config_hash
    with pytest.raises(ConfigError, match=r"config.calls.source: cannot be changed remotely"):
        apply_remote(cfg, {"calls": {"source": "mqtt"}})
    with pytest.raises(ConfigError, match=r"config.intonation.window_s: must be a number"):
        apply_remote(cfg, {"intonation": {"window_s": 0}})
