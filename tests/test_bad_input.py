"""Hostile input at every boundary a user reaches: suites, pools, the env, the cache,
wrappers, output paths, training configuration and both command lines.

Every case asserts the error's type and that its message names the bad argument (and,
where there is one, the fix). CLI cases also assert exit code 2 and a one-line message
without a traceback. The failures listed in issue 10 are all among them.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import poser_env  # noqa: F401 - registers the ids
from poser_agents.error import RunFolderError
from poser_env.error import (
    ArgumentTypeError,
    CacheError,
    ConfigError,
    OutputPathError,
    PromptParseError,
    UnknownArgumentError,
    UnknownNameError,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: name -> (callable taking tmp_path, expected exception type, regex the message must match)
CASES: dict[str, tuple[Callable[[Path], Any], type[BaseException], str]] = {}


def case(name: str, exc: type[BaseException], match: str):
    def register(fn: Callable[[Path], Any]):
        assert name not in CASES, name
        CASES[name] = (fn, exc, match)
        return fn

    return register


def _suite(**kw):
    from poser_env.suites import make_suite

    return make_suite("shapes", **kw)


def _make(**kw):
    return gym.make("ImagePoser-v0", **kw)


# ---------------------------------------------------------------------------- suites
case("suite: unknown name", UnknownNameError, r"Unknown suite 'shape'\. Did you mean 'shapes'\?")(
    lambda p: __import__("poser_env.suites", fromlist=["make_suite"]).make_suite("shape")
)
case(
    "suite: kwargs typo",
    UnknownArgumentError,
    r"Unknown argument 'difficulti' for suite 'shapes'\. Did you mean 'difficulty'\? "
    r"Valid arguments: .*editing_fraction",
)(lambda p: _suite(difficulti="easy"))
case(
    "suite: wrong type (int for str)",
    ArgumentTypeError,
    r"Argument 'difficulty' of suite 'shapes' must be a string, got int 3",
)(lambda p: _suite(difficulty=3))
case(
    "suite: wrong type (str for bool)",
    ArgumentTypeError,
    r"Argument 'reflect' of suite 'shapes' must be a bool, got str 'no'",
)(lambda p: _suite(reflect="no"))
case(
    "suite: wrong type (str for number)",
    ArgumentTypeError,
    r"Argument 'editing_fraction' .* must be a number, got str 'half'",
)(lambda p: _suite(editing_fraction="half"))
case("suite: unknown difficulty", ConfigError, r"difficulty must be one of .*got 'impossible'")(
    lambda p: _suite(difficulty="impossible")
)
case("suite: unknown split", ConfigError, r"split must be one of .*got 'validation'")(
    lambda p: _suite(split="validation")
)
case(
    "suite: diffusers has no split",
    UnknownArgumentError,
    r"Unknown argument 'split' for suite 'diffusers'\. Valid arguments: .*memory_budget_gb",
)(
    lambda p: __import__("poser_env.suites", fromlist=["make_suite"]).make_suite(
        "diffusers", split="train"
    )
)
case(
    "suite: diffusers wrong type",
    ArgumentTypeError,
    r"Argument 'memory_budget_gb' of suite 'diffusers' must be a number or None, got str 'lots'",
)(
    lambda p: __import__("poser_env.suites", fromlist=["make_suite"]).make_suite(
        "diffusers", memory_budget_gb="lots"
    )
)
case("suite: empty registry name", ConfigError, r"Suite name must be a non-empty string, got ''")(
    lambda p: __import__("poser_env.suites", fromlist=["register_suite"]).register_suite("", "a:b")
)
case(
    "suite: experts given as one string",
    ConfigError,
    r"experts must be a list of expert names, got 'restyler'",
)(lambda p: _suite().select_experts("restyler"))
case(
    "suite: unknown expert",
    UnknownNameError,
    r"Unknown expert 'restyle'\. Did you mean 'restyler'\?",
)(lambda p: _suite().select_experts(["restyle"]))


# ---------------------------------------------------------------------------- pools
def _pool(*a, **kw):
    from poser_env.pools import make_pool

    return make_pool(*a, **kw)


case("pool: unknown name", UnknownNameError, r"Unknown pool 'rey'\. Did you mean 'ray'\?")(
    lambda p: _pool("rey")
)
case(
    "pool: local with pool_kwargs",
    UnknownArgumentError,
    r"Unknown argument 'address' for pool 'local'.*belong to pool='ray'",
)(lambda p: _pool("local", address="auto"))
case(
    "pool: ray kwargs typo",
    UnknownArgumentError,
    r"Unknown argument 'adress' for pool 'ray' \(pool_kwargs\)\. Did you mean 'address'\?",
)(lambda p: _pool("ray", adress="auto"))
case(
    "pool: ray wrong type",
    ArgumentTypeError,
    r"Argument 'timeout_s' of pool 'ray' \(pool_kwargs\) must be a number, got str '5'",
)(lambda p: _pool("ray", timeout_s="5"))
case(
    "pool: ray float for int",
    ArgumentTypeError,
    r"Argument 'max_retries' .* must be an int, got float 1\.5",
)(lambda p: _pool("ray", max_retries=1.5))
case(
    "pool: not a name",
    ConfigError,
    r"pool must be a registered pool name or an ExpertPool, got int",
)(lambda p: _pool(42))
case(
    "pool: instance plus pool_kwargs",
    ConfigError,
    r"pool_kwargs only apply to a pool given by name",
)(
    lambda p: _pool(
        __import__("poser_env.pools.base", fromlist=["LocalPool"]).LocalPool(), address="auto"
    )
)
case("pool: empty registry name", ConfigError, r"Pool name must be a non-empty string")(
    lambda p: __import__("poser_env.pools.registration", fromlist=["register_pool"]).register_pool(
        "", "a:b"
    )
)


# ---------------------------------------------------------------------------- env
case(
    "env: suite_kwargs typo via gym.make",
    UnknownArgumentError,
    r"Unknown argument 'difficulti' for suite 'shapes'",
)(lambda p: _make(suite_kwargs={"difficulti": "easy"}))
case(
    "env: pool_kwargs for the local pool",
    UnknownArgumentError,
    r"Unknown argument 'address' for pool 'local'",
)(lambda p: _make(pool_kwargs={"address": "auto"}))
case("env: max_steps 0", ConfigError, r"max_steps must be an integer >= 1, got 0")(
    lambda p: _make(max_steps=0)
)
case("env: max_attempts negative", ConfigError, r"max_attempts must be an integer >= 1, got -1")(
    lambda p: _make(max_attempts=-1)
)
case(
    "env: text_max_length too small",
    ConfigError,
    r"text_max_length must be an integer >= 16, got 4",
)(lambda p: _make(text_max_length=4))
case("env: image_size too small", ConfigError, r"image_size must be \(height, width\)")(
    lambda p: _make(image_size=(4, 4))
)
case(
    "env: render_mode human (constructor)",
    ConfigError,
    r"render_mode must be None or one of \['rgb_array'\], got 'human'",
)(lambda p: poser_env.ImagePoserEnv(render_mode="human"))
case(
    "env: suite not a name",
    ConfigError,
    r"suite must be a registered suite name or a Suite, got int",
)(lambda p: _make(suite=3))
case("env: unknown expert", UnknownNameError, r"Unknown expert 'nope'")(
    lambda p: _make(experts=["nope"])
)
case("env: keep_best as a string", ConfigError, r"keep_best must be True or False, got 'False'")(
    lambda p: _make(keep_best="False")
)
case("env: unknown reward field", ConfigError, r"Unknown reward field\(s\) \['bogus'\]")(
    lambda p: _make(reward={"bogus": 1})
)
case(
    "env: cache of the wrong type",
    ConfigError,
    r"cache must be a directory path or a GenerationCache, got int",
)(lambda p: _make(cache=42))
case("env: unknown reset option", ConfigError, r"Unknown reset option\(s\) \['promt'\]")(
    lambda p: _make().reset(seed=0, options={"promt": "x"})
)
case("env: prompt not a string", ConfigError, r"options\['prompt'\] must be a string, got int")(
    lambda p: _make().reset(seed=0, options={"prompt": 5})
)
case("env: image without prompt", ConfigError, r"options\['image'\] needs options\['prompt'\]")(
    lambda p: _make().reset(seed=0, options={"image": np.zeros((64, 64, 3), np.uint8)})
)
case(
    "env: source image of the wrong shape",
    ConfigError,
    r"must be a \(\d+, \d+, 3\) uint8 numpy array",
)(
    lambda p: _make().reset(
        seed=0,
        options={"prompt": "Make the background striped.", "image": np.zeros((5, 5), np.uint8)},
    )
)
case("env: unparseable prompt", PromptParseError, r"Could not parse 'draw a purple elephant'")(
    lambda p: _make().reset(seed=0, options={"prompt": "Draw a purple elephant"})
)


def _step(action):
    env = _make()
    env.reset(seed=0)
    return env.unwrapped.step(action)


case(
    "env: action out of range",
    gym.error.InvalidAction,
    r"Action 99 is not in the action space Discrete",
)(lambda p: _step(99))
case(
    "env: action that is a bool", gym.error.InvalidAction, r"Action True is not in the action space"
)(lambda p: _step(True))
case("env: step before reset", gym.error.ResetNeeded, r"Call reset\(\) before step\(\)")(
    lambda p: _make().unwrapped.step(0)
)
case("env: Task of an unknown kind", ConfigError, r"Task\.kind must be one of .*got 'banana'")(
    lambda p: __import__("poser_env.components", fromlist=["Task"]).Task(prompt="x", kind="banana")
)


def _reset_with_a_failing_extractor(p):
    from dataclasses import replace

    from poser_env.components import CommandExtractor

    class Broken(CommandExtractor):
        name = "broken"

        def extract(self, prompt, image=None):
            raise RuntimeError("model server down")

        def reflect(self, command, critique):
            return None

    env = gym.make("ImagePoser-v0", suite=replace(_suite(), extractor=Broken()))
    return env.reset(seed=0)


case(
    "env: extractor failing in reset",
    __import__("poser_env.error", fromlist=["x"]).ComponentError,
    r"extractor 'broken' failed: RuntimeError: model server down",
)(_reset_with_a_failing_extractor)


def _diffusers(**kw):
    pytest.importorskip("diffusers")  # the suite needs the models extra
    from poser_env.suites import make_suite

    return make_suite("diffusers", **kw)


case(
    "diffusers: device tpu",
    ConfigError,
    r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'",
)(lambda p: _diffusers(device="tpu"))
case(
    "diffusers: ExpertSpec override typo",
    UnknownArgumentError,
    r"Unknown argument 'stepz' for ExpertSpec 'sd3\.5-medium' overrides\. Did you mean 'steps'\?",
)(lambda p: _diffusers(overrides={"sd3.5-medium": {"stepz": 20}}))
case(
    "diffusers: override of an unknown expert",
    UnknownNameError,
    r"Unknown expert 'sd3\.5-mediun'\. Did you mean 'sd3\.5-medium'\?",
)(lambda p: _diffusers(overrides={"sd3.5-mediun": {"steps": 20}}))
case(
    "diffusers: unknown critic", UnknownNameError, r"Unknown critic 'vlmm'\. Did you mean 'vlm'\?"
)(lambda p: _diffusers(critic="vlmm"))
case(
    "diffusers: unknown extractor",
    UnknownNameError,
    r"Unknown extractor 'rulez'\. Did you mean 'rules'\?",
)(lambda p: _diffusers(extractor="rulez"))
case(
    "diffusers: image_size too small",
    ConfigError,
    r"image_size must be \(height, width\) with sides >= 8, got \(4, 4\)",
)(lambda p: _diffusers(image_size=(4, 4)))


def _spec_typo(p):
    from poser_env.suites.diffusers.models import DEFAULT_CATALOG, ExpertSpec

    return ExpertSpec.from_dict({**DEFAULT_CATALOG[0].to_dict(), "stepz": 3})


case(
    "diffusers: ExpertSpec field typo",
    UnknownArgumentError,
    r"Unknown argument 'stepz' for ExpertSpec .*Did you mean 'steps'\?",
)(_spec_typo)


# Component outputs are checked inside step(): a bad one truncates the step like a failing
# component (it cannot raise into an RL library's rollout loop). These cases assert the
# truncation, the culprit, and that the message names the bad value.
def _nan_cost(r):
    return r.__class__(r.image, float("nan"), r.meta)


def _negative_cost(r):
    return r.__class__(r.image, -3.0, r.meta)


def _tiny_image(r):
    return r.__class__(np.zeros((3, 3, 3), np.uint8), r.cost, r.meta)


def _nan_alignment(c):
    from dataclasses import replace

    return replace(c, alignment=float("nan"))


def _overall_above_one(c):
    from dataclasses import replace

    return replace(c, overall=1.5)


COMPONENT_OUTPUTS = {
    "expert cost NaN": (
        "expert",
        _nan_cost,
        None,
        r"returned cost nan; expected a finite number >= 0",
    ),
    "expert cost negative": (
        "expert",
        _negative_cost,
        None,
        r"returned cost -3\.0; expected a finite number >= 0",
    ),
    "expert image of the wrong shape": ("expert", _tiny_image, None, r"\(3, 3, 3\)"),
    "critic alignment NaN": (
        "critic",
        None,
        _nan_alignment,
        r"returned alignment=nan; expected a finite number in \[0, 1\]",
    ),
    "critic overall above 1": (
        "critic",
        None,
        _overall_above_one,
        r"returned overall=1\.5; expected a finite number in \[0, 1\]",
    ),
}


@pytest.mark.parametrize("name", sorted(COMPONENT_OUTPUTS))
def test_a_bad_component_output_truncates_the_step_and_names_the_value(name):
    import re
    from dataclasses import replace

    from poser_env.components import Critic, Expert

    component, expert_fn, critic_fn, match = COMPONENT_OUTPUTS[name]
    suite = _suite()

    class Bad(Expert):
        def __init__(self, inner):
            self.inner, self.name, self.kind, self.cost = inner, inner.name, inner.kind, inner.cost
            self.description = getattr(inner, "description", "")

        def __call__(self, command, image, seed):
            result = self.inner(command, image, seed)
            return expert_fn(result) if expert_fn else result

    class BadCritic(Critic):
        name = "shapes-critic"

        def judge(self, image, command, prompt_constraints):
            critique = suite.critic.judge(image, command, prompt_constraints)
            return (
                critic_fn(critique) if critic_fn and command is not None else critique
            )  # the steps', not reset's

    env = gym.make(
        "ImagePoser-v0",
        suite=replace(suite, experts=tuple(Bad(e) for e in suite.experts), critic=BadCritic()),
    )
    obs, _ = env.reset(seed=0)
    action = int(np.flatnonzero(env.unwrapped.action_masks())[0])
    obs, reward, terminated, truncated, info = env.step(action)
    assert truncated and not terminated
    assert info["error_component"] == component
    assert "ComponentOutputError" in info["error"] and re.search(match, info["error"]), info[
        "error"
    ]
    assert np.isfinite(reward) and env.observation_space.contains(obs)


def test_a_10_mb_prompt_gives_a_short_error_naming_the_prompt():
    env = _make()
    with pytest.raises(
        PromptParseError, match=r"in prompt 'x+'\.\.\. \[\d+ characters cut\]"
    ) as info:
        env.reset(seed=0, options={"prompt": "x" * 10_000_000})
    assert len(str(info.value)) < 2_000


# ---------------------------------------------------------------------------- cache
def _cache(path, **kw):
    from poser_env.cache import GenerationCache

    return GenerationCache(path, **kw)


def _file(p: Path) -> Path:
    f = p / "a-file"
    f.write_text("x")
    return f


case(
    "cache: path is a file", CacheError, r"Cache directory '.*a-file' is a file; give a folder path"
)(lambda p: _cache(_file(p)))
case("cache: folder under a file", CacheError, r"Cannot create the cache directory '.*a-file/sub'")(
    lambda p: _cache(_file(p) / "sub")
)
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="/proc: a folder no one can create files in"
)


@linux_only
def test_an_unwritable_cache_folder_and_export_path_even_for_root():
    from poser_env.cache import export_transitions

    with pytest.raises(CacheError, match=r"Cannot create the cache directory '/proc/poser-cache'"):
        _cache("/proc/poser-cache")
    with pytest.raises(
        OutputPathError,
        match=r"export path \(a Parquet file\) '/proc/x\.parquet' cannot be written: "
        r"files cannot be created in '/proc'",
    ):
        export_transitions("/unused", "/proc/x.parquet")


case(
    "cache: max_bytes 0",
    ConfigError,
    r"max_bytes must be a positive integer number of bytes, got 0",
)(lambda p: _cache(p, max_bytes=0))
case(
    "cache: max_bytes bool",
    ConfigError,
    r"max_bytes must be a positive integer number of bytes, got True",
)(lambda p: _cache(p, max_bytes=True))
case("cache: timeout_s 0", ConfigError, r"timeout_s must be > 0 seconds, got 0")(
    lambda p: _cache(p, timeout_s=0)
)
case(
    "cache: as_cache of an int",
    ConfigError,
    r"cache must be a directory path or a GenerationCache, got int",
)(lambda p: __import__("poser_env.cache", fromlist=["as_cache"]).as_cache(42))


def _export(p: Path, out, fmt="parquet"):
    from poser_env.cache import export_transitions

    _cache(p / "c").close()
    return export_transitions(p / "c", out, format=fmt)


case("cache: unknown export format", ConfigError, r"Unknown export format 'csv'")(
    lambda p: _export(p, p / "x.csv", "csv")
)
case(
    "cache: export to a folder", OutputPathError, r"export path \(a Parquet file\) '.*' is a folder"
)(lambda p: _export(p, p))
case(
    "cache: export under a file",
    OutputPathError,
    r"export path .* cannot be written: '.*a-file' is a file, not a folder",
)(lambda p: _export(p, _file(p) / "x.parquet"))
case(
    "cache: dataset export to a file",
    OutputPathError,
    r"export path \(a dataset folder\) '.*a-file' is a file",
)(lambda p: _export(p, _file(p), "datasets"))


def test_a_read_only_cache_database_serves_its_hits(tmp_path, monkeypatch):
    store = _cache(tmp_path)
    store.put("k", "expert", "x", {"cost": 1.0}, np.zeros((4, 4, 3), np.uint8))
    store.close()
    _patch_read_only(monkeypatch)
    with pytest.warns(UserWarning, match=r"database cannot be written .* served read-only"):
        ro = _cache(tmp_path)
    assert ro.read_only and ro.get("k") is not None  # a hit, not "a read failed"
    ro.put("k2", "expert", "x", {"cost": 1.0})  # skipped, no error
    assert ro.get("k2") is None
    with pytest.raises(CacheError, match=r"Cannot clear the cache .* read-only"):
        ro.clear()


def _patch_read_only(monkeypatch):
    """Every plain ``sqlite3.connect`` of the cache opens its file read-only (mode=ro), as a
    read-only file, folder or mount does: the test holds when run as root, whom permission
    bits do not stop."""
    import poser_env.cache as cache_module

    real = sqlite3.connect

    def connect(path, *args, **kwargs):
        if kwargs.get("uri"):
            return real(path, *args, **kwargs)
        return real(f"{Path(path).absolute().as_uri()}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(cache_module.sqlite3, "connect", connect)


def test_an_unwritable_cache_folder_is_a_cache_error_without_a_false_moved_aside_warning(
    tmp_path, monkeypatch
):
    import warnings

    _patch_read_only(monkeypatch)  # no database yet, and none can be created
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in particular no "moved to ...corrupt" warning
        with pytest.raises(
            CacheError, match=r"Cannot create the cache database in '.*' .*not writable"
        ):
            _cache(tmp_path)
    assert not list(tmp_path.glob("*.corrupt-*"))


@pytest.mark.skipif(
    sys.platform == "win32"
    or not hasattr(__import__("os"), "geteuid")
    or __import__("os").geteuid() == 0,
    reason="permission bits do not bind root",
)
def test_a_chmod_read_only_cache_folder(tmp_path):
    store = _cache(tmp_path)
    store.put("k", "expert", "x", {"cost": 1.0}, np.zeros((4, 4, 3), np.uint8))
    store.close()
    for f in tmp_path.iterdir():
        f.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.warns(UserWarning, match="served read-only"):
            ro = _cache(tmp_path)
        assert ro.get("k") is not None
    finally:
        tmp_path.chmod(0o755)


# ---------------------------------------------------------------------------- wrappers (encoders)
def _encoded(**kw):
    from poser_agents.wrappers import EncodeObservation

    return EncodeObservation(_make(), **kw)


case("wrapper: unknown state preset", ConfigError, r"Unknown state preset 'foo'")(
    lambda p: _encoded(state="foo", encoder="hashed")
)
case("wrapper: unknown encoder", ConfigError, r"Unknown text encoder 'nope'")(
    lambda p: _encoded(encoder="nope")
)
case(
    "wrapper: encoder kwargs typo",
    UnknownArgumentError,
    r"Unknown argument 'dimm' for encoder 'hashed'\. Did you mean 'dim'\? Valid arguments: bigrams",
)(lambda p: _encoded(encoder="hashed", encoder_kwargs={"dimm": 3}))


# ---------------------------------------------------------------------------- output paths
def _out(path, **kw):
    from poser_env.paths import check_output_file

    return check_output_file(path, "--out", **kw)


case(
    "paths: output file is a folder", OutputPathError, r"--out '.*' is a folder; give a file path"
)(lambda p: _out(p))
case(
    "paths: output extension",
    OutputPathError,
    r"--out '.*x\.txt' has extension '\.txt'; expected one of: \.png",
)(lambda p: _out(p / "x.txt", suffixes=[".png"]))
case(
    "paths: output folder is a file",
    OutputPathError,
    r"--out '.*a-file' is a file; give a folder path",
)(
    lambda p: __import__("poser_env.paths", fromlist=["check_output_dir"]).check_output_dir(
        _file(p), "--out"
    )
)


# ---------------------------------------------------------------------------- training configuration (API)
def _agents(name):
    pytest.importorskip("stable_baselines3")
    return __import__(f"poser_agents.{name}", fromlist=["x"])


case(
    "config: override without '='",
    ConfigError,
    r"override must look like key=value, got 'learning_rate'",
)(lambda p: _agents("config").parse_override("learning_rate"))
case(
    "config: unknown hyperparameter",
    ConfigError,
    r"Unknown key\(s\) \['n_timestep'\].*Did you mean 'n_timesteps'\?",
)(
    lambda p: _agents("config").load_hyperparams(
        "dqn", "ImagePoser-v0", __import__("stable_baselines3").DQN, None, {"n_timestep": 1}
    )
)
case(
    "config: env_kwargs typo",
    UnknownArgumentError,
    r"Unknown argument 'max_step' for env 'ImagePoser-v0' \(env_kwargs\)\. Did you mean 'max_steps'\?",
)(lambda p: _agents("config").env_make_kwargs("ImagePoser-v0", {"max_step": 3}))
case(
    "config: env_kwargs wrong type",
    ArgumentTypeError,
    r"Argument 'keep_best' of env 'ImagePoser-v0' \(env_kwargs\) must be a bool, got str 'False'",
)(lambda p: _agents("config").env_make_kwargs("ImagePoser-v0", {"keep_best": "False"}))
case("config: env_kwargs not a mapping", ConfigError, r"env_kwargs must be a mapping")(
    lambda p: _agents("config").env_make_kwargs("ImagePoser-v0", [1])
)
case("config: suite_kwargs not a mapping", ConfigError, r"suite_kwargs must be a mapping")(
    lambda p: _agents("config").env_make_kwargs("ImagePoser-v0", {"suite_kwargs": "easy"})
)
case("config: unknown env id", ConfigError, r"Unknown env id 'ImagePoser-v9'")(
    lambda p: _agents("config").check_env_id("ImagePoser-v9")
)
case(
    "config: unknown baseline",
    ConfigError,
    r"Unknown baseline 'orcale' in --compare\. Did you mean 'oracle'\?",
)(lambda p: _agents("evaluate").check_baselines(["orcale"]))
case("config: unknown algorithm", ConfigError, r"Unknown algorithm 'dqm'.*Did you mean 'dqn'\?")(
    lambda p: _agents("algos").resolve_algo("dqm")
)
case("config: run folder missing", RunFolderError, r"Run folder '.*missing' does not exist")(
    lambda p: _agents("config").read_run(p / "missing")
)
case(
    "config: run folder without meta.json",
    RunFolderError,
    r"is not a poser run folder: it has no meta\.json",
)(lambda p: _agents("config").read_run(p))


def _bad_meta(p: Path):
    (p / "meta.json").write_text("{not json")
    return _agents("config").read_run(p)


case("config: meta.json not JSON", RunFolderError, r"meta\.json is not valid JSON")(_bad_meta)


def _meta_without_config(p: Path):
    (p / "meta.json").write_text(
        json.dumps(
            {
                "format": "poser-run",
                "format_version": 1,
                "algo": "dqn",
                "env_id": "ImagePoser-v0",
                "seed": 0,
            }
        )
    )
    return _agents("config").read_run(p)


case(
    "config: meta.json without config",
    RunFolderError,
    r"meta\.json lacks config; it was edited or damaged",
)(_meta_without_config)
case(
    "config: run folder is a file",
    OutputPathError,
    r"Run folder '.*a-file' is a file, not a folder",
)(lambda p: _agents("config").claim_run_folder(_file(p)))
case("config: threads 0", ConfigError, r"threads must be an integer >= 1 .*got 0")(
    lambda p: _agents("train").train(threads=0, run_dir=p / "t")
)
case("config: negative seed", ConfigError, r"seed must be an integer >= 0, got -1")(
    lambda p: _agents("train").train(seed=-1, run_dir=p / "s")
)
case("config: benchmark seeds 0", ConfigError, r"seeds must be >= 1, got 0")(
    lambda p: _agents("benchmark").benchmark(["random"], seeds=0, out_dir=p)
)
case(
    "config: benchmark output is a file",
    OutputPathError,
    r"benchmark output folder '.*a-file' is a file",
)(lambda p: _agents("benchmark").benchmark(["random"], seeds=1, out_dir=_file(p)))
case("config: zero episodes", ConfigError, r"episodes must be an integer >= 1, got 0")(
    lambda p: _agents("evaluate").run_episodes(None, _make(), 0)
)
case("config: logger window 0", ConfigError, r"window must be an integer >= 1, got 0")(
    lambda p: _agents("callbacks").PoserLogger(p, window=0)
)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_with_a_message_naming_it(name, tmp_path):
    fn, exc, match = CASES[name]
    with pytest.raises(exc, match=match):
        fn(tmp_path)


# ---------------------------------------------------------------------------- the command lines
def _poser_main(argv):
    pytest.importorskip("stable_baselines3")
    from poser_agents.cli import main

    return main(argv)


def _env_main(argv):
    from poser_env.__main__ import main

    return main(argv)


def _fake_run(p: Path, model: bytes = b"not a zip file") -> str:
    """A run folder whose meta.json is valid and whose model.zip is garbage."""
    run = p / "run"
    run.mkdir()
    config = {
        "state": "text",
        "encoder": "hashed",
        "encoder_kwargs": {},
        "env_kwargs": {},
        "masked_eval": True,
    }
    meta = {
        "format": "poser-run",
        "format_version": 1,
        "algo": "dqn",
        "env_id": "ImagePoser-v0",
        "seed": 0,
        "config": config,
    }
    (run / "meta.json").write_text(json.dumps(meta))
    (run / "model.zip").write_bytes(model)
    return str(run)


#: name -> (main, argv builder from tmp_path, regex the one error line must match)
CLI_CASES: dict[str, tuple[Callable, Callable[[Path], list[str]], str]] = {
    "poser train --threads 0": (
        _poser_main,
        lambda p: ["train", "--threads", "0"],
        r"argument --threads: expected an integer >= 1, got 0",
    ),
    "poser train learning_rate=fast": (
        _poser_main,
        lambda p: [
            "train",
            "--run-dir",
            str(p / "r"),
            "--hyperparams",
            "learning_rate=fast",
            "encoder=hashed",
        ],
        r"Argument 'learning_rate' of dqn \(DQN\) must be a number or a callable, got str 'fast'",
    ),
    "poser train hyperparameter typo": (
        _poser_main,
        lambda p: ["train", "--run-dir", str(p / "r"), "--hyperparams", "n_timestep=10"],
        r"Unknown key\(s\) \['n_timestep'\].*Did you mean 'n_timesteps'",
    ),
    "poser train env_kwargs typo": (
        _poser_main,
        lambda p: [
            "train",
            "--run-dir",
            str(p / "r"),
            "--hyperparams",
            "env_kwargs={max_step: 3}",
            "encoder=hashed",
        ],
        r"Unknown argument 'max_step' for env 'ImagePoser-v0' \(env_kwargs\)",
    ),
    "poser train unknown algo": (
        _poser_main,
        lambda p: ["train", "--algo", "dqm", "--run-dir", str(p / "r")],
        r"Unknown algorithm 'dqm'",
    ),
    "poser train run dir is a file": (
        _poser_main,
        lambda p: ["train", "--run-dir", str(_file(p))],
        r"Run folder '.*a-file' is a file",
    ),
    "poser evaluate missing run": (
        _poser_main,
        lambda p: ["evaluate", str(p / "missing")],
        r"Run folder '.*missing' does not exist",
    ),
    "poser evaluate corrupt model.zip": (
        _poser_main,
        lambda p: ["evaluate", _fake_run(p)],
        r"Could not load the model '.*model\.zip'",
    ),
    "poser evaluate unknown baseline": (
        _poser_main,
        lambda p: ["evaluate", _fake_run(p), "--compare", "random,orcale"],
        r"Unknown baseline 'orcale' in --compare\. Did you mean 'oracle'",
    ),
    "poser evaluate --episodes 0": (
        _poser_main,
        lambda p: ["evaluate", "x", "--episodes", "0"],
        r"argument --episodes: expected an integer >= 1, got 0",
    ),
    "poser run --image not an image": (
        _poser_main,
        lambda p: [
            "run",
            "x",
            "--prompt",
            "Make it striped.",
            "--image",
            str(_file(p)),
            "--out",
            str(p / "o.png"),
        ],
        r"--image '.*a-file' is not an image Pillow can read",
    ),
    "poser run --image missing": (
        _poser_main,
        lambda p: [
            "run",
            "x",
            "--prompt",
            "Make it striped.",
            "--image",
            str(p / "none.png"),
            "--out",
            str(p / "o.png"),
        ],
        r"--image '.*none\.png' does not exist",
    ),
    "poser run --out is a folder": (
        _poser_main,
        lambda p: ["run", "x", "--prompt", "Draw a red circle.", "--out", str(p)],
        r"--out '.*' is a folder",
    ),
    "poser run --out not an image type": (
        _poser_main,
        lambda p: ["run", "x", "--prompt", "Draw a red circle.", "--out", str(p / "o.txt")],
        r"--out '.*o\.txt' has extension '\.txt'",
    ),
    "poser benchmark --out is a file": (
        _poser_main,
        lambda p: ["benchmark", "--algos", "random", "--out", str(_file(p))],
        r"--out '.*a-file' is a file",
    ),
    "poser benchmark --seeds": (
        _poser_main,
        lambda p: ["benchmark", "--algos", "random", "--seeds", "a,b"],
        r"argument --seeds: expected a count or a comma-separated list of integers, got 'a,b'",
    ),
    "poser_env demo --out is a folder": (
        _env_main,
        lambda p: ["demo", "--out", str(p)],
        r"--out '.*' is a folder",
    ),
    "poser_env demo --out under a file": (
        _env_main,
        lambda p: ["demo", "--out", str(_file(p) / "x.png")],
        r"--out '.*x\.png' cannot be written: '.*a-file' is a file",
    ),
    "poser_env demo bad prompt": (
        _env_main,
        lambda p: ["demo", "--prompt", "Draw a purple elephant", "--out", str(p / "d.png")],
        r"Could not parse 'draw a purple elephant'",
    ),
    "poser_env demo --seed": (
        _env_main,
        lambda p: ["demo", "--seed", "x"],
        r"argument --seed: invalid int value: 'x'",
    ),
    "poser_env experts unknown suite": (
        _env_main,
        lambda p: ["experts", "--suite", "shape"],
        r"Unknown suite 'shape'\. Did you mean 'shapes'",
    ),
    "poser_env cache export to a folder": (
        _env_main,
        lambda p: (
            _cache(p / "c").close(),
            ["cache", "export", "--dir", str(p / "c"), "--out", str(p)],
        )[1],
        r"--out '.*' is a folder",
    ),
}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_cli_errors_are_one_line_with_exit_code_2(name, tmp_path, capsys):
    main, argv, match = CLI_CASES[name]
    try:
        code = main(argv(tmp_path))
    except SystemExit as e:  # argparse usage errors
        code = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, err
    import re

    assert re.search(match, errors[0]), errors[0]


def test_a_failed_train_leaves_no_run_folder(tmp_path, capsys):
    assert (
        _poser_main(
            [
                "train",
                "--run-dir",
                str(tmp_path / "r"),
                "--hyperparams",
                "learning_rate=fast",
                "encoder=hashed",
            ]
        )
        == 2
    )
    assert not (tmp_path / "r").exists()


def test_verbose_prints_the_traceback(tmp_path, capsys):
    assert (
        _env_main(
            [
                "--verbose",
                "demo",
                "--prompt",
                "Draw a purple elephant",
                "--out",
                str(tmp_path / "d.png"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "Traceback" in err and "PromptParseError" in err


def test_every_case_names_what_was_bad():
    # The suite's own contract: enough distinct cases, all with a message pattern.
    assert len(CASES) + len(CLI_CASES) >= 60
    assert all(match for _, _, match in CASES.values())
