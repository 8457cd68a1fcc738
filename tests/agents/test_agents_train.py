"""Training: run folder contents, callbacks' CSV files, determinism, resume, other algorithms."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import yaml

from poser_agents.callbacks import EPISODE_FIELDS, EXPERT_FIELDS, LOSS_FIELDS
from poser_agents.error import AgentsConfigError, RunFolderError, UnknownNameError
from poser_agents.train import load_agent, train


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_run_folder_holds_every_artefact(tiny_run):
    for name in (
        "model.zip",
        "replay_buffer.pkl",
        "meta.json",
        "config.yaml",
        "episodes.csv",
        "losses.csv",
        "experts.csv",
        "training_curves.png",
        "expert_rewards.png",
        "eval.json",
        "trajectories.png",
    ):
        assert (tiny_run / name).is_file(), name
    assert (
        any((tiny_run / "logs").glob("events.out.tfevents*"))
        and (tiny_run / "logs" / "progress.csv").is_file()
    )
    meta = json.loads((tiny_run / "meta.json").read_text())
    assert (
        meta["finished"] and meta["timesteps_done"] == 300 and meta["config"]["encoder"] == "hashed"
    )
    assert meta["versions"]["image-poser"] and meta["versions"]["stable_baselines3"]
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert cfg["algo"] == "dqn" and cfg["learning_rate"] == 1.0e-4  # shipped YAML value kept
    ev = json.loads((tiny_run / "eval.json").read_text())
    assert (
        ev["episodes"] == 4
        and ev["split"] == "test"
        and 0.0 <= ev["metrics"]["success"]["mean"] <= 1.0
    )


def test_callback_csv_files_are_consistent(tiny_run):
    eps = _rows(tiny_run / "episodes.csv")
    assert tuple(eps[0]) == EPISODE_FIELDS
    steps = [int(r[0]) for r in eps[1:]]
    assert steps == sorted(steps) and steps[-1] <= 300
    # Every env step is one episode step: the lengths add up to the last finished step.
    assert sum(int(r[3]) for r in eps[1:]) == steps[-1]
    losses = _rows(tiny_run / "losses.csv")
    assert tuple(losses[0]) == LOSS_FIELDS and len(losses) > 10
    assert all(int(r[0]) > 100 for r in losses[1:])  # no update before learning_starts
    experts = _rows(tiny_run / "experts.csv")
    assert tuple(experts[0]) == EXPERT_FIELDS
    assert sum(int(r[2]) for r in experts[1:]) == 300  # every call counted once


def test_same_seed_gives_the_same_curves(tmp_path, tiny):
    a = train("dqn", seed=3, run_dir=tmp_path / "a", hyperparams=tiny, evaluate=False)
    b = train("dqn", seed=3, run_dir=tmp_path / "b", hyperparams=tiny, evaluate=False)
    for name in ("episodes.csv", "losses.csv", "experts.csv"):
        assert (a / name).read_text() == (b / name).read_text(), name
    c = train("dqn", seed=4, run_dir=tmp_path / "c", hyperparams=tiny, evaluate=False)
    assert (a / "episodes.csv").read_text() != (c / "episodes.csv").read_text()


def test_subproc_workers_train_exactly_like_in_process_envs(tmp_path, tiny):
    tiny.update(n_envs=2, n_timesteps=200)
    a = train("dqn", seed=3, run_dir=tmp_path / "dummy", hyperparams=tiny, evaluate=False)
    b = train(
        "dqn",
        seed=3,
        run_dir=tmp_path / "subproc",
        hyperparams={**tiny, "vec_env": "subproc"},
        evaluate=False,
    )
    for name in ("episodes.csv", "losses.csv"):
        assert (a / name).read_text() == (b / name).read_text(), name
    # DummyVecEnv buffers rewards as float32, SubprocVecEnv as float64: per-expert reward
    # means may differ in the 8th digit.
    ea, eb = (np.genfromtxt(run / "experts.csv", delimiter=",", skip_header=1) for run in (a, b))
    assert ea.shape == eb.shape and np.allclose(ea, eb, rtol=0, atol=1e-6, equal_nan=True)
    assert "vec_env: subproc" in (b / "config.yaml").read_text()
    with pytest.raises(
        AgentsConfigError, match=r"vec_env must be one of \['dummy', 'subproc'\], got 'ray'"
    ):
        train(
            "dqn",
            seed=3,
            run_dir=tmp_path / "bad",
            hyperparams={**tiny, "vec_env": "ray"},
            evaluate=False,
        )


def test_resume_continues_to_the_new_budget(tmp_path, tiny):
    run = train("dqn", seed=0, run_dir=tmp_path / "r", hyperparams=tiny, evaluate=False)
    with pytest.raises(RunFolderError, match="already trained 300 of n_timesteps=300"):
        train(resume=run)
    with pytest.raises(AgentsConfigError, match="only accepts an n_timesteps override"):
        train(resume=run, hyperparams={"learning_rate": 1.0})
    train(resume=run, hyperparams={"n_timesteps": 450}, evaluate=False)
    meta = json.loads((run / "meta.json").read_text())
    assert (
        meta["timesteps_done"] >= 450 and meta["finished"]
    )  # DQN collects train_freq steps at a time
    steps = [int(r[0]) for r in _rows(run / "episodes.csv")[1:]]
    assert steps == sorted(steps) and steps[-1] > 300


def test_existing_run_folder_and_baseline_algo_are_refused(tiny_run, tiny):
    with pytest.raises(RunFolderError, match="already exists"):
        train("dqn", run_dir=tiny_run, hyperparams=tiny)
    with pytest.raises(AgentsConfigError, match="'oracle' is a baseline"):
        train("oracle")
    with pytest.raises(AgentsConfigError, match=r"Unknown env id 'ImagePoser-v9'"):
        train("dqn", env_id="ImagePoser-v9")


@pytest.mark.parametrize("algo", ["maskable_ppo", "qrdqn", "a2c"])
def test_other_algorithms_train_and_act_validly(tmp_path, algo):
    hp = {
        "n_timesteps": 128,
        "encoder": "hashed",
        "eval_episodes": 3,
        "policy_kwargs": {"net_arch": [16]},
        "log_window": 64,
    }
    if algo == "maskable_ppo":
        hp.update(n_steps=64, batch_size=32, n_epochs=1)
    if algo == "qrdqn":
        hp.update(
            learning_starts=32,
            buffer_size=500,
            batch_size=16,
            policy_kwargs={"net_arch": [16], "n_quantiles": 5},
        )
    run = train(algo, seed=0, run_dir=tmp_path / algo, hyperparams=hp)
    agent, env, _ = load_agent(run)
    obs, _ = env.reset(seed=0)
    a = agent.act(obs, env)
    assert env.unwrapped.action_masks()[a]  # greedy actions are restricted to valid ones


def test_agent_protocol_plugins_train(tmp_path, monkeypatch):
    (tmp_path / "my_agent.py").write_text(
        "import numpy as np\n"
        "class FirstValid:\n"
        "    name = 'first-valid'\n"
        "    def __init__(self, env, seed=0):\n        self.env, self.steps = env, 0\n"
        "    def learn(self, total_timesteps, callback=None):\n"
        "        obs, _ = self.env.reset(seed=0)\n"
        "        for _ in range(total_timesteps):\n"
        "            obs, r, te, tr, _ = self.env.step(self.act(obs, self.env)); self.steps += 1\n"
        "            if te or tr: obs, _ = self.env.reset()\n"
        "        return self\n"
        "    def act(self, observation, env):\n"
        "        return int(np.flatnonzero(env.unwrapped.action_masks())[0])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    run = train(
        "my_agent:FirstValid",
        seed=0,
        run_dir=tmp_path / "run",
        hyperparams={"n_timesteps": 20, "encoder": "hashed"},
        evaluate=False,
    )
    meta = json.loads((run / "meta.json").read_text())
    assert meta["kind"] == "agent" and meta["finished"]


def test_loaded_dqn_acts_greedily_and_deterministically(tiny_run):
    agent, env, info = load_agent(tiny_run)
    obs, _ = env.reset(seed=1)
    assert agent.act(obs, env) == agent.act(obs, env)
    assert info.seed == 0 and np.all(env.action_masks() == env.unwrapped.action_masks())


def test_text_image_state_trains_with_the_small_cnn(tmp_path, tiny):
    tiny.update(
        state="text+image",
        n_timesteps=150,
        policy_kwargs={"net_arch": [16], "features_extractor_class": "poser"},
    )
    run = train("dqn", seed=0, run_dir=tmp_path / "img", hyperparams=tiny)
    agent, env, _ = load_agent(run)
    assert "image" in env.observation_space.spaces
    extractor = agent.model.policy.q_net.features_extractor
    assert type(extractor).__name__ == "PoserExtractor"
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.action_masks()[agent.act(obs, env)]


def test_unknown_extractor_name_is_refused(tmp_path, tiny):
    tiny["policy_kwargs"] = {"features_extractor_class": "resnet"}
    with pytest.raises(
        UnknownNameError,
        match=r"Unknown features extractor 'resnet'\. Known features extractors: poser\.",
    ):
        train("dqn", seed=0, run_dir=tmp_path / "bad", hyperparams=tiny)


def test_ctrl_c_saves_a_usable_checkpoint_that_resumes(tmp_path, tiny):
    import os
    import signal

    from stable_baselines3.common.callbacks import BaseCallback

    class CtrlCAt(BaseCallback):
        """Sends SIGINT to this process at a fixed step (no timing involved)."""

        def __init__(self, step):
            super().__init__()
            self.step = step

        def _on_step(self):
            if self.num_timesteps == self.step:
                os.kill(os.getpid(), signal.SIGINT)
            return True

    run = train("dqn", seed=0, run_dir=tmp_path / "c", hyperparams=tiny, callbacks=[CtrlCAt(150)])
    meta = json.loads((run / "meta.json").read_text())
    assert meta["interrupted"] and not meta["finished"] and 150 <= meta["timesteps_done"] < 300
    assert (run / "model.zip").is_file() and (run / "replay_buffer.pkl").is_file()
    assert not (run / "eval.json").exists()  # an interrupted run is not evaluated
    agent, env, _ = load_agent(run)  # the checkpoint loads and acts
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.action_masks()[agent.act(obs, env)]
    train(resume=run, evaluate=False)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["finished"] and not meta["interrupted"] and meta["timesteps_done"] >= 300


def test_the_custom_algorithm_example_trains_logs_and_reloads(tmp_path, monkeypatch):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    monkeypatch.syspath_prepend(str(examples))
    run = train(
        "custom_algorithm:CommandBandit",
        seed=0,
        run_dir=tmp_path / "bandit",
        hyperparams={
            "n_timesteps": 300,
            "encoder": "hashed",
            "eval_episodes": 3,
            "log_window": 100,
            "epsilon": 0.3,
        },
    )
    # CallbackDriver fed poser's callbacks: the same curves as an SB3 run.
    eps = _rows(run / "episodes.csv")
    assert len(eps) > 10 and sum(int(r[3]) for r in eps[1:]) == int(eps[-1][0])
    assert sum(int(r[2]) for r in _rows(run / "experts.csv")[1:]) == 300
    assert (run / "training_curves.png").is_file() and (run / "eval.json").is_file()
    agent, env, _ = load_agent(run)
    assert type(agent).__name__ == "CommandBandit" and agent.count  # learned values reloaded


# ---------------------------------------------------------------------------- run folders under stress
def test_a_bad_hyperparameter_value_is_refused_and_leaves_no_run_folder(tmp_path, tiny):
    from poser_env.error import ArgumentTypeError

    tiny["learning_rate"] = "fast"
    with pytest.raises(
        ArgumentTypeError,
        match=r"Argument 'learning_rate' of dqn \(DQN\) must be a number or a callable, got str 'fast'",
    ):
        train("dqn", seed=0, run_dir=tmp_path / "fast", hyperparams=tiny)
    assert not (tmp_path / "fast").exists()  # nothing half-made left behind
    (tmp_path / "mine").mkdir()  # a folder the user made stays, empty
    with pytest.raises(ArgumentTypeError, match="learning_rate"):
        train("dqn", seed=0, run_dir=tmp_path / "mine", hyperparams=tiny)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == [".poser.lock"]


def test_a_run_folder_held_by_another_process_is_refused_at_once(tmp_path, tiny):
    from poser_agents.config import claim_run_folder
    from poser_agents.error import RunLockedError

    run = tmp_path / "held"
    claim = claim_run_folder(run)  # stands for another poser process writing it
    try:
        with pytest.raises(
            RunLockedError,
            match=rf"is being written by another poser process \(pid {os.getpid()}\)",
        ):
            train("dqn", seed=0, run_dir=run, hyperparams=tiny)
        with pytest.raises(RunLockedError, match="being written by another poser process"):
            train(resume=run)
    finally:
        claim.release()
    assert [p.name for p in run.iterdir()] == [".poser.lock"]  # the refused run wrote nothing


def test_a_run_folder_that_is_a_file_is_refused(tmp_path, tiny):
    from poser_env.error import OutputPathError

    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        train("dqn", seed=0, run_dir=tmp_path / "f", hyperparams=tiny)


KILL_SCRIPT = """
import os, signal, sys
from stable_baselines3.common.callbacks import BaseCallback
from poser_agents.train import train

