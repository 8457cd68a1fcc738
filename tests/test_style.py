"""House style is checked by the test suite, so CI fails on it: ``ruff check`` (lint rules in
``pyproject.toml``) and ``ruff format --check`` (the formatter) over the whole repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff")

pytestmark = pytest.mark.skipif(
    RUFF is None, reason='ruff not installed (pip install -e ".[test]")'
)


@pytest.mark.parametrize(
    "args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"]
)
def test_ruff_clean(args):
    proc = subprocess.run([RUFF, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"ruff {' '.join(args)} is not clean:\n{proc.stdout}{proc.stderr}"
