"""ImagePoser-v1 episodes are pinned too (issue 15: speed work must not change any episode).
The pin is the v1 world of ``benchmarks/results/v1_table.json``; regenerate it only with a
deliberate change of the v1 world (before v1's first release; after it, a new version),
with ``python tests/env/pin_v0.py v1``, and say why in the CHANGELOG."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("pin_v0", HERE / "pin_v0.py")
pin_v0 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pin_v0)
PINNED = json.loads((HERE / "data" / "v1_pin.json").read_text())


@pytest.mark.parametrize("case", pin_v0.V1_CASES, ids=lambda c: f"{c[0]}-{c[3]}-{c[2]}")
def test_v1_episodes_match_the_pin(case):
    key = "|".join(map(str, case))
    got = pin_v0.episode_digests(*case)
    want = PINNED[key]
    diff = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
    assert not diff, (
        f"{key}: episodes {diff} (seeds {[case[2] + i for i in diff]}) differ from the v1 pin"
    )
