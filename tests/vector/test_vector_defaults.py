"""``gym.make_vec`` with Gymnasium's DEFAULT arguments, driven with unmasked random actions
(invalid ones included), gives exactly the observations, rewards, flags and infos of the same
number of single envs driven with the same actions.

Before the fixed info schema this crashed on the first invalid action inside Gymnasium's
info merging (``info["verdict"]`` was ``None`` or a dict), and async mode with its default
shared memory returned every text field as 1,024 spaces.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import poser_env
from poser_env.envs.image_poser import FINAL_FIELDS, INFO_KEYS, VERDICT_FIELDS

SEEDS = [5, 6, 7]
STEPS = 16
N_ACTIONS = 12


def actions_schedule(steps: int = STEPS, n: int = len(SEEDS), seed: int = 0) -> np.ndarray:
    """Uniform random actions over the whole action space: i2i experts before an image too."""
    return np.random.default_rng(seed).integers(N_ACTIONS, size=(steps, n))


def single_runs(actions: np.ndarray, env_id: str = "ImagePoser-v0"):
    """Per env: (obs, reward, terminated, truncated, info) per step, next-step autoreset by hand."""
    runs = []
    for i, seed in enumerate(SEEDS):
        env = gym.make(env_id)
        obs, info = env.reset(seed=seed)
        rows = [(obs, 0.0, False, False, info)]
        done = False
        for t in range(len(actions)):
            if done:
                obs, info = env.reset()
                rows.append((obs, 0.0, False, False, info))
                done = False
                continue
            obs, r, term, trunc, info = env.step(int(actions[t, i]))
            rows.append((obs, float(r), bool(term), bool(trunc), info))
            done = term or trunc
        env.close()
        runs.append(rows)
    return runs


def unstack_info(infos: dict, i: int) -> dict:
    """Env ``i``'s info out of Gymnasium's batched infos; every key must be present for it."""
    out = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        assert infos[f"_{key}"][i], f"info key {key!r} missing for env {i}"
        out[key] = unstack_info(value, i) if isinstance(value, dict) else value[i]
    return out


def vector_runs(venv, actions: np.ndarray):
    n = len(SEEDS)
    obs, infos = venv.reset(seed=SEEDS)
    runs = [
        [({k: v[i] for k, v in obs.items()}, 0.0, False, False, unstack_info(infos, i))]
        for i in range(n)
    ]
    for t in range(len(actions)):
        obs, r, term, trunc, infos = venv.step(actions[t])
        for i in range(n):
            runs[i].append(
                (
                    {k: v[i] for k, v in obs.items()},
                    float(r[i]),
                    bool(term[i]),
                    bool(trunc[i]),
                    unstack_info(infos, i),
                )
            )
    venv.close()
    return runs


@pytest.fixture(scope="module")
def actions():
    return actions_schedule()


@pytest.fixture(scope="module")
def reference(actions):
    return single_runs(actions)


def test_the_schedule_exercises_invalid_actions_failures_and_autoresets(reference):
    infos = [row[4] for run in reference for row in run]
    assert any(info["invalid_action"] for info in infos)
    assert any(info["final_metrics"]["episode_over"] for info in infos)
    assert any(row[2] or row[3] for run in reference for row in run)


@pytest.mark.parametrize("env_id", list(poser_env.IDS))
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_with_default_arguments_equals_single_envs(mode, env_id, actions, reference):
    if env_id != "ImagePoser-v0":
        reference = single_runs(actions, env_id)
    venv = gym.make_vec(env_id, num_envs=len(SEEDS), vectorization_mode=mode)
    got = vector_runs(venv, actions)
    for i in range(len(SEEDS)):
        for t, (want, row) in enumerate(zip(reference[i], got[i], strict=True)):
            assert data_equivalence(want[:4], row[:4]), (
                f"env {i} step {t}: observation, reward or flags differ"
            )
            assert data_equivalence(want[4], row[4]), f"env {i} step {t}: info differs"
    assert all(row[0]["prompt"].strip() for run in got for row in run), (
        "text observations came through"
    )


def test_every_info_has_the_same_keys_and_types(reference):
    def shape(value):
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        return type(value)

    infos = [row[4] for run in reference for row in run]
    first = shape(infos[0])
    assert tuple(first) == INFO_KEYS
    assert (
        tuple(first["verdict"]) == VERDICT_FIELDS and tuple(first["final_metrics"]) == FINAL_FIELDS
    )
    assert all(shape(info) == first for info in infos)
    # Numbers are numpy scalars (TorchRL's info reader needs .dtype), never Python bools or None.
    flat = [
        v
        for info in infos
        for v in (*info.values(), *info["verdict"].values(), *info["final_metrics"].values())
    ]
    assert not any(v is None or isinstance(v, bool) for v in flat)


def test_is_success_is_the_final_success_on_the_last_step_and_false_before(reference):
    for run in reference:
        for _obs, _r, term, trunc, info in run:
            if term or trunc:
                assert info["is_success"] == info["final_metrics"]["success"]
            else:
                assert not info["is_success"] and not info["final_metrics"]["episode_over"]


def test_details_carry_the_variable_length_parts(reference):
    obs, _, _, _, info = reference[0][0]
    details = poser_env.read_details(info)
    assert set(details) == {"commands", "task_meta", "verdict", "expert_meta"}
    assert details["commands"][0] == obs["command"] and details["verdict"] == {}
    judged = [row[4] for run in reference for row in run if row[4]["verdict"]["has_verdict"]]
    assert judged
    for info in judged:
        verdict = poser_env.read_details(info)["verdict"]
        assert (
            verdict["alignment"] == info["verdict"]["alignment"]
            and verdict["accepted"] == info["verdict"]["accepted"]
        )
        assert info["verdict"]["checks_total"] == len(verdict["checks"])


def test_async_default_shared_memory_keeps_text_per_step_and_copies():
    venv = gym.make_vec("ImagePoser-v0", num_envs=2, vectorization_mode="async")
    obs, _ = venv.reset(seed=[0, 1])
    first = obs["command"]
    assert isinstance(first, tuple) and all(isinstance(c, str) and c for c in first)
    single = [gym.make("ImagePoser-v0").reset(seed=s)[0]["prompt"] for s in (0, 1)]
    assert obs["prompt"] == tuple(single)
    obs, *_ = venv.step(np.array([0, 0]))
    assert first == tuple(gym.make("ImagePoser-v0").reset(seed=s)[0]["command"] for s in (0, 1)), (
        "returned copies"
    )
    venv.close()


def test_async_without_copy_reads_the_current_text():
    venv = gym.make_vec(
        "ImagePoser-v0", num_envs=2, vectorization_mode="async", vector_kwargs={"copy": False}
    )
    obs, _ = venv.reset(seed=[0, 1])
    want = [gym.make("ImagePoser-v0").reset(seed=s)[0]["command"] for s in (0, 1)]
    assert list(obs["command"]) == want and obs["command"] == tuple(want)
    venv.close()
