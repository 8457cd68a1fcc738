"""examples/quickstart.py runs and reports the episodes it played."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_example_runs():
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "commands:" in res.stdout
    assert "'draw three red circles on the left'" in res.stdout
    assert "oracle: {'success':" in res.stdout
