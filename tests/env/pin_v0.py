"""Digest of ImagePoser-v0 episodes on fixed seeds (shared by the pin test and its
regeneration script).

Everything the dynamics decide goes into the digest: every observation (texts, image
bytes, progress, mask), reward, terminated, truncated, the final metrics and the plan's
commands. The info dict's *layout* is not pinned (issue 9 fixes its schema), only the
values that come from the world.
"""

from __future__ import annotations

import hashlib
import json

import gymnasium as gym
import numpy as np

import poser_env  # noqa: F401  (registers the ids)

#: (env id, number of episodes, first seed, policy)
CASES = [
    ("ImagePoser-v0", 40, 0, "random"),
    ("ImagePoser-v0", 40, 1000, "oracle"),
    ("ImagePoser-v0", 30, 2000, "router"),
    ("ImagePoser-Easy-v0", 20, 3000, "random"),
    ("ImagePoser-Hard-v0", 20, 4000, "oracle"),
    ("ImagePoser-Edit-v0", 30, 5000, "random"),
]
#: The same for ImagePoser-v1 (the world of benchmarks/results/v1_table.json).
V1_CASES = [
    ("ImagePoser-v1", 30, 0, "random"),
    ("ImagePoser-v1", 30, 1000, "oracle"),
    ("ImagePoser-Easy-v1", 10, 3000, "random"),
    ("ImagePoser-Hard-v1", 10, 4000, "oracle"),
    ("ImagePoser-Edit-v1", 20, 5000, "random"),
]
FINAL_KEYS = (
    "success",
    "alignment",
    "fidelity",
    "aesthetics",
    "steps",
    "total_cost",
    "commands_done",
    "commands_dropped",
)


def _policy(name: str, seed: int):
    from poser_env.suites.shapes import policies

    if name == "random":
        return policies.RandomPolicy(seed=seed)
    if name == "oracle":
        return policies.OraclePolicy()
    return policies.RouterPolicy()


def _update(h, obs) -> None:
    for key in sorted(obs):
        v = obs[key]
        h.update(key.encode())
        if isinstance(v, str):
            h.update(v.encode())
        else:
            a = np.ascontiguousarray(v)
            h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())


def episode_digests(env_id: str, n: int, first_seed: int, policy_name: str) -> list[str]:
    env = gym.make(env_id)
    base = env.unwrapped
    policy = _policy(policy_name, first_seed)
    out = []
    for ep in range(n):
        h = hashlib.sha256()
        obs, info = env.reset(seed=first_seed + ep)
        _update(h, obs)
        h.update(json.dumps([c.text for c in base.plan.commands]).encode())
        while True:
            obs, r, term, trunc, info = env.step(policy(base))
            _update(h, obs)
            h.update(repr((round(float(r), 9), bool(term), bool(trunc))).encode())
            if term or trunc:
                fm = info["final_metrics"]
                h.update(repr([round(float(fm[k]), 9) for k in FINAL_KEYS]).encode())
                break
        out.append(h.hexdigest()[:16])
    env.close()
    return out


def all_digests(cases=CASES) -> dict[str, list[str]]:
    return {f"{e}|{n}|{s}|{p}": episode_digests(e, n, s, p) for e, n, s, p in cases}


#: (difficulty, split, editing_fraction, number of tasks, first seed) for the plan pin
PLAN_CASES = [
    ("easy", "train", 0.25, 150, 0),
    ("medium", "train", 0.25, 300, 0),
    ("medium", "test", 0.25, 150, 500),
    ("hard", "all", 0.25, 200, 900),
    ("medium", "train", 1.0, 200, 1300),
]


def plan_digests(
    difficulty: str, split: str, editing_fraction: float, n: int, first_seed: int
) -> list[str]:
    """The extractor's plan (commands, kinds, constraints) of generated task prompts."""
    from poser_env.suites.registration import make_suite

    suite = make_suite(
        "shapes", difficulty=difficulty, split=split, editing_fraction=editing_fraction
    )
    out = []
    for i in range(n):
        task = suite.tasks.sample(np.random.default_rng(first_seed + i))
        plan = suite.extractor.extract(task.prompt, task.image)
        blob = json.dumps(plan.to_dict(), sort_keys=True)
        out.append(hashlib.sha256(blob.encode()).hexdigest()[:16])
    return out


def all_plan_digests() -> dict[str, list[str]]:
    return {"|".join(map(str, c)): plan_digests(*c) for c in PLAN_CASES}


if __name__ == "__main__":
    # Regenerate (only with a new env version): python tests/env/pin_v0.py [v0|v1]
    import sys
    from pathlib import Path

    data = Path(__file__).parent / "data"
    if sys.argv[1:] == ["v1"]:
        (data / "v1_pin.json").write_text(json.dumps(all_digests(V1_CASES), indent=1) + "\n")
    else:
        (data / "v0_pin.json").write_text(json.dumps(all_digests(), indent=1) + "\n")
        (data / "v0_plan_pin.json").write_text(json.dumps(all_plan_digests(), indent=1) + "\n")
