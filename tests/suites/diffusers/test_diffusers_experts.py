"""Experts and the pipeline pool, on tiny random diffusers checkpoints loaded from disk."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from poser_env.constraints import Command
from poser_env.error import ModelLoadError, PoserError

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from poser_env.suites.diffusers.experts import make_expert  # noqa: E402
from poser_env.suites.diffusers.loader import PipelineLoader  # noqa: E402

GEN = Command("three red circles on a table", "generate")
EDIT = Command("make the circles blue", "recolor")


@pytest.fixture
def pool():
    return PipelineLoader(device="cpu", memory_budget_gb=1.0, local_files_only=True)


def by_name(specs, name):
    return next(s for s in specs if s.name == name)


def test_t2i_is_seeded_sized_and_uint8(tiny_specs, pool):
    expert = make_expert(by_name(tiny_specs, "tiny-t2i"), pool, output_size=(40, 48))
    a, b, c = expert(GEN, None, 7), expert(GEN, None, 7), expert(GEN, None, 8)
    assert a.image.shape == (40, 48, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)
    assert a.cost == expert.cost and a.meta["seed"] == 7 and a.meta["family"] == "text2image"


def test_every_family_runs_and_edits_depend_on_input(tiny_specs, pool):
    experts = {s.name: make_expert(s, pool, output_size=(32, 32)) for s in tiny_specs}
    start = experts["tiny-t2i"](GEN, None, 1).image
    other = np.full_like(start, 200)
    for name in ("tiny-t2i-b", "tiny-img2img", "tiny-ip2p"):
        expert = experts[name]
        out = expert(EDIT, start if expert.kind == "i2i" else None, 3).image
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8
        if expert.kind == "i2i":
            assert not np.array_equal(out, expert(EDIT, other, 3).image)


@pytest.mark.parametrize("name", ["tiny-t2i", "tiny-img2img", "tiny-ip2p"])
def test_batched_pipeline_call_matches_one_by_one(tiny_specs, pool, name):
    spec = by_name(tiny_specs, name)
    one_by_one = make_expert(spec, pool, output_size=(32, 32))
    batched = make_expert(spec.with_overrides(batch=True), pool, output_size=(32, 32))
    draw = make_expert(by_name(tiny_specs, "tiny-t2i"), pool, output_size=(32, 32))
    start = draw(GEN, None, 1).image if spec.kind == "i2i" else None
    other = None if start is None else np.full_like(start, 200)
    calls = [(GEN, start, 5), (EDIT, other, 6), (EDIT, start, 7)]
    expected = one_by_one.call_batch(calls)  # batch=False: one call after another
    assert all(
        np.array_equal(e.image, one_by_one(*c).image) for e, c in zip(expected, calls, strict=True)
    )
    got = batched.call_batch(calls)
    assert [g.meta["seed"] for g in got] == [5, 6, 7]
    for g, e in zip(got, expected, strict=True):
        # One pipeline call with lists of prompts, images and generators: batched kernels
        # may round differently, never by more than a couple of levels; a mixed-up prompt,
        # image or seed would differ everywhere.
        assert np.abs(g.image.astype(int) - e.image.astype(int)).max() <= 2
    assert not np.array_equal(got[0].image, got[1].image)


def test_i2i_without_image_says_what_to_do(tiny_specs, pool):
    expert = make_expert(by_name(tiny_specs, "tiny-img2img"), pool)
    with pytest.raises(ValueError, match="got image=None; call a 't2i' expert first"):
        expert(EDIT, None, 0)


def test_same_weights_are_shared_through_from_pipe(tiny_specs, pool):
    t2i = pool.get(by_name(tiny_specs, "tiny-t2i"))
    i2i = pool.get(by_name(tiny_specs, "tiny-img2img"))
    assert type(i2i).__name__ == "StableDiffusionImg2ImgPipeline"
    assert i2i.unet is t2i.unet and i2i.vae is t2i.vae and i2i.text_encoder is t2i.text_encoder
    assert i2i.scheduler is not t2i.scheduler  # schedulers keep state: one per pipeline
    assert len(pool.resident()) == 1 and len(pool.load_log) == 1


def test_lru_evicts_least_recently_used_group_to_fit_budget(tiny_specs, pool):
    t2i, ip2p = by_name(tiny_specs, "tiny-t2i"), by_name(tiny_specs, "tiny-ip2p")
    pool.get(t2i)
    size = pool.memory_used_gb()
    assert size > 0
    pool.memory_budget_gb = size * 1.5  # room for one tiny model, not two
    t2i, ip2p = t2i.with_overrides(memory_gb=size), ip2p.with_overrides(memory_gb=size)
    pool.get(ip2p)
    assert pool.resident() == [ip2p.model]
    pool.get(t2i)
    assert pool.resident() == [t2i.model]
    assert [m for m, _ in pool.load_log] == [t2i.model, ip2p.model, t2i.model]


def test_budget_keeps_both_when_they_fit(tiny_specs, pool):
    t2i, ip2p = by_name(tiny_specs, "tiny-t2i"), by_name(tiny_specs, "tiny-ip2p")
    pool.get(t2i), pool.get(ip2p), pool.get(t2i)
    assert pool.resident() == [ip2p.model, t2i.model]  # least recently used first
    assert pool.evict(ip2p.model) and pool.resident() == [t2i.model]


def test_missing_weights_name_the_model_and_the_fix(tiny_specs, pool, tmp_path):
    spec = by_name(tiny_specs, "tiny-t2i").with_overrides(
        name="ghost", model="nobody/no-such-model"
    )
    with pytest.raises(
        ModelLoadError,
        match=r"(?s)'nobody/no-such-model' for expert 'ghost'.*hf download nobody/no-such-model",
    ):
        make_expert(spec, pool)(GEN, None, 0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="exists but is not a complete"):
        pool.get(spec.with_overrides(model=str(empty)))


def test_model_load_error_lives_in_error_module():
    assert issubclass(ModelLoadError, PoserError) and issubclass(ModelLoadError, RuntimeError)
    err = ModelLoadError("org/m", "e", OSError("gone"), "Download it.")
    assert str(err) == "Could not load model 'org/m' for expert 'e': OSError: gone. Download it."
    assert (err.model, err.expert, type(err.cause)) == ("org/m", "e", OSError)


def test_model_over_budget_is_refused_before_loading(tiny_specs, pool):
    spec = by_name(tiny_specs, "tiny-t2i").with_overrides(memory_gb=5.0)
    with pytest.raises(ModelLoadError, match="needs about 5 GB, budget is 1 GB.*cpu_offload=True"):
        pool.get(spec)


def test_model_root_lookup_and_half_precision_falls_back_on_cpu(tiny_specs, tmp_path):
    spec = by_name(tiny_specs, "tiny-t2i")
    root = Path(spec.model).parent
    pool = PipelineLoader(device="cpu", model_root=root, local_files_only=True)
    relocated = spec.with_overrides(model="someorg/tiny-sd", dtype="float16")
    assert pool.resolve_model("someorg/tiny-sd") == str(root / "tiny-sd")
    pipe = pool.get(relocated)
    assert pipe.unet.dtype == torch.float32


def test_expert_pickles_without_weights_and_reloads(tiny_specs, pool):
    expert = make_expert(by_name(tiny_specs, "tiny-t2i"), pool, output_size=(32, 32))
    first = expert(GEN, None, 5).image
    copy = pickle.loads(pickle.dumps(expert))
    assert copy.loader.resident() == []
    assert np.array_equal(copy(GEN, None, 5).image, first)
