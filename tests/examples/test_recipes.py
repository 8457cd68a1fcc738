"""The third-party library recipes under examples/ run at a tiny size and do what they print.

Each recipe runs as a script in a fresh interpreter, as a user would run it. A library that
is not installed skips its test with the reason: Tianshou 2.0.1 (``pandas<3``,
``virtualenv<21``) and RLlib 2.60 (``gymnasium==1.2.2``) pin versions that conflict with
the main test environment, so CI runs their tests in environments of their own (``.ci/run``;
docs/compatibility.md says how).
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RECIPES = ("sb3_recipes.py", "cleanrl_dqn.py", "torchrl_env.py", "tianshou_dqn.py", "rllib_ppo.py")
SEPARATE_ENV = "its pins conflict with the main test environment; .ci/run tests it in its own (docs/compatibility.md)"


def need(module: str, reason: str) -> None:
    """Skip unless ``module`` imports; fail instead where CI names the library as required.

    ``POSER_REQUIRED_RECIPES`` (comma-separated module names) is set by ``.ci/run`` in the
    environments it builds for Tianshou and RLlib, so a broken install fails there.
    """
    if importlib.util.find_spec(module) is not None:
        return
    required = {
        m.strip() for m in os.environ.get("POSER_REQUIRED_RECIPES", "").split(",") if m.strip()
    }
    if module in required:
        pytest.fail(
            f"{module} is required here (POSER_REQUIRED_RECIPES) but not installed: {reason}"
        )
    pytest.skip(reason)


def run_recipe(name: str, *args: str, timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    res = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )
    assert res.returncode == 0, f"{name} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return res.stdout


def number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not found in:\n{text}"
    return float(m.group(1))


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_defines_no_wrapper_of_its_own(name):
    """A recipe composes shipped wrappers only: no Wrapper subclass, no observation glue."""
    tree = ast.parse((EXAMPLES / name).read_text())
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    bases = [ast.unparse(b) for c in classes for b in c.bases]
    assert not [b for b in bases if "Wrapper" in b or b.endswith("Env") or "Transform" in b], bases
    imports = {
        a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == "poser_env.wrappers"
        for a in n.names
    }
    assert imports == {"EncodeObservation"}


def test_sb3_dqn_ppo_maskable_ppo():
    need("stable_baselines3", 'pip install "image-poser[agents]"')
    need("sb3_contrib", 'pip install "image-poser[agents]"')
    out = run_recipe("sb3_recipes.py", "--algo", "all", "--steps", "192", "--episodes", "2")
    for algo in ("dqn", "ppo", "maskable_ppo"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{algo}:"))
        assert number(r"trained (\d+) steps", line) >= 192
        finished = number(r"(\d+) episodes finished", line)
        assert finished > 0
        # SB3 reads info["is_success"] at every episode end: one success entry per episode.
        assert number(r"success rate [\d.]+ over (\d+)", line) == finished, line
        assert math.isfinite(number(r"eval return (-?[\d.]+)", line))


@pytest.mark.parametrize(
    ("mode", "env_id"), [("sync", "ImagePoser-v0"), ("async", "ImagePoser-v1")]
)
def test_cleanrl_dqn(mode, env_id):
    need("torch", "pip install torch")
    out = run_recipe(
        "cleanrl_dqn.py",
        "--total-timesteps",
        "240",
        "--learning-starts",
        "60",
        "--vectorization-mode",
        mode,
        "--env",
        env_id,
    )
    assert number(r"(\d+) episodes finished", out) > 0
    assert 0.0 <= number(r"success rate ([\d.]+)", out) <= 1.0
    assert math.isfinite(number(r"last td_loss ([\d.]+)", out))


def test_torchrl_gymenv_action_mask_and_dqn():
    need("torchrl", 'pip install "image-poser[test]" (torchrl)')
    out = run_recipe("torchrl_env.py", "--rollout", "40", "--frames", "100")
    assert number(r"rollout: (\d+) steps", out) == 40
    assert number(r"(\d+) episodes \(", out) > 0
    assert number(r"(\d+) invalid actions", out) == 0
    assert number(r"collected (\d+) frames", out) == 100
    assert number(r"(\d+) updates", out) > 0
    assert math.isfinite(number(r"last loss ([\d.]+)", out))


def test_tianshou_dqn_collector():
    need("tianshou", "tianshou 2.0.1 pins pandas<3 and virtualenv<21; " + SEPARATE_ENV)
    out = run_recipe("tianshou_dqn.py", "--collect", "300", "--epochs", "1", "--epoch-steps", "100")
    assert number(r"collected (\d+) steps", out) >= 300
    assert number(r"(\d+) episodes into", out) > 0
    assert number(r"trained: (\d+) update steps", out) > 0
    assert number(r"greedy evaluation: (\d+) episodes", out) == 4
    assert math.isfinite(number(r"mean return (-?[\d.]+)", out))


def test_rllib_ppo():
    # ray (with serve) is in the main environment; RLlib's own extras (dm-tree, lz4) are not.
    need("tree", "ray[rllib] 2.60 pins gymnasium==1.2.2; " + SEPARATE_ENV)
    out = run_recipe("rllib_ppo.py", "--iterations", "1", "--batch", "200")
    assert number(r"(\d+) env steps", out) >= 200
    assert number(r"(\d+) episodes", out) > 0
    assert math.isfinite(number(r"mean return (-?[\d.]+)", out))
