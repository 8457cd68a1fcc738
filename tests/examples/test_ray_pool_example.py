"""examples/ray_pool.py starts a local Ray instance, shares one pool between two async
workers and finds their results equal to in-process envs'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]


def test_ray_pool_example_runs():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ray_pool.py"), "--workers", "2", "--steps", "6"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 workers connected to the Ray pool" in res.stdout
    assert "12 expert deployments and the critic" in res.stdout
    assert "same as in-process envs: True" in res.stdout
