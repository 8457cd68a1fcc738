"""The ExpertPool interface, the pool registry and how the env reports a failing pool
(no Ray needed: a custom pool stands in for a remote one)."""

from __future__ import annotations

import sys
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import poser_env  # noqa: F401 - registers the ids
from poser_env import Expert, ExpertResult
from poser_env.error import ConfigError, MissingDependencyError, PoolError, UnknownNameError
from poser_env.pools import ExpertPool, LocalPool, list_pools, make_pool, register_pool
from poser_env.suites import make_suite


class CountingPool(ExpertPool):
    """Routes every expert call through a stand-in that counts it (and can fail like a pool)."""

    name = "counting"

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after

    def connect(self, suite):
        return replace(suite, experts=tuple(_Counted(e, self) for e in suite.experts))


class _Counted(Expert):
    def __init__(self, inner, pool):
        self.inner, self.pool = inner, pool
        self.name, self.kind, self.cost = inner.name, inner.kind, inner.cost

    def __call__(self, command, image, seed):
        self.pool.calls += 1
        if self.pool.fail_after is not None and self.pool.calls > self.pool.fail_after:
            raise PoolError("no answer from the pool (test)")
        return self.inner(command, image, seed)


def test_default_pool_is_local_and_registry_lists_pools():
    env = gym.make("ImagePoser-v0")
    assert isinstance(env.unwrapped.pool, LocalPool)
    assert {"local", "ray"} <= set(list_pools())
    assert make_pool(None).name == "local"


def test_make_pool_errors():
    with pytest.raises(UnknownNameError, match="Unknown pool 'rey'. Did you mean 'ray'"):
        make_pool("rey")
    with pytest.raises(ConfigError, match="pool_kwargs only apply to a pool given by name"):
        make_pool(LocalPool(), timeout_s=3)
    with pytest.raises(
        ConfigError, match="pool must be a registered pool name or an ExpertPool, got int"
    ):
        make_pool(3)
    register_pool("not-a-pool", lambda: object())
    try:
        with pytest.raises(ConfigError, match="returned object, expected an ExpertPool"):
            make_pool("not-a-pool")
    finally:
        from poser_env.pools import registration

        registration.registry.pop("not-a-pool")


def test_custom_pool_sees_every_expert_call_and_changes_nothing():
    pool = CountingPool()
    pooled = gym.make("ImagePoser-v0", pool=pool)
    local = gym.make("ImagePoser-v0")
    for env in (pooled, local):
        env.reset(seed=5)
    steps = 0
    for t in range(12):
        mask = local.unwrapped.action_masks()
        a = int(np.flatnonzero(mask)[t % mask.sum()])
        o1, r1, te1, tr1, i1 = pooled.step(a)
        o2, r2, te2, tr2, i2 = local.step(a)
        steps += not i1["invalid_action"]
        assert r1 == r2 and te1 == te2 and tr1 == tr2 and np.array_equal(o1["image"], o2["image"])
        if te1 or tr1:
            pooled.reset(seed=t)
            local.reset(seed=t)
    assert pool.calls == steps > 0


def test_pool_failure_truncates_the_step_with_the_error_in_info():
    env = gym.make("ImagePoser-v0", pool=CountingPool(fail_after=1))
    env.reset(seed=0)
    t2i = int(np.flatnonzero(env.unwrapped.action_masks())[0])
    _, _, term, trunc, info = env.step(t2i)
    assert info["error"] == "" and not trunc
    if term:  # a one-command task: start another to reach the failing call
        env.reset(seed=1)
    _, reward, term, trunc, info = env.step(t2i)
    assert trunc and not term
    assert info["error_component"] == "pool"
    assert "PoolError: no answer from the pool (test)" in info["error"]
    assert info["final_metrics"]["episode_over"]


class FailingCritic:
    """A critic stand-in that cannot be reached."""

    name = "unreachable-critic"

    def judge(self, image, command, constraints):
        raise PoolError("critic deployment gone (test)")

    def cache_identity(self):
        return {"name": self.name}

    def close(self):
        pass


def test_critic_failure_at_reset_does_not_raise():
    suite = make_suite("shapes", difficulty="easy")
    suite = replace(suite, critic=FailingCritic())
    env = gym.make("ImagePoser-v0", suite=suite, disable_env_checker=True)
    source = np.full((*suite.image_size, 3), 200, np.uint8)
    obs, info = env.reset(seed=0, options={"prompt": "add a red circle", "image": source})
    assert info["prompt_score"] == 0.0
    assert info["error"].startswith(
        "pool 'unreachable-critic' failed on the source image: PoolError"
    )


def test_ray_pool_without_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delitem(sys.modules, "poser_env.pools.ray_pool", raising=False)
    with pytest.raises(MissingDependencyError, match=r'pip install "image-poser\[ray\]"'):
        make_pool("ray")


def test_batch_defaults_equal_single_calls():
    suite = make_suite("shapes")
    task = suite.tasks.sample(np.random.default_rng(0))
    plan = suite.extractor.extract(task.prompt, task.image)
    command = plan.commands[0]
    t2i = next(e for e in suite.experts if e.kind == "t2i")
    batch = t2i.call_batch([(command, None, 1), (command, None, 2)])
    assert isinstance(batch[0], ExpertResult)
    for got, seed in zip(batch, (1, 2), strict=True):
        assert np.array_equal(got.image, t2i(command, None, seed).image)
    verdicts = suite.critic.judge_batch([(b.image, command, plan.constraints) for b in batch])
    assert verdicts == [suite.critic.judge(b.image, command, plan.constraints) for b in batch]
