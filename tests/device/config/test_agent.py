"""The agent's config: every field validated, errors name the field and the line; remote merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from device.config.agent import apply_remote, load_config
from device.errors import ConfigError
from hw.flashing.provision import provision_desk

EXAMPLE = Path(__file__).resolve().parents[3] / "device" / "agent.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(text, encoding="utf-8")
    return p


BASE = """\
[desk]
site = "site1"
desk = "desk-07"

[mqtt]
url = "mqtt://broker:1883"

[posture]
forward_deg = 15
"""


def test_example_file_loads_with_its_documented_defaults() -> None:
    cfg = load_config(EXAMPLE)
    assert (cfg.desk.site, cfg.desk.desk) == ("site1", "desk-01")
    assert cfg.posture.forward_deg == 15.0 and cfg.posture.slouch_s == 30.0
    assert cfg.posture.clear_deg == 10.0 and cfg.posture.clear_s == 1.0
    assert cfg.agent.metrics_interval_s == 1.0
    assert cfg.headset.port == "/dev/ttyACM0"
    assert cfg.leds.rgb == (12, 13, 16)
    # the example spells out the defaults: a file with only the identity has the same effective config
    minimal = load_config(None, {"desk.site": "site1", "desk.desk": "desk-01"})
    assert minimal.effective() == cfg.effective()
    assert minimal.config_hash == cfg.config_hash


def test_provisioned_file_loads_as_is(tmp_path: Path) -> None:
    out = tmp_path / "prov"
    provision_desk("site2", "desk-11", out, broker_url="mqtt://broker.example:1883")
    cfg = load_config(out / "agent.toml")
    assert (cfg.desk.site, cfg.desk.desk) == ("site2", "desk-11")
    assert cfg.mqtt.host == "broker.example" and cfg.mqtt.username and cfg.mqtt.password


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        (BASE.replace("forward_deg = 15", "forward_deg = 'x'"), "posture.forward_deg", 9),
        (BASE.replace("forward_deg = 15", "forward_deg = 5\nclear_deg = 8"), "posture.clear_deg", 10),
        (BASE.replace('desk = "desk-07"', 'desk = "Desk 7"'), "desk.desk", 3),
        (BASE.replace('url = "mqtt://broker:1883"', 'url = "http://broker"'), "mqtt.url", 6),
        (BASE + "\n[agent]\nmetrics_interval_s = 0\n", "agent.metrics_interval_s", 12),
        (BASE + "\n[audio]\nsource = \"mic\"\n", "audio.source", 12),
        (BASE + "\n[headset]\nbaud = 1234\n", "headset.baud", 12),
        (BASE + "\n[cues]\npace_min_spm = 200\n", "cues.pace_min_spm", 12),
        (BASE + "\n[leds]\nrgb = [1, 2]\nbar = [22, 23, 24, 25, 27]\nposture = 26\n", "leds.rgb", 12),
    ],
)
def test_errors_name_field_and_line(tmp_path: Path, text: str, field: str, line: int) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    msg = str(err.value)
    assert f"line {line}:" in msg, msg
    assert field in msg, msg
    assert msg.startswith(str(p))


def test_unknown_keys_get_a_did_you_mean_hint(tmp_path: Path) -> None:
    p = write(tmp_path, BASE.replace("forward_deg = 15", "forwrd_deg = 15"))
    with pytest.raises(ConfigError, match=r"line 9: posture\.forwrd_deg: unknown key \(did you mean 'forward_deg'\?\)"):
        load_config(p)
    p = write(tmp_path, BASE + "\n[postur]\nslouch_s = 3\n")
    with pytest.raises(ConfigError, match=r"line 11: postur: unknown table \(did you mean 'posture'\?\)"):
        load_config(p)


def test_missing_identity_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"desk\.site: required .*--site"):
        load_config(None, {"desk.desk": "d1"})


def test_flags_override_the_file_and_their_errors_name_the_flag(tmp_path: Path) -> None:
    p = write(tmp_path, BASE)
    cfg = load_config(p, {"mqtt.url": "mqtt://127.0.0.1:1999", "desk.desk": "desk-09", "headset.port": "none"})
    assert cfg.mqtt.port == 1999 and cfg.desk.desk == "desk-09" and cfg.headset.port is None
    with pytest.raises(ConfigError, match=r"^--broker \(sets mqtt\.url\): mqtt\.url"):
        load_config(p, {"mqtt.url": "ftp://x"})
    with pytest.raises(ConfigError, match=r"--audio .*no such audio file"):
        load_config(p, {"audio.source": f"file:{tmp_path / 'missing.flac'}"})


def test_invalid_toml_says_where(tmp_path: Path) -> None:
    p = write(tmp_path, "[desk]\nsite = \n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_config(p)


def test_config_hash_changes_with_the_effective_config(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, BASE))
    b = load_config(write(tmp_path, BASE.replace("forward_deg = 15", "forward_deg = 20")))
    c = load_config(write(tmp_path, BASE.replace("forward_deg = 15", "forward_deg = 15.0")))
    assert len(a.config_hash) == 16 and int(a.config_hash, 16) >= 0
    assert a.config_hash != b.config_hash
    assert a.config_hash == c.config_hash  # 15 and 15.0 are the same effective value


def test_remote_config_merges_over_the_file_and_refuses_identity_changes(tmp_path: Path) -> None:
    base = load_config(write(tmp_path, BASE))
    new = apply_remote(base, {"posture": {"slouch_s": 12}, "cues": {"min_on_s": 2}})
    assert new.posture.slouch_s == 12.0 and new.posture.forward_deg == 15.0
    assert new.cues.min_on_s == 2.0
    assert new.config_hash != base.config_hash
    assert base.posture.slouch_s == 30.0  # the old config object is untouched
    # applied again over the *file* config, not cumulatively
    again = apply_remote(base, {"cues": {"min_on_s": 2}})
    assert again.posture.slouch_s == 30.0
    refused: list[tuple[dict[str, Any], str]] = [
        ({"desk": {"desk": "other"}}, "config.desk.desk"),
        ({"mqtt": {"url": "mqtt://evil:1883"}}, "config.mqtt.url"),
        ({"agent": {"state_dir": "/tmp"}}, "config.agent.state_dir"),
        ({"posture": {"forward_deg": 500}}, "config.posture.forward_deg"),
        ({"posture": {"slouchs": 1}}, "config.posture.slouchs"),
        ({"cues": {"pace_min_spm": 300}}, "config.cues.pace_min_spm"),
    ]
    for bad, field in refused:
        with pytest.raises(ConfigError) as err:
            apply_remote(base, bad)
        assert str(err.value).startswith(field), str(err.value)
    # the same identity is not a change
    assert apply_remote(base, {"desk": {"site": "site1", "desk": "desk-07"}}).desk.desk == "desk-07"


def test_calibration_file_is_loaded_relative_to_the_config_and_its_errors_located(tmp_path: Path) -> None:
    from device.config.calibration_file import save
    from device.dsp import HeadsetCalibration

    save(HeadsetCalibration(distance_cm=5.0, ild_offset_db=11.0, reference_level_dbov=-24.5, model="m1"),
         tmp_path / "cal.toml")
    cfg = load_config(write(tmp_path, BASE + '\n[calibration]\nfile = "cal.toml"\n'))
    assert cfg.calibration is not None and cfg.calibration.reference_level_dbov == -24.5
    assert cfg.calibration_file == tmp_path / "cal.toml"
    (tmp_path / "bad.toml").write_text("distance_cm = 'near'\n")
    with pytest.raises(ConfigError, match=r"line 12: calibration\.file: "):
        load_config(write(tmp_path, BASE + '\n[calibration]\nfile = "bad.toml"\n'))


def test_a_config_error_carries_its_field_and_line(tmp_path: Path) -> None:
    p = tmp_path / "agent.toml"
    p.write_text('[desk]\nsite = "s1"\ndesk = "d1"\n\n[posture]\nforward_deg = "x"\n')
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert (e.value.field, e.value.line) == ("posture.forward_deg", 6)
    assert str(e.value).startswith(f"{p} line 6: posture.forward_deg: must be a number")


def test_a_state_dir_that_is_or_is_under_a_regular_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("keep me\n")
    for state_dir, why in ((a_file, f"'{a_file}' is not a folder"),
                           (a_file / "sub" / "state", f"is under {a_file}, which is not a folder")):
        p = write(tmp_path, BASE + f'\n[agent]\nstate_dir = "{state_dir}"\n')
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert (e.value.field, e.value.line) == ("agent.state_dir", 12)
        assert str(e.value).startswith(f"{p} line 12: agent.state_dir: ") and why in str(e.value)
        with pytest.raises(ConfigError, match=r"^--state-dir \(sets agent\.state_dir\): agent\.state_dir: "):
            load_config(write(tmp_path, BASE), {"agent.state_dir": str(state_dir)})
    assert a_file.read_text() == "keep me\n"
    assert load_config(write(tmp_path, BASE), {"agent.state_dir": str(tmp_path / "new" / "state")})  # yet to be made
