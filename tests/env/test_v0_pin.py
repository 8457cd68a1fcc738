"""ImagePoser-v0 episodes are pinned: the same seeds give exactly the episodes recorded at
commit 70b24b4 (before the v1, speed and parser work). A change here is a change of v0's
dynamics, which needs a new env version, not a new pin. ImagePoser-v1's episodes are pinned
here too."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("pin_v0", HERE / "pin_v0.py")
pin_v0 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pin_v0)
PINNED = json.loads((HERE / "data" / "v0_pin.json").read_text())


@pytest.mark.parametrize("case", pin_v0.CASES, ids=lambda c: f"{c[0]}-{c[3]}-{c[2]}")
def test_v0_episodes_match_the_pin(case):
    key = "|".join(map(str, case))
    got = pin_v0.episode_digests(*case)
    want = PINNED[key]
    diff = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
    assert not diff, (
        f"{key}: episodes {diff} (seeds {[case[2] + i for i in diff]}) differ from the v0 pin"
    )


PINNED_V1 = json.loads((HERE / "data" / "v1_pin.json").read_text())


@pytest.mark.parametrize("case", pin_v0.V1_CASES, ids=lambda c: f"{c[0]}-{c[3]}-{c[2]}")
def test_v1_episodes_match_the_pin(case):
    """ImagePoser-v1 is pinned too (speed work must not change any episode): the world of
    ``benchmarks/results/v1_table.json``. Regenerate only with a deliberate change of the v1
    world (``python tests/env/pin_v0.py v1``), said in the CHANGELOG."""
    key = "|".join(map(str, case))
    got = pin_v0.episode_digests(*case)
    diff = [i for i, (a, b) in enumerate(zip(got, PINNED_V1[key], strict=True)) if a != b]
    assert not diff, (
        f"{key}: episodes {diff} (seeds {[case[2] + i for i in diff]}) differ from the v1 pin"
    )


PINNED_PLANS = json.loads((HERE / "data" / "v0_plan_pin.json").read_text())


@pytest.mark.parametrize("case", pin_v0.PLAN_CASES, ids=lambda c: "-".join(map(str, c)))
def test_generator_prompts_parse_to_the_pinned_plans(case):
    key = "|".join(map(str, case))
    got = pin_v0.plan_digests(*case)
    want = PINNED_PLANS[key]
    diff = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
    assert not diff, (
        f"{key}: tasks {diff} (seeds {[case[4] + i for i in diff]}) parse to other plans than the v0 pin"
    )


def test_making_v0_gives_no_out_of_date_warning_although_v1_exists():
    # In a fresh interpreter: pytest installs warning filters of its own.
    import subprocess
    import sys

    code = (
        "import gymnasium as gym, poser_env; "
        "[gym.make(i).close() for i in ('ImagePoser-v0', 'ImagePoser-Hard-v0')]; "
        "gym.make('ImagePoser-v1').close()"
    )
    res = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True
    )
    assert "out of date" not in res.stderr, res.stderr[-2000:]
