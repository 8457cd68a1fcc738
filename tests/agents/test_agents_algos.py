"""Algorithm registry, plug-ins by import path, hyperparameter files and run folders."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from poser_agents.algos import ALGOS, is_baseline, resolve_algo
from poser_agents.config import load_hyperparams, make_raw_env, parse_override, read_run
from poser_agents.error import AgentsConfigError, RunFolderError


def test_builtin_algorithms_resolve_to_their_classes():
    for name in ("dqn", "qrdqn", "a2c", "ppo", "maskable_ppo"):
        kind, spec = resolve_algo(name)
        assert (
            kind == "sb3"
            and spec.load().__name__.lower().replace("maskableppo", "maskable_ppo") == name
        )
    assert resolve_algo("single:count-master") == ("baseline", "single:count-master")
    assert is_baseline("best-single") and not is_baseline("dqn")


def test_unknown_algorithm_names_the_value_and_lists_valid_ones():
    with pytest.raises(
        AgentsConfigError,
        match=r"Unknown algorithm 'dqm'.*Did you mean 'dqn'.*qrdqn.*maskable_ppo.*oracle",
    ):
        resolve_algo("dqm")
    with pytest.raises(AgentsConfigError, match=r"cannot import module 'no_such_pkg.algo'"):
        resolve_algo("no_such_pkg.algo:Algo")
    with pytest.raises(AgentsConfigError, match=r"has no attribute 'DQNN'.*Did you mean 'DQN'"):
        resolve_algo("stable_baselines3:DQNN")


def test_plugins_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_algos.py").write_text(
        textwrap.dedent(
            """
            from stable_baselines3 import DQN

            class MyDQN(DQN):
                pass

            class MyAgent:
                name = "mine"
                def __init__(self, env, seed=0):
                    self.env = env
                def learn(self, total_timesteps, callback=None):
                    return self
                def act(self, observation, env):
                    return 0

            class Nothing:
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    kind, spec = resolve_algo("my_algos:MyDQN")
    assert kind == "sb3" and spec.load().__name__ == "MyDQN"
    kind, cls = resolve_algo("my_algos:MyAgent")
    assert kind == "agent" and cls.__name__ == "MyAgent"
    with pytest.raises(
        AgentsConfigError, match="neither SB3's learn\\(\\)/predict\\(\\) nor the Agent protocol"
    ):
        resolve_algo("my_algos:Nothing")
    sys.modules.pop("my_algos", None)


def test_hyperparams_merge_default_env_entry_and_overrides(tmp_path):
    from stable_baselines3 import DQN

    f = tmp_path / "dqn.yml"
    f.write_text(
        "default:\n  learning_rate: 0.001\n  batch_size: 32\nImagePoser-Easy-v0:\n  batch_size: 8\n"
    )
    p = load_hyperparams("dqn", "ImagePoser-Easy-v0", DQN, f, {"gamma": 0.9})
    assert p == {"learning_rate": 0.001, "batch_size": 8, "gamma": 0.9}
    assert load_hyperparams("dqn", "ImagePoser-v0", DQN, f)["batch_size"] == 32


def test_shipped_yaml_files_are_valid_for_their_algorithms():
    for name, spec in ALGOS.items():
        params = load_hyperparams(name, "ImagePoser-v0", spec.load())
        assert params["n_timesteps"] == 30_000 and params["state"] == "text"  # one budget for all
        if spec.off_policy:
            assert params["buffer_size"] <= 30_000  # memory stays bounded (see docs/training.md)


def test_unknown_yaml_key_names_it_and_lists_valid_keys(tmp_path):
    from stable_baselines3 import DQN

    f = tmp_path / "bad.yml"
    f.write_text("default:\n  learnin_rate: 0.001\n")
    with pytest.raises(
        AgentsConfigError,
        match=r"Unknown key\(s\) \['learnin_rate'\].*Did you mean 'learning_rate'.*DQN arguments.*buffer_size",
    ):
        load_hyperparams("dqn", "ImagePoser-v0", DQN, f)
    f.write_text("- just a list\n")
    with pytest.raises(AgentsConfigError, match="must map env ids"):
        load_hyperparams("dqn", "ImagePoser-v0", DQN, f)
    with pytest.raises(AgentsConfigError, match="does not exist"):
        load_hyperparams("dqn", "ImagePoser-v0", DQN, tmp_path / "missing.yml")


def test_parse_override_reads_yaml_values():
    assert parse_override("learning_rate=1e-3") == ("learning_rate", 1e-3)
    assert parse_override("policy_kwargs={net_arch: [64, 64]}") == (
        "policy_kwargs",
        {"net_arch": [64, 64]},
    )
    assert parse_override("encoder=hashed") == ("encoder", "hashed")
    with pytest.raises(AgentsConfigError, match="key=value"):
        parse_override("learning_rate")


def test_unknown_env_id_lists_the_imageposer_ids():
    with pytest.raises(
        AgentsConfigError,
        match=r"Unknown env id 'ImagePoser-v9'.*ImagePoser-Easy-v0.*ImagePoser-v0",
    ):
        make_raw_env("ImagePoser-v9")


def test_make_raw_env_merges_suite_kwargs_with_the_ids_own():
    env = make_raw_env("ImagePoser-Easy-v0", split="test")
    cfg = env.unwrapped.suite.tasks.config
    assert (cfg.difficulty, cfg.split) == ("easy", "test")
    assert env.unwrapped.max_steps == 4


def test_run_folders_are_checked(tmp_path, tiny_run):
    with pytest.raises(RunFolderError, match="does not exist"):
        read_run(tmp_path / "nope")
    with pytest.raises(RunFolderError, match="no meta.json"):
        read_run(tmp_path)
    meta = json.loads((tiny_run / "meta.json").read_text())
    meta["format_version"] = 99
    bad = tmp_path / "old"
    bad.mkdir()
    (bad / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RunFolderError, match=r"version 99.*reads 'poser-run' version 1"):
        read_run(bad)
    meta["format_version"] = 1
    (bad / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RunFolderError, match="no model.zip"):
        read_run(bad)
    assert read_run(tiny_run).algo == "dqn"


def test_a_builtin_algorithm_without_its_package_names_the_extra(monkeypatch):
    from poser_env.error import MissingDependencyError

    monkeypatch.setitem(sys.modules, "sb3_contrib", None)  # import now raises ImportError
    kind, spec = resolve_algo("qrdqn")
    with pytest.raises(
        MissingDependencyError,
        match=r"algorithm 'qrdqn' needs the package 'sb3_contrib'.*image-poser\[agents\]",
    ):
        spec.load()
