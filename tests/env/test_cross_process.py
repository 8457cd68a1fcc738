"""Same seed, same episode in a different process. Python randomises string hashing per
process, so any iteration over a set of strings in the dynamics shows up here (it once
did: one episode in a thousand differed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CODE = """
import json
from poser_env.envs.image_poser import ImagePoserEnv
from poser_env.suites.shapes.policies import RouterPolicy
env, policy = ImagePoserEnv(), RouterPolicy()
out = []
for ep in range(1000):
    env.reset(seed=10000 + ep)
    total = 0.0
    while True:
        *_, r, term, trunc, info = env.step(policy(env))
        total += r
        if term or trunc:
            break
    out.append([round(total, 9), bool(info["final_metrics"]["success"])])
print(json.dumps(out))
"""


def run(hash_seed: str):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    res = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(res.stdout)


def test_episodes_do_not_depend_on_the_process_hash_seed():
    a, b = run("1"), run("2")
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    assert not diff, f"episodes {diff} differ between processes"
