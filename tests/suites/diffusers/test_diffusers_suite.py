"""The registered 'diffusers' suite built from tiny models, and a full ImagePoser-v0 episode on CPU."""

import os
import sys

import numpy as np
import pytest

from poser_env.error import ConfigError, UnknownNameError

pytest.importorskip("torch")
pytest.importorskip("diffusers")


@pytest.fixture
def suite_kwargs(tiny_suite_kwargs):
    return tiny_suite_kwargs


def test_make_suite_through_registry(suite_kwargs):
    from poser_env.suites import make_suite

    suite = make_suite("diffusers", **suite_kwargs, experts=["tiny-img2img", "tiny-t2i"])
    assert suite.expert_names == ("tiny-img2img", "tiny-t2i")
    assert [e.kind for e in suite.experts] == ["i2i", "t2i"]
    assert suite.experts[0].loader is suite.experts[1].loader  # one shared loader
    assert suite.experts[0].loader.resident() == []  # nothing loaded yet
    task = suite.tasks.sample(np.random.default_rng(0))
    assert task.constraints and len(task.prompt) > 60


def test_suite_argument_errors(suite_kwargs):
    from poser_env.suites.diffusers import make_diffusers_suite

    with pytest.raises(UnknownNameError, match="Unknown expert 'tiny-t2'. Did you mean 'tiny-t2i'"):
        make_diffusers_suite(**{**suite_kwargs, "experts": ["tiny-t2"]})
    with pytest.raises(UnknownNameError, match="Unknown critic 'vln'. Did you mean 'vlm'"):
        make_diffusers_suite(**{**suite_kwargs, "critic": "vln"})
    with pytest.raises(ConfigError, match="catalog must be 'default' or a list"):
        make_diffusers_suite(**{**suite_kwargs, "catalog": "big"})
    suite = make_diffusers_suite(**{**suite_kwargs, "overrides": {"tiny-t2i": {"steps": 3}}})
    assert suite.experts[0].spec.steps == 3


def test_deprecated_pool_names_still_work(suite_kwargs):
    import poser_env.suites.diffusers as d
    from poser_env.suites.diffusers.loader import PipelineLoader

    kwargs = dict(suite_kwargs)
    catalog = kwargs.pop("catalog")
    with pytest.warns(DeprecationWarning, match="pool= is deprecated: use catalog="):
        suite = d.make_diffusers_suite(**kwargs, pool=catalog)
    assert suite.experts[0].pool is suite.experts[0].loader
    assert (d.DEFAULT_POOL, d.default_pool(), d.pool_table) == (
        d.DEFAULT_CATALOG,
        d.DEFAULT_CATALOG,
        d.catalog_table,
    )
    sys.modules.pop("poser_env.suites.diffusers.pool", None)
    with pytest.warns(DeprecationWarning, match="diffusers.loader"):
        from poser_env.suites.diffusers.pool import PipelinePool
    assert PipelinePool is PipelineLoader


def test_default_pool_suite_builds_without_loading_anything(tiny_vlm):
    from poser_env.suites.diffusers import make_diffusers_suite

    suite = make_diffusers_suite(device="cpu", critic_kwargs={"model": tiny_vlm}, extractor="rules")
    assert len(suite.experts) == 12 and suite.experts[0].loader.resident() == []


def test_full_episode_with_tiny_models(suite_kwargs):
    gym = pytest.importorskip("gymnasium")
    try:
        import poser_env  # noqa: F401 - registers ImagePoser-v0
        from poser_env.envs import image_poser  # noqa: F401
    except ImportError:
        pytest.skip("ImagePoser-v0 environment not available")

    def rollout(seed):
        env = gym.make(
            "ImagePoser-v0",
            suite="diffusers",
            suite_kwargs=suite_kwargs,
            max_steps=4,
            image_size=(32, 32),
        )
        obs, info = env.reset(seed=seed)
        assert env.observation_space.contains(obs)
        trace = []
        done = False
        while not done:
            mask = obs["action_mask"]
            action = int(np.flatnonzero(mask)[-1])  # last valid expert: i2i once there is an image
            obs, reward, terminated, truncated, info = env.step(action)
            assert env.observation_space.contains(obs)
            assert info["error"] == "", info["error"]
            trace.append((action, float(reward), obs["image"].copy()))
            done = terminated or truncated
        env.close()
        return trace, info

    a, info = rollout(3)
    b, _ = rollout(3)
    assert 1 <= len(a) <= 4
    assert obs_changed(a)
    assert [(x, r) for x, r, _ in a] == [(x, r) for x, r, _ in b]
    assert all(np.array_equal(x[2], y[2]) for x, y in zip(a, b, strict=True))
    assert info["final_metrics"]["episode_over"]


def obs_changed(trace):
    return any(img.any() for _, _, img in trace)


@pytest.mark.gpu
@pytest.mark.skipif(
    os.environ.get("POSER_GPU_TESTS") != "1",
    reason="set POSER_GPU_TESTS=1 on a CUDA machine with weights",
)
def test_gpu_acceptance_script_passes(tmp_path):
    """The named checks of scripts/gpu_smoke.py (finite, non-uniform native outputs; memory per
    group within its estimate; critic and scorer prefer the matching caption; forced eviction
    under an emulated 80 GB card) on POSER_GPU_EXPERTS (default: the two SD-Turbo experts)."""
    import importlib.util
    import json
    import sys
    from pathlib import Path

    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    path = Path(__file__).resolve().parents[3] / "scripts" / "gpu_smoke.py"
    spec = importlib.util.spec_from_file_location("gpu_smoke", path)
    smoke = importlib.util.module_from_spec(spec)
    sys.modules["gpu_smoke"] = smoke
    spec.loader.exec_module(smoke)
    experts = os.environ.get("POSER_GPU_EXPERTS", "sd-turbo,sd-turbo-img2img")
    smoke.main(["--fast", "--experts", experts, "--out", str(tmp_path / "smoke")])
    report = json.loads((tmp_path / "smoke.json").read_text())
    failed = [(c["name"], c["detail"]) for c in report["checks"] if c["status"] == "fail"]
    assert not failed
    names = {c["name"] for c in report["checks"]}
    assert {"critic:prefers-match", "scorer:prefers-match", "eviction:80gb"} <= names
