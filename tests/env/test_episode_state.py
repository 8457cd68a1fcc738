"""The env's per-episode state (one object made by reset) and its suite assembly."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from poser_env.assembly import build_suite
from poser_env.envs.image_poser import ImagePoserEnv
from poser_env.error import ConfigError
from poser_env.pools import LocalPool
from poser_env.suites import make_suite


def test_properties_are_none_before_the_first_reset():
    env = ImagePoserEnv()
    assert (env.task, env.plan, env.current_command, env.current_image) == (None, None, None, None)
    assert env.has_image is False and env.progress_has_image is False


def test_has_image_follows_the_episode_and_the_old_name_agrees():
    env = ImagePoserEnv()
    env.reset(seed=0, options={"prompt": "a red circle on the left"})
    assert env.has_image is False and env.current_image.shape == (*env.suite.image_size, 3)
    assert (
        env.plan.commands[0] == env.current_command
        and env.task.prompt == "a red circle on the left"
    )
    t2i = next(i for i, e in enumerate(env.experts) if e.kind == "t2i")
    env.step(t2i)
    assert env.has_image is True and env.progress_has_image is True


def test_reset_makes_a_fresh_episode_object_and_a_copy_is_independent():
    env = ImagePoserEnv()
    env.reset(seed=0)
    first = env._ep
    sim = copy.deepcopy(env)  # what LookaheadPolicy does to simulate
    sim.step(int(np.flatnonzero(sim.action_masks())[0]))
    assert env._ep.step_count == 0 and sim._ep.step_count == 1
    env.reset(seed=1)
    assert env._ep is not first and env._ep.step_count == 0


def test_build_suite_selects_experts_and_connects_the_pool(tmp_path):
    base = make_suite("shapes")
    names = list(base.expert_names[:2])
    suite, pool, counter = build_suite("shapes", experts=names)
    assert list(suite.expert_names) == names and isinstance(pool, LocalPool) and counter is None
    suite, _, counter = build_suite(base, cache=tmp_path)
    assert counter is not None and list(suite.expert_names) == list(base.expert_names)


def test_build_suite_refuses_kwargs_with_an_instance_and_a_non_suite():
    with pytest.raises(ConfigError, match="suite_kwargs only apply to a suite given by name"):
        build_suite(make_suite("shapes"), suite_kwargs={"x": 1})
    with pytest.raises(
        ConfigError, match="suite must be a registered suite name or a Suite, got int"
    ):
        ImagePoserEnv(suite=3)
