"""The pool's GPU-only paths shown on CPU: the out-of-memory retry with a fake allocator,
room for CPU-offloaded experts, device placement, gated repositories, T5 tokenizers shipped
as spiece.model, and devices refused when the suite is built."""

from __future__ import annotations

import gc
import io
import pickle
import weakref

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from poser_env.error import ConfigError, MissingDependencyError, ModelLoadError  # noqa: E402
from poser_env.suites.diffusers import loader as loader_mod  # noqa: E402
from poser_env.suites.diffusers.loader import PipelineLoader  # noqa: E402
from poser_env.suites.diffusers.models import ExpertSpec  # noqa: E402


class FakeGPU:
    """Counts the bytes of live blocks (a block is freed when nothing references it) against a limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.blocks: weakref.WeakSet = weakref.WeakSet()

    def used(self) -> int:
        return sum(b.size for b in self.blocks)

    def alloc(self, size: int) -> Block:
        if self.used() + size > self.limit:
            gc.collect()  # as the CUDA caching allocator frees cached blocks before giving up
        if self.used() + size > self.limit:
            raise torch.OutOfMemoryError(f"fake GPU: {self.used()} + {size} > {self.limit}")
        block = Block(size)
        self.blocks.add(block)
        return block


class Block:
    def __init__(self, size: int):
        self.size = size


def fake_pipeline_class(gpu: FakeGPU, sizes: dict[str, int]):
    """A pipeline class whose ``to()`` moves its weights to the fake GPU in chunks of 2."""

    class FakePipe:
        _optional_components = ()
        components: dict = {}
        loads = 0

        def __init__(self, where: str):
            self.where = where
            self.blocks: list[Block] = []

        @classmethod
        def from_pretrained(cls, where, **kwargs):
            cls.loads += 1
            return cls(where)

        def to(self, device):
            # Half-moved on failure: the blocks moved so far stay referenced by this frame's self.
            for _ in range(sizes[self.where] // 2):
                self.blocks.append(gpu.alloc(2))
            return self

        def set_progress_bar_config(self, **kwargs):
            pass

    return FakePipe


def spec(name: str, model: str, memory_gb: float = 0.001, **kw) -> ExpertSpec:
    return ExpertSpec(
        name=name,
        model=model,
        family="text2image",
        pipeline="Fake",
        steps=1,
        guidance=0.0,
        resolution=(32, 32),
        dtype="float32",
        memory_gb=memory_gb,
        **kw,
    )


@pytest.fixture
def fake(monkeypatch):
    gpu = FakeGPU(limit=10)
    cls = fake_pipeline_class(gpu, {"other": 6, "big": 8, "huge": 12})
    monkeypatch.setattr(loader_mod, "_pipeline_class", lambda diffusers, spec: cls)
    return gpu, cls


def test_out_of_memory_retry_frees_the_half_moved_pipeline_and_succeeds(fake):
    gpu, cls = fake
    pool = PipelineLoader(device="cpu", memory_budget_gb=100.0)
    pool.get(spec("other", "other"))
    assert gpu.used() == 6
    # 6 resident + 8 > 10: the first attempt fails with 4 moved; only once that half-moved
    # pipeline is gone does evicting "other" leave room for all 8.
    pipe = pool.get(spec("big", "big"))
    assert cls.loads == 3
    assert pool.resident() == ["big"]
    assert gpu.used() == 8 and len(pipe.blocks) == 4


def test_out_of_memory_even_alone_is_a_model_load_error_with_advice(fake):
    gpu, _ = fake
    pool = PipelineLoader(device="cpu", memory_budget_gb=100.0)
    with pytest.raises(
        ModelLoadError,
        match=r"out of GPU memory loading huge with every other model evicted.*cpu_offload=True",
    ):
        pool.get(spec("huge", "huge"))
    gc.collect()
    assert gpu.used() == 0  # nothing of the failed attempts is left on the "GPU"
    assert pool.resident() == []


def test_cpu_offloaded_expert_keeps_room_for_its_largest_component(tiny_specs):
    base = next(s for s in tiny_specs if s.name == "tiny-t2i")
    pool = PipelineLoader(device="cpu", memory_budget_gb=3.0)
    offloaded = base.with_overrides(cpu_offload=True, memory_gb=5.0, offload_gb=2.0)
    pool.get(offloaded)
    assert pool.memory_used_gb() == pytest.approx(
        2.0
    )  # not 0: the running component needs the room
    too_big = base.with_overrides(
        model=next(s for s in tiny_specs if s.name == "tiny-ip2p").model,
        pipeline="StableDiffusionInstructPix2PixPipeline",
        cpu_offload=True,
        memory_gb=5.0,
        offload_gb=4.0,
    )
    with pytest.raises(
        ModelLoadError, match="needs about 4 GB while it runs with cpu_offload, budget is 3 GB"
    ):
        pool.get(too_big)


def test_auto_device_is_resolved_where_the_pool_runs_and_place_pins_it(monkeypatch):
    pool = PipelineLoader(device="auto", memory_budget_gb=40.0)
    assert pool._device is None  # nothing decided in the driver
    copy = pickle.loads(pickle.dumps(pool))
    assert copy._device is None and copy.device_request == "auto"
    copy.place("cpu", gpu_share=0.0 + 1.0)
    assert copy.device == "cpu" and copy.memory_budget_gb == 40.0
    # A replica holding a quarter of an 80 GB card keeps at most 20 GB for weights.
    monkeypatch.setattr(loader_mod, "resolve_device", lambda device: device)
    monkeypatch.setattr(loader_mod, "card_gb", lambda device: 80.0)
    quarter = pickle.loads(pickle.dumps(pool))
    quarter.place("cuda", gpu_share=0.25)
    assert quarter.device == "cuda" and quarter.memory_budget_gb == 20.0
    whole = pickle.loads(pickle.dumps(pool))
    whole.place("cuda", gpu_share=1.0)
    assert whole.memory_budget_gb == 40.0  # the suite's own budget still caps it
    with pytest.raises(ConfigError, match=r"gpu_share must be in \(0, 1\], got 0"):
        pickle.loads(pickle.dumps(pool)).place("cuda", gpu_share=0)


@pytest.mark.parametrize("device", ["tpu", "gpu", "cuda0", 3, "xla:0"])
def test_bad_devices_are_refused_when_the_suite_is_built(device, tiny_suite_kwargs):
    from poser_env.suites.diffusers import make_diffusers_suite

    with pytest.raises(
        ConfigError, match=r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got .*TPUs"
    ):
        make_diffusers_suite(**{**tiny_suite_kwargs, "device": device})


def test_bad_device_through_gym_make_names_the_closest():
    import gymnasium as gym

    import poser_env  # noqa: F401

    with pytest.raises(ConfigError, match=r"got 'cude'\. Did you mean 'cuda'\?"):
        gym.make(
            "ImagePoser-v0",
            suite="diffusers",
            suite_kwargs={"device": "cude", "extractor": "rules"},
        )


def test_gated_repository_error_says_where_to_accept_the_licence(monkeypatch):
    class Refused:
        _optional_components = ()

        @classmethod
        def from_pretrained(cls, where, **kwargs):
            raise OSError(
                "401 Client Error. Cannot access gated repo for url https://huggingface.co/x"
            )

    monkeypatch.setattr(loader_mod, "_pipeline_class", lambda diffusers, spec: Refused)
    pool = PipelineLoader(device="cpu", local_files_only=False)
    for s in (
        spec("flux", "black-forest-labs/FLUX.1-schnell", gated=True),
        spec("other", "someorg/private"),
    ):
        with pytest.raises(
            ModelLoadError,
            match=rf"{s.model} is a gated repository: open https://huggingface.co/{s.model} "
            r"with your Hugging Face account and accept its licence, then log in .*hf auth login.*HF_TOKEN",
        ):
            pool.get(s)
    offline = PipelineLoader(device="cpu", local_files_only=True)
    with pytest.raises(
        ModelLoadError, match=r"hf download black-forest-labs/FLUX.1-schnell.*It is also gated"
    ):
        offline.get(spec("flux", "black-forest-labs/FLUX.1-schnell", gated=True))


def _spiece_only_folder(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    text = [
        "a red cube on the left of a blue ball",
        "three bottles on a wooden table",
        "the background is a beach",
    ]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text * 50),
        model_writer=model,
        vocab_size=30,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    folder = tmp_path / "tokenizer_2"
    folder.mkdir()
    (folder / "spiece.model").write_bytes(model.getvalue())
    return folder, spm.SentencePieceProcessor(model_proto=model.getvalue())


def test_t5_tokenizer_shipped_only_as_spiece_model_loads(tmp_path):
    """What diffusers does for FLUX/SD3.5/PixArt's tokenizer_2 when the repo has only spiece.model."""
    from transformers import T5TokenizerFast

    folder, sp = _spiece_only_folder(tmp_path)
    assert [p.name for p in folder.iterdir()] == ["spiece.model"]
    tok = T5TokenizerFast.from_pretrained(str(folder))
    ids = tok("a red cube on the left", add_special_tokens=False).input_ids
    assert ids == sp.encode("a red cube on the left")


