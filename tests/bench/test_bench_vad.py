"""bench/bench_vad.py, whose figures the README quotes (why the own-voice VAD is ours, not Silero),
runs from a fresh clone and measures both VADs on the same audio."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_vad.py"


def test_bench_vad_prints_both_vads_cost_side_by_side() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "10", "--pairs", "1"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    speech = re.search(r"speech found, s\s+([\d.]+)\s+([\d.]+)", out)
    rtf = re.search(r"real-time factor \(median\)\s+([\d.]+)\s+([\d.]+)", out)
    rss = re.search(r"RSS of the process, MB\s+([\d.]+)\s+([\d.]+)", out)
    assert speech and rtf and rss, out
    # both find most of the 10 s of read speech (the clips' pauses are the rest): the same audio
    assert 6.0 <= float(speech[1]) <= 10.0 and 6.0 <= float(speech[2]) <= 10.0, out
    assert 0.0 < float(rtf[1]) and 0.0 < float(rtf[2]), out
    assert float(rss[2]) > float(rss[1]), out  # onnxruntime and the model come on top of ours
    assert re.search(r"Silero / ours, CPU: median [\d.]+x .*memory: \+[\d.]+ MB", out), out


def test_bench_vad_refuses_bad_arguments_with_a_reason() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--seconds", "0"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "--seconds must be 1-3600" in out.stderr and "Traceback" not in out.stderr