class KillAt(BaseCallback):
    # SIGKILL at a fixed step: no handler runs, nothing is saved but the checkpoints.
    def _on_step(self):
        if self.num_timesteps == 250:
            os.kill(os.getpid(), signal.SIGKILL)
        return True

hp = dict(n_timesteps=300, encoder="hashed", learning_starts=100, buffer_size=1000, batch_size=16,
          target_update_interval=100, eval_episodes=4, log_window=100, policy_kwargs={"net_arch": [32, 32]},
          checkpoint_freq=100)
train("dqn", seed=0, run_dir=sys.argv[1], hyperparams=hp, callbacks=[KillAt()])
"""


def test_a_sigkilled_run_resumes_from_its_newest_checkpoint(tmp_path, capsys):
    import signal
    import subprocess
    import sys

    run = tmp_path / "killed"
    r = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(run)], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert (
        not (run / "model.zip").exists() and (run / "checkpoints" / "model_200_steps.zip").is_file()
    )
    with pytest.raises(
        RunFolderError,
        match=r"has no model.zip .* newest checkpoint is checkpoints/model_200_steps.zip",
    ):
        load_agent(run)
    train(resume=run, evaluate=False)  # the dead process's lock went with it
    assert "from checkpoint checkpoints/model_200_steps.zip (200 steps)" in capsys.readouterr().err
    meta = json.loads((run / "meta.json").read_text())
    assert meta["finished"] and meta["timesteps_done"] >= 300
    eps = _rows(run / "episodes.csv")
    assert tuple(eps[0]) == EPISODE_FIELDS and all(tuple(r) != EPISODE_FIELDS for r in eps[1:])
    steps = [int(r[0]) for r in eps[1:]]
    assert steps == sorted(steps)  # rows of the lost steps 201-250 were dropped, then rewritten
    numbers = [int(r[1]) for r in eps[1:]]
    assert numbers == list(range(1, len(numbers) + 1))
    agent, env, _ = load_agent(run)
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.action_masks()[agent.act(obs, env)]


def test_resume_without_any_saved_model_says_so(tmp_path, tiny):
    run = train("dqn", seed=0, run_dir=tmp_path / "r", hyperparams=tiny, evaluate=False)
    (run / "model.zip").unlink()
    with pytest.raises(
        RunFolderError, match="has no model.zip and no checkpoints/model_<steps>_steps.zip"
    ):
        train(resume=run, hyperparams={"n_timesteps": 400})


def test_a_corrupt_model_is_a_run_folder_error(tmp_path, tiny):
    run = train("dqn", seed=0, run_dir=tmp_path / "r", hyperparams=tiny, evaluate=False)
    (run / "model.zip").write_bytes(b"not a zip file")
    with pytest.raises(
        RunFolderError, match=r"Could not load the model .*model.zip.*wasn.t a zip-file"
    ):
        load_agent(run)
    with pytest.raises(RunFolderError, match="Could not load the model"):
        train(resume=run, hyperparams={"n_timesteps": 400})


def test_poser_train_with_the_diffusers_suite_in_its_yaml(tmp_path, tiny_suite_kwargs, capsys):
    """The training config's split reaches only suites that take one: the diffusers suite
    (which has none) trains, through the CLI, on the tiny models."""
    from poser_agents.cli import main

    suite_kwargs = {**tiny_suite_kwargs, "image_size": list(tiny_suite_kwargs["image_size"])}
    settings = {
        "n_timesteps": 6,
        "encoder": "hashed",
        "learning_starts": 3,
        "buffer_size": 50,
        "batch_size": 2,
        "train_freq": 1,
        "target_update_interval": 3,
        "eval_episodes": 1,
        "log_window": 3,
        "policy_kwargs": {"net_arch": [8]},
        "env_kwargs": {"suite": "diffusers", "suite_kwargs": suite_kwargs, "max_steps": 2},
    }
    file = tmp_path / "diffusers.yml"
    file.write_text(yaml.safe_dump({"default": settings}))
    run = tmp_path / "run"
    code = main(["train", "--hyperparams-file", str(file), "--run-dir", str(run), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    meta = json.loads((run / "meta.json").read_text())
    assert meta["finished"] and meta["timesteps_done"] == 6
    assert "split" not in meta["config"]["env_kwargs"]["suite_kwargs"]
    assert len(_rows(run / "episodes.csv")) > 1  # episodes ran with the tiny diffusion models
    assert json.loads((run / "eval.json").read_text())["episodes"] == 1
    agent, env, _ = load_agent(run)  # the run's env: the tiny models load and run
    obs, _ = env.reset(seed=0)
    _, _, _, _, info = env.step(agent.act(obs, env))
    assert info["error"] == "" and env.unwrapped.suite.name == "diffusers"
    assert env.unwrapped.suite.experts[0].loader.resident()  # a pipeline was loaded


def test_a_default_run_folder_taken_meanwhile_moves_on_to_the_next(tmp_path, monkeypatch):
    import poser_agents.train as train_module
    from poser_agents.config import claim_run_folder

    held = claim_run_folder(tmp_path / "dqn_s0")  # another process got there first
    picks = iter([tmp_path / "dqn_s0", tmp_path / "dqn_s0_2"])
    monkeypatch.setattr(train_module, "default_run_dir", lambda *a: next(picks))
    try:
        claim = train_module._claim_default_run_dir("dqn", "ImagePoser-v0", 0)
        assert claim.path == tmp_path / "dqn_s0_2"
        claim.release()
    finally:
        held.release()