def test_experts_needing_sentencepiece_are_refused_at_build_time_without_it(
    monkeypatch, tiny_suite_kwargs
):
    import importlib.util

    from poser_env.suites.diffusers import make_diffusers_suite
    from poser_env.suites.diffusers.models import DEFAULT_CATALOG

    assert {s.name for s in DEFAULT_CATALOG if "sentencepiece" in s.needs} == {
        "flux-schnell",
        "sd3.5-medium",
        "pixart-sigma",
        "sd3.5-medium-img2img",
        "flux-kontext",
    }
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sentencepiece" else real(name, *a),
    )
    t5 = [
        dict(d, needs=["sentencepiece"]) if d["name"] == "tiny-t2i" else d
        for d in tiny_suite_kwargs["catalog"]
    ]
    with pytest.raises(
        MissingDependencyError,
        match=r"tokenizer of expert\(s\) tiny-t2i needs the package 'sentencepiece'.*image-poser\[models\]",
    ):
        make_diffusers_suite(**{**tiny_suite_kwargs, "catalog": t5})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"critic_kwargs": {"modle": "x"}},
            r"Unknown argument 'modle' for critic 'vlm' \(critic_kwargs\)\. Did you mean 'model'\? "
            r"Valid arguments: device, dtype, formula",
        ),
        (
            {"extractor": "llm", "extractor_kwargs": {"max_new_token": 3}},
            r"Unknown argument 'max_new_token' for extractor 'llm' \(extractor_kwargs\)\. "
            r"Did you mean 'max_new_tokens'\?",
        ),
        (
            {
                "critic": "http",
                "critic_kwargs": {
                    "base_url": "http://localhost:1/v1",
                    "model": "m",
                    "temprature": 0,
                },
            },
            # The critic's own arguments and its ChatClient's, each once.
            r"Did you mean 'temperature'\? Valid arguments: api_key, api_key_env, backoff, base_url, "
            r"client, json_mode, max_retries, max_retry_after, max_tokens, model, temperature, "
            r"timeout, weights\.$",
        ),
        (
            {"overrides": {"tiny-t2i": {"step": 3}}},
            r"Unknown argument 'step' for ExpertSpec 'tiny-t2i' overrides\. Did you mean 'steps'\?",
        ),
    ],
)
def test_component_kwargs_typos_name_the_closest_key_and_list_all(
    kwargs, message, tiny_suite_kwargs
):
    pytest.importorskip("httpx")
    from poser_env.suites.diffusers import make_diffusers_suite

    with pytest.raises(ConfigError, match=message):
        make_diffusers_suite(**{**tiny_suite_kwargs, **kwargs})
