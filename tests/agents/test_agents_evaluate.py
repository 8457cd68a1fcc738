"""Confidence intervals, summaries and tables."""

from __future__ import annotations

import pytest

from poser_agents.error import AgentsConfigError
from poser_agents.evaluate import METRICS, ci95, format_table, summarise


def _rec(seed, success, usage=None):
    r = {m: 0.0 for m in METRICS}
    r.update(train_seed=seed, success=success, usage=usage or {"a": 1.0, "b": 0.0})
    return r


def test_ci95_is_the_student_t_half_width():
    # mean 2, sd 1, n 3 -> t(0.975, 2) = 4.303 -> 4.303 / sqrt(3)
    assert ci95([1.0, 2.0, 3.0]) == pytest.approx(4.3027 / 3**0.5, rel=1e-4)
    assert ci95([5.0]) == 0.0


def test_summarise_pools_episodes_and_reports_the_seed_spread():
    recs = [_rec(0, 1.0), _rec(0, 1.0), _rec(1, 0.0), _rec(1, 0.0)]
    s = summarise(recs)
    assert s["episodes"] == 4 and s["seeds"] == 2
    assert s["metrics"]["success"]["mean"] == 0.5
    assert s["metrics"]["success"]["seed_std"] == pytest.approx(2**0.5 / 2 * 1.0, rel=1e-6)
    assert s["usage"]["a"]["mean"] == 1.0
    table = format_table({"x": s}, metrics=("success",))
    assert "| x | 0.500 ±" in table
    with pytest.raises(AgentsConfigError, match="at least one episode"):
        summarise([])


def test_baselines_are_compared_on_the_env_the_run_was_trained_on(tmp_path, tiny):
    from poser_agents.evaluate import baseline_env, evaluate_baselines, evaluate_run
    from poser_agents.train import load_agent, train

    tiny.update(
        n_timesteps=120,
        learning_starts=50,
        eval_episodes=2,
        env_kwargs={"max_steps": 3, "suite_kwargs": {"difficulty": "hard"}},
    )
    run = train(
        "dqn",
        "ImagePoser-Easy-v0",
        seed=0,
        run_dir=tmp_path / "r",
        hyperparams=tiny,
        evaluate=False,
    )
    _, agent_env, _ = load_agent(run, split="test")
    env = baseline_env(run, split="test")
    # The baselines' env is the agent's, without the encoder: same id, same arguments.
    assert env.unwrapped.spec.id == agent_env.unwrapped.spec.id == "ImagePoser-Easy-v0"
    assert env.unwrapped.spec.kwargs == agent_env.unwrapped.spec.kwargs
    assert env.unwrapped.spec.kwargs["max_steps"] == 3
    assert env.unwrapped.spec.kwargs["suite_kwargs"] == {"difficulty": "hard", "split": "test"}
    assert env.unwrapped.max_steps == agent_env.unwrapped.max_steps == 3
    env.close()
    agent_env.close()
    rows = evaluate_baselines(run, ["random", "oracle", "best-single"], episodes=4)
    assert set(rows) == {"random", "oracle"} | {
        k for k in rows if k.startswith("best-single (single:")
    }
    for summary in rows.values():
        assert summary["metrics"]["steps"]["mean"] <= 3  # the run's cap, not the id's 4
    assert evaluate_run(run, episodes=2, write=False)["metrics"]["steps"]["mean"] <= 3


def test_benchmark_baselines_play_the_learners_env(tmp_path):
    from poser_agents.benchmark import benchmark

    state = benchmark(
        ["random", "oracle"],
        seeds=1,
        episodes=3,
        out_dir=tmp_path / "b",
        hyperparams={"env_kwargs": {"max_steps": 2}},
        log=None,
    )
    for summary in state["rows"].values():
        assert summary["metrics"]["steps"]["mean"] <= 2  # the configured cap, not the id's 6
