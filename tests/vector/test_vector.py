"""Vectorised ImagePoser: Gymnasium's async and sync vector envs and SB3's SubprocVecEnv
give exactly what the same number of single envs give for the same seeds.

These runs use the spawn context and masked actions; ``test_vector_defaults.py`` covers
Gymnasium's default arguments (shared memory on) with unmasked random actions. Text fields
are ``poser_env.text.PoserText``, which stays correct in ``AsyncVectorEnv``'s shared memory
(plain ``spaces.Text`` is read from it only once, at construction, in Gymnasium 1.4).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import poser_env  # noqa: F401 - registers the ids

SEEDS = [3, 4]
STEPS = 14  # long enough for several episodes and autoresets per env
ASYNC = {"context": "spawn", "shared_memory": False}


def pick(mask: np.ndarray, t: int, i: int) -> int:
    """A fixed, mask-respecting action schedule (no policy state to share across processes)."""
    valid = np.flatnonzero(mask)
    return int(valid[(5 * t + 3 * i) % len(valid)])


def single_env_run(make, seeds, steps=STEPS):
    """What N single envs do under the schedule, with next-step autoreset done by hand."""
    envs = [make() for _ in seeds]
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)]
    done = [False] * len(envs)
    out = []
    for t in range(steps):
        row = []
        for i, env in enumerate(envs):
            if done[i]:
                obs[i], _ = env.reset()
                done[i] = False
                row.append((obs[i], 0.0, False, False))
                continue
            obs[i], r, term, trunc, _ = env.step(pick(obs[i]["action_mask"], t, i))
            done[i] = term or trunc
            row.append((obs[i], r, term, trunc))
        out.append(row)
    for env in envs:
        env.close()
    return out


def vector_run(venv, seeds, steps=STEPS, mask_key="action_mask"):
    obs, _ = venv.reset(seed=seeds)
    out = []
    for t in range(steps):
        actions = np.array(
            [pick(np.asarray(obs[mask_key][i]) > 0.5, t, i) for i in range(len(seeds))]
        )
        obs, r, term, trunc, _ = venv.step(actions)
        out.append(
            [
                ({k: v[i] for k, v in obs.items()}, float(r[i]), bool(term[i]), bool(trunc[i]))
                for i in range(len(seeds))
            ]
        )
    venv.close()
    return out


def as_plain(rows):
    """Observations with text as str and arrays as arrays, rewards as float."""
    return [
        [
            (
                {k: (str(v) if isinstance(v, str) else np.asarray(v)) for k, v in o.items()},
                float(r),
                bool(a),
                bool(b),
            )
            for o, r, a, b in row
        ]
        for row in rows
    ]


@pytest.fixture(scope="module")
def reference():
    return as_plain(single_env_run(lambda: gym.make("ImagePoser-v0"), SEEDS))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_matches_single_envs(mode, reference):
    kwargs = {"vector_kwargs": ASYNC} if mode == "async" else {}
    venv = gym.make_vec("ImagePoser-v0", num_envs=len(SEEDS), vectorization_mode=mode, **kwargs)
    got = as_plain(vector_run(venv, SEEDS))
    assert any(r[2] or r[3] for row in got for r in row)  # autoreset happened
    assert all(row[i][0]["prompt"] for row in got for i in range(len(SEEDS)))  # text came through
    assert data_equivalence(got, reference)


def test_async_workers_sharing_a_cache_match_single_envs(tmp_path, reference):
    venv = gym.make_vec(
        "ImagePoser-v0",
        num_envs=len(SEEDS),
        vectorization_mode="async",
        vector_kwargs=ASYNC,
        cache=str(tmp_path),
    )
    assert data_equivalence(as_plain(vector_run(venv, SEEDS)), reference)
    from poser_env.cache import GenerationCache

    assert GenerationCache(tmp_path).stats()["entries"] > 0


def _encoded(env):
    from poser_env.wrappers import EncodeObservation

    return EncodeObservation(env, state="text+image", encoder="hashed")


def test_async_with_shared_memory_on_encoded_observations():
    single = single_env_run(lambda: _encoded(gym.make("ImagePoser-v0")), SEEDS)
    venv = gym.make_vec(
        "ImagePoser-v0",
        num_envs=len(SEEDS),
        vectorization_mode="async",
        vector_kwargs={"context": "spawn"},  # shared memory on: every field is numeric
        wrappers=[_encoded],
    )
    assert data_equivalence(as_plain(vector_run(venv, SEEDS)), as_plain(single))


def _make_sb3_env():
    return _encoded(gym.make("ImagePoser-v0"))


def test_sb3_subproc_vec_env_matches_dummy_vec_env():
    vec_env = pytest.importorskip("stable_baselines3.common.vec_env")
    pytest.importorskip("poser_agents")
    assert SEEDS == [SEEDS[0], SEEDS[0] + 1]  # SB3 seeds env i with seed + i
    results = []
    for venv in (
        vec_env.DummyVecEnv([_make_sb3_env] * len(SEEDS)),
        vec_env.SubprocVecEnv([_make_sb3_env] * len(SEEDS), start_method="spawn"),
    ):
        venv.seed(SEEDS[0])
        obs = venv.reset()
        rows = [dict(obs)]
        for t in range(STEPS):
            actions = np.array([pick(obs["action_mask"][i] > 0.5, t, i) for i in range(len(SEEDS))])
            obs, rewards, dones, infos = venv.step(actions)
            # DummyVecEnv buffers rewards as float32, SubprocVecEnv stacks float64.
            rows.append(
                (dict(obs), rewards.astype(np.float32), dones, [info["expert"] for info in infos])
            )
        venv.close()
        results.append(rows)
    assert any(step[2].any() for step in results[0][1:])  # episodes ended and reset
    assert data_equivalence(results[0], results[1])
