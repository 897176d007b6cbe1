"""bench/speech_model_levels.py: the speech model's share of loud hops by level, as heard and raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import speech_model_levels as sml


def test_the_model_hears_quiet_speech_only_raised(capsys: pytest.CaptureFixture[str]) -> None:
    assert sml.main([]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    by_clip: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        by_clip.setdefault(row[0].lstrip("| "), {})[row[1]] = [float(v) for v in row[2:-1] + [row[-1].rstrip(" |")]]
    assert len(by_clip) == 4, by_clip
    at = sml.LEVELS_DBOV.index
    for clip, shares in by_clip.items():
        plain, raised = shares["as it is"], shares["raised"]
        # measured at -70 dBov: 0.11-0.82 as it is, 0.85-0.98 raised (each clip's share at -40)
        assert plain[at(-70.0)] <= 0.85 and plain[at(-75.0)] <= 0.45, (clip, plain)
        assert min(raised) >= raised[at(-40.0)] - 0.02, (clip, raised)
        assert raised[: at(-40.0) + 1] == plain[: at(-40.0) + 1], clip  # no gain at -40 dBov or over


def test_a_dev_dir_that_is_not_a_directory_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sml.main(["--dev-dir", str(tmp_path / "missing")]) == 1
    assert "not a directory" in capsys.readouterr().err
