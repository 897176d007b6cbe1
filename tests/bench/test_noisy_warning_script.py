"""bench/noisy_warning.py, whose figures the README and ``NOISY_GAP_DB`` quote, runs from a fresh clone
on the real clips of tests/data: the warning fires at 10 and 5 dB SNR, never clean or at 20 dB."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "noisy_warning.py"


def test_noisy_warning_fires_from_10_db_snr_down_on_the_real_clips() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300, check=True)
    summary = dict(re.findall(r"^\| (clean|pink \d+ dB|babble \d+ dB) \| [-\d. to]+ \| (\d+/\d+) \|$", run.stdout, re.M))
    assert summary == {"clean": "0/4", "pink 20 dB": "0/4", "pink 10 dB": "4/4", "pink 5 dB": "4/4",
                       "babble 20 dB": "0/4", "babble 10 dB": "4/4", "babble 5 dB": "4/4"}, run.stdout
    assert "[4/4] timit-LDC93S1" in run.stderr  # progress


def test_a_dev_dir_without_a_manifest_is_one_line(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "--dev-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().startswith(f"noisy_warning: {tmp_path / 'manifest.json'}: not a readable dev-set manifest")
