"""ImagePoser-v1: the same env class and suite as v0 with the v1 skill model (world="v1").

Contracts on every v1 id (Gymnasium's check_env, pickling, same seed same episode in
another process) and the bad input of the new arguments. The v0 pin lives in
test_v0_pin.py; the skill model's statistics in tests/suites/shapes/test_v1_skills.py.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

import poser_env  # noqa: F401 - registers the ids
from poser_env.envs.image_poser import ImagePoserEnv
from poser_env.envs.registration import IDS
from poser_env.error import ConfigError
from poser_env.suites.shapes.critic import NoisyShapesCritic, ShapesCritic
from poser_env.suites.shapes.skills import V1Expert

V1_IDS = [i for i in IDS if i.endswith("-v1")]


def test_every_v0_id_has_a_v1_twin_of_the_same_class():
    assert sorted(V1_IDS) == sorted(i.replace("-v0", "-v1") for i in IDS if i.endswith("-v0"))
    for env_id in V1_IDS:
        assert gym.spec(env_id).entry_point == gym.spec(env_id.replace("-v1", "-v0")).entry_point
        env = gym.make(env_id).unwrapped
        assert all(isinstance(e, V1Expert) for e in env.experts)
        assert len(env.experts) == 12
        assert type(env.suite.critic) is ShapesCritic  # exact by default


@pytest.mark.parametrize("env_id", V1_IDS)
def test_check_env(env_id):
    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


def _episode(env, seed, n=20):
    obs, info = env.reset(seed=seed)
    out = [(obs, info)]
    rng = np.random.default_rng(seed)
    for _ in range(n):
        a = int(rng.choice(np.flatnonzero(env.action_masks())))
        step = env.step(a)
        out.append(step)
        if step[2] or step[3]:
            break
    return out


@pytest.mark.parametrize("env_id", V1_IDS)
def test_pickle_round_trip_continues_the_same_episode(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=3)
    env.step(int(np.flatnonzero(env.action_masks())[0]))
    twin = pickle.loads(pickle.dumps(env))
    for _ in range(3):
        a = int(np.flatnonzero(env.action_masks())[-1])
        x, y = env.step(a), twin.step(a)
        assert data_equivalence(x, y)
        if x[2] or x[3]:
            break


def test_same_seed_same_episode():
    a = _episode(gym.make("ImagePoser-v1").unwrapped, 7)
    b = _episode(gym.make("ImagePoser-v1").unwrapped, 7)
    assert data_equivalence(a, b)


CODE = """
import json, gymnasium as gym, poser_env
from poser_env.suites.shapes.policies import OraclePolicy
env = gym.make("ImagePoser-v1", suite_kwargs={"critic_errors": 0.3}).unwrapped
policy, out = OraclePolicy(), []
for ep in range(150):
    env.reset(seed=ep)
    total = 0.0
    while True:
        *_, r, term, trunc, info = env.step(policy(env))
        total += r
        if term or trunc:
            break
    out.append([round(total, 9), bool(info["final_metrics"]["success"])])
print(json.dumps(out))
"""


def test_v1_episodes_do_not_depend_on_the_process_hash_seed():
    runs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        res = subprocess.run(
            [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, env=env
        )
        runs.append(json.loads(res.stdout))
    assert runs[0] == runs[1]


def test_suite_kwargs_given_to_make_keep_the_v1_world():
    env = gym.make("ImagePoser-v1", suite_kwargs={"split": "test"}).unwrapped
    assert all(isinstance(e, V1Expert) for e in env.experts)
    assert env.suite.tasks.config.split == "test" and env.suite.tasks.config.editing_fraction == 0.3


def test_world_and_critic_errors_are_env_arguments():
    env = ImagePoserEnv(suite_kwargs={"world": "v1", "critic_errors": {"left_right": 0.2}})
    assert isinstance(env.suite.critic, NoisyShapesCritic)
    assert env.suite.critic.errors.left_right == 0.2 and env.suite.critic.errors.miscount == 0.0
    v0 = ImagePoserEnv(suite_kwargs={"critic_errors": 0.1})  # an imperfect critic in v0 too
    assert not isinstance(v0.experts[0], V1Expert)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"world": "v2"}, r"world must be one of \['v0', 'v1'\], got 'v2'.*Did you mean"),
        ({"world": 1}, r"world.* must be a string"),
        ({"critic_errors": 1.5}, r"critic_errors must be a probability in \[0, 1\]"),
        (
            {"critic_errors": {"miscounts": 0.1}},
            r"Unknown critic_errors kind 'miscounts'.*Did you mean 'miscount'",
        ),
        (
            {"critic_errors": {"left_right": -0.1}},
            r"critic_errors\['left_right'\] must be a probability",
        ),
        (
            {"critic_errors": "high"},
            r"critic_errors.* must be a CriticErrors or a number or a mapping or None, got str",
        ),
        ({"critic_errors": True}, r"critic_errors.* must be .* got bool"),
    ],
)
def test_bad_world_arguments_say_what_was_expected(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ImagePoserEnv(suite_kwargs={"world": "v1", **kwargs} if "world" not in kwargs else kwargs)
